"""Parameter schemas of cesod methods: validation with precise messages, and JSON Schema for ``system.describe``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ceso.cesod.protocol import INVALID_PARAMS, RpcError

__all__ = ["MAX_ITEMS", "MAX_STRING", "Param", "json_schema", "validate_params"]

#: A string param's longest value unless its :attr:`Param.max_length` says otherwise, and the most
#: items of an array param: every value cesod takes in is bounded.
MAX_STRING = 1024
MAX_ITEMS = 256

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
}


@dataclass(frozen=True)
class Param:
    """One named parameter, spelled like the CLI option it mirrors (``--no-power-on`` → ``no_power_on``)."""

    type: str  # string | integer | number | boolean | array (of strings)
    description: str
    required: bool = False
    enum: tuple[str, ...] = ()
    default: Any = None
    max_length: int | None = None  # a string's; default :data:`MAX_STRING`
    minimum: float | None = None  # an integer's or number's bounds (both are given for every one)
    maximum: float | None = None


def _invalid(method: str, message: str) -> RpcError:
    return RpcError(INVALID_PARAMS, f"{method}: {message}", data_code="invalid_params")


def _check(method: str, name: str, spec: Param, value: Any) -> None:
    wanted = _TYPES[spec.type]
    ok = isinstance(value, wanted) and not (spec.type in ("integer", "number") and isinstance(value, bool))
    if not ok:
        raise _invalid(method, f"param {name!r} must be {'an' if spec.type[0] in 'aei' else 'a'} {spec.type}")
    if spec.type == "array":
        if not all(isinstance(item, str) for item in value):
            raise _invalid(method, f"param {name!r} must be an array of strings")
        if len(value) > MAX_ITEMS:
            raise _invalid(method, f"param {name!r} has more than {MAX_ITEMS} items")
        if any(len(item) > MAX_STRING for item in value):
            raise _invalid(method, f"param {name!r} has an item longer than {MAX_STRING} characters")
    if spec.enum and value not in spec.enum:
        raise _invalid(method, f"param {name!r} must be one of {', '.join(spec.enum)}")
    longest = MAX_STRING if spec.max_length is None else spec.max_length
    if isinstance(value, str) and len(value) > longest:
        raise _invalid(method, f"param {name!r} is longer than {longest} characters")
    if spec.type in ("integer", "number") and not (
        (spec.minimum is None or value >= spec.minimum) and (spec.maximum is None or value <= spec.maximum)
    ):
        raise _invalid(method, f"param {name!r} must be from {_n(spec.minimum)} to {_n(spec.maximum)}")


def _n(bound: float | None) -> str:
    return "-" if bound is None else f"{bound:g}"


def validate_params(method: str, schema: dict[str, Param], params: Any) -> dict[str, Any]:
    """Checked params with defaults filled in; RpcError -32602 naming the first problem."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _invalid(method, "params must be an object of named params (spelled like the CLI's options)")
    unknown = sorted(set(params) - set(schema))
    if unknown:
        known = ", ".join(sorted(schema)) or "none"
        raise _invalid(method, f"unknown param {unknown[0]!r} (known: {known})")
    out: dict[str, Any] = {}
    for name, spec in schema.items():
        if name not in params or params[name] is None:
            if spec.required:
                raise _invalid(method, f"missing required param {name!r}")
            out[name] = spec.default
            continue
        _check(method, name, spec, params[name])
        out[name] = params[name]
    return out


def json_schema(schema: dict[str, Param]) -> dict[str, Any]:
    """The JSON Schema of a method's params object."""
    properties: dict[str, Any] = {}
    for name, spec in schema.items():
        prop: dict[str, Any] = {"type": spec.type, "description": spec.description}
        if spec.type == "array":
            prop["items"] = {"type": "string"}
        if spec.enum:
            prop["enum"] = list(spec.enum)
        if spec.default is not None:
            prop["default"] = spec.default
        if spec.type == "string":
            prop["maxLength"] = MAX_STRING if spec.max_length is None else spec.max_length
        if spec.type == "array":
            prop["maxItems"] = MAX_ITEMS
            prop["items"]["maxLength"] = MAX_STRING
        if spec.minimum is not None:
            prop["minimum"] = spec.minimum
        if spec.maximum is not None:
            prop["maximum"] = spec.maximum
        properties[name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": sorted(n for n, s in schema.items() if s.required),
        "additionalProperties": False,
    }
