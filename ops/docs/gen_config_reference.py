"""Write docs/configuration.md, the reference of every setting, from the settings model (ceso.settings).

    .venv/bin/python ops/docs/gen_config_reference.py          # rewrite docs/configuration.md
    .venv/bin/python ops/docs/gen_config_reference.py --check  # exit 1 if it is out of date

tests/ops/test_generated_docs.py regenerates the text in memory and fails when the committed
file differs: after adding or changing a setting, run the first line above.
"""

from __future__ import annotations

import enum
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "docs" / "configuration.md"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _generated, also when loaded by a test

import annotated_types
from _generated import generate
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ceso.constants import ENV_PREFIX
from ceso.settings import Settings

#: Defaults computed when ceso starts (from the environment), shown as a rule instead of a value.
COMPUTED_DEFAULTS = {
    "database_url": "`sqlite:///<data_dir>/ceso.db`",
    "data_dir": "`$CESO_DATA_DIR`, else `$XDG_DATA_HOME/ceso`, else `~/.local/share/ceso`",
}

HEADER = """\
# ceso configuration reference

Generated from the settings model (`ceso/settings.py` and the models it includes) by
`ops/docs/gen_config_reference.py`; do not edit by hand (run
`.venv/bin/python ops/docs/gen_config_reference.py` after changing a setting).

Settings come from, lowest to highest precedence: the built-in defaults; a YAML file (the first
of `--config PATH`, `$CESO_CONFIG`, `~/.config/ceso/config.yaml`, `/etc/ceso/config.yaml`);
and `CESO_*` environment variables. A nested key maps to a variable with `__` between the
parts (`jobs.max_attempts` is `CESO_JOBS__MAX_ATTEMPTS`); lists and mappings are given as
JSON in a variable (`CESO_CESOD__ALLOWLIST='["127.0.0.1/32"]'`). Unknown keys are errors.
An example file: [`configs/ceso.example.yaml`](../configs/ceso.example.yaml).
"""


def _type_name(annotation: Any) -> str:  # noqa: PLR0911 (one return per kind of type)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:  # validators and constraints of a nested type: name the type
        return _type_name(args[0])
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        names = [_type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is list:
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return f"mapping of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"`{annotation.__name__}` (below)"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    return {str: "string", int: "integer", float: "number", bool: "boolean", Path: "path"}.get(
        annotation, getattr(annotation, "__name__", str(annotation))
    )


def _constraints(field: FieldInfo) -> str:
    parts = []
    for meta in field.metadata:
        for attr, symbol in (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("max_length", "length ≤")):
            value = getattr(meta, attr, None)
            if value is not None and isinstance(meta, annotated_types.BaseMetadata):
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _default(key: str, field: FieldInfo) -> str:
    if key in COMPUTED_DEFAULTS:
        return COMPUTED_DEFAULTS[key]
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(section)"
    if value is None:
        return "none"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, Path):
        value = str(value)
    return f"`{json.dumps(value) if isinstance(value, list | dict | bool) else value}`"


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _item_model(annotation: Any) -> tuple[type[BaseModel], str] | None:
    """The model inside ``dict[str, Model]`` or ``list[Model]``, with the key suffix to show."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is dict and (model := _nested_model(args[1])):
        return model, "<key>"
    if origin is list and (model := _nested_model(args[0])):
        return model, "[]"
    return None


def _section(model: type[BaseModel], prefix: tuple[str, ...], title: str) -> list[str]:
    lines = [f"## {title}", ""]
    if model.__doc__:
        lines += [" ".join(model.__doc__.split()), ""]
    rows, subsections = [], []
    for name, field in model.model_fields.items():
        if field.exclude:
            continue
        path = (*prefix, name)
        key = ".".join(path).replace(".[]", "[]")
        if nested := _nested_model(field.annotation):
            subsections.append((nested, path, f"`{key}`"))
            continue
        if any(p in ("<key>", "[]") for p in path):
            env = "in its parent's JSON"
        else:
            env = "`" + ENV_PREFIX + "__".join(p.upper() for p in path) + "`"
        description = field.description or ""
        if constraints := _constraints(field):
            description += f" ({constraints})"
        rows.append(
            f"| `{key}` | {_type_name(field.annotation)} | {_default(key, field)} | {env} | {description} |"
        )
        if item := _item_model(field.annotation):
            model_, suffix = item
            subsections.append(
                (model_, (*path, suffix), f"`{key}.{suffix}`" if suffix == "<key>" else f"`{key}[]`")
            )
    if rows:
        lines += ["| key | type | default | environment | description |", "|---|---|---|---|---|", *rows, ""]
    for nested, path, sub_title in subsections:
        lines += _section(nested, path, sub_title)
    return lines


def render() -> str:
    """The whole of docs/configuration.md."""
    return HEADER + "\n" + "\n".join(_section(Settings, (), "Top level")).rstrip() + "\n"


def main() -> int:
    return generate(
        OUTPUT,
        render,
        description="Write docs/configuration.md from the settings model.",
        script="ops/docs/gen_config_reference.py",
    )


if __name__ == "__main__":
    sys.exit(main())
