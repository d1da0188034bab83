"""Operation specs: one pydantic model per operation, the one declaration of what it takes.

A spec (:class:`Spec`) is, unchanged, four things:

* cesod's params schema of the method (:meth:`Spec.json_schema`, with the job options
  of :data:`ceso.cesod.calls.JOB_PARAMS` beside it);
* the job's stored params (:meth:`Spec.job_params`; secrets are sealed on submit as
  for any params, see :mod:`ceso.security.sealing`);
* the worker's input (:meth:`Spec.from_job` at the top of the handler);
* the source of the CLI's help texts and defaults (:mod:`ceso.cli.spec_options`), so the CLI
  and cesod describe an option in the same words.

A spec carries documents as *text*, never a caller's file path: the CLI reads the files
its options name before the fields are parsed (by cesod, or in the CLI's own process). Field names are the CLI's option names
(``--no-power-on`` → ``no_power_on``). Field validators call the shared validators
(:mod:`ceso.vm.names`, :mod:`ceso.vm.sizes`, ...), which raise InvalidInputError with
the option's name; pydantic lets that error through unchanged, so the CLI, cesod and the
worker refuse bad input with the same one line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from ceso.errors import InvalidInputError

__all__ = ["MAX_STRING", "InvalidParamsError", "Spec", "describe_validation_error"]

#: The longest value of a spec's string field unless the field sets its own ``max_length``.
MAX_STRING = 4096

_TYPE_WORDS = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
}


class InvalidParamsError(InvalidInputError):
    """A spec's data has a wrong type, an unknown or a missing field (cesod: invalid params)."""


class Spec(BaseModel):
    """Base of every operation spec: strict types, no unknown field, immutable."""

    # defer_build: a class builds its validator when first used, not when its module is imported
    # (`ceso vm --help` imports every VM command and so every VM spec).
    # str_max_length: every string field is bounded (a field may say less, or more: a document).
    model_config = ConfigDict(
        strict=True, extra="forbid", frozen=True, defer_build=True, str_max_length=MAX_STRING
    )

    #: The job kind (and operation name) this spec is the input of.
    kind: ClassVar[str]
    #: Params a job of this kind stores beside the spec's fields: what its request builder
    #: resolved on submit and the job must keep (a backup's key id). Not the caller's to give.
    job_facts: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Self:
        """The spec of ``data`` (null values count as absent, a tuple as a list: click's repeated
        options). InvalidParamsError for a wrong
        type, an unknown or a missing field; InvalidInputError for what a field's validator refused."""
        try:
            return cls.model_validate(
                {
                    key: list(value) if isinstance(value, tuple) else value
                    for key, value in data.items()
                    if value is not None
                }
            )
        except ValidationError as exc:
            known = sorted(info.alias or field for field, info in cls.model_fields.items())
            raise InvalidParamsError(describe_validation_error(exc, known)) from None

    @classmethod
    def from_job(cls, params: Mapping[str, Any]) -> Self:
        """The spec a job stored (:meth:`job_params`), without its :attr:`job_facts`."""
        return cls.parse({key: value for key, value in params.items() if key not in cls.job_facts})

    def call_params(self) -> dict[str, Any]:
        """Every field, JSON-shaped and spelled as callers spell them: cesod's method params."""
        return self.model_dump(mode="json", by_alias=True)

    def job_params(self, **facts: Any) -> dict[str, Any]:
        """The job's params: :meth:`call_params` and the kind's :attr:`job_facts` (each must be
        given, and nothing else)."""
        if set(facts) != set(self.job_facts):
            raise TypeError(f"{self.kind} jobs store the facts {self.job_facts}, not {tuple(facts)}")
        return {**self.call_params(), **facts}

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of the spec's fields (cesod's ``system.describe``)."""
        schema = cls.model_json_schema()
        schema.pop("title", None)
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)
        return schema

    @classmethod
    def describe(cls, field: str) -> str:
        """The description of ``field``: the one help text of the option, in the CLI and in cesod."""
        description = cls.model_fields[field].description
        assert description, f"{cls.__name__}.{field} has no description"
        return description


def describe_validation_error(exc: ValidationError, known: list[str]) -> str:
    """One line for the first problem pydantic found, naming the param as a caller spells it."""
    error = exc.errors()[0]
    loc = error["loc"]
    name = str(loc[0]) if loc else "params"
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind in _TYPE_WORDS:
        word = _TYPE_WORDS[kind]
        return f"param {name!r} must be " + (f"an array of {word.split()[-1]}s" if len(loc) > 1 else word)
    messages = {
        "missing": f"missing required param {name!r}",
        "extra_forbidden": f"unknown param {name!r} (known: {', '.join(known) or 'none'})",
        "string_too_long": f"param {name!r} is longer than {ctx.get('max_length')} characters",
        "literal_error": f"param {name!r} must be one of {ctx.get('expected')}",
    }
    return messages.get(kind, f"param {name!r}: {error['msg']}")
