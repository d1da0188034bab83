"""Every operation is declared once: its spec is the CLI's options and their help, cesod's params
schema, the job's stored params and the worker's input, and it has a dry-run plan on each route.

A walk over every job method of cesod (one per job kind): nothing here names a field, so an
option added to one side only, or described differently on the two, fails.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

import click
import pytest

from ceso.cesod.calls import JOB_PARAMS
from ceso.cesod.methods import METHODS
from ceso.cli.global_options import is_global
from ceso.cli.root import cli
from ceso.cli.spec_options import SpecOption, load_spec
from ceso.jobs.kinds import JOB_KINDS
from ceso.plans import API, SSH, plan_for
from ceso.specs import Spec

SPEC_METHODS = {name: method for name, method in METHODS.items() if method.spec is not None}
JOB_OPTIONS = {"wait", "timeout", "idempotency_key"}  # how the CLI follows a job, not what it does
CLI_ONLY = {  # confirmations the CLI asks itself; --match runs one job per VM (ceso.cli.each_vm)
    "vm.delete": {"yes", "match"},
    "backup.restore": {"yes"},
    **{
        op: {"match"} for op in ("vm.power", "vm.snapshot.create", "vm.snapshot.revert", "vm.snapshot.delete")
    },
}
EXAMPLES: dict[str, dict[str, Any]] = {  # the least each operation takes
    "host.ping": {"name": "esxi-a"},
    "vm.create": {"name": "web-01", "template": "ubuntu"},
    "vm.clone": {"source": "web-01", "name": "web-02"},
    "vm.power": {"name": "web-01", "action": "shutdown"},
    "vm.delete": {"name": "web-01"},
    "vm.reconfigure": {"name": "web-01", "cpus": 2},
    "vm.snapshot.create": {"name": "web-01", "snapshot": "s1"},
    "vm.snapshot.revert": {"name": "web-01", "snapshot": "s1"},
    "vm.snapshot.delete": {"name": "web-01", "snapshot": "s1"},
    "backup.create": {"vm": "web-01"},
    "backup.restore": {"backup_id": "0123abcd", "as": "web-02"},
    "backup.drill": {"backup_id": "0123abcd"},
    "template.import": {"name": "noble", "host": "esxi-a", "from": "/srv/images/noble.ova"},
}


def _spec(operation: str) -> type[Spec]:
    spec = SPEC_METHODS[operation].spec
    assert spec is not None
    return spec


def _command(operation: str) -> click.Command:
    """The click command of ``operation`` (``vm.snapshot.create`` → ``ceso vm snapshot create``)."""
    command: click.Command | None = cli
    for word in operation.split("."):
        assert isinstance(command, click.Group), operation
        command = command.get_command(click.Context(command), word.replace("_", "-"))
    assert command is not None, operation
    return command


def _spelled(spec: type[Spec]) -> dict[str, Any]:
    """The spec's fields as callers spell them (``as_`` is ``as``)."""
    return {info.alias or name: info for name, info in spec.model_fields.items()}


def test_every_job_kind_is_one_cesod_method_with_a_spec() -> None:
    assert set(SPEC_METHODS) == set(JOB_KINDS) - {"test.sleep"}  # test.sleep: tests' own, no command
    assert {name: _spec(name).kind for name in SPEC_METHODS} == {name: name for name in SPEC_METHODS}
    assert set(EXAMPLES) == set(SPEC_METHODS)


@pytest.mark.parametrize("operation", sorted(SPEC_METHODS))
def test_cli_options_are_the_spec_s_fields_with_their_descriptions(operation: str) -> None:
    spec, command = _spec(operation), _command(operation)
    assert load_spec(getattr(command.callback, "spec", "")) is spec  # the command runs this spec
    params = {p.name: p for p in command.params if p.name != "help" and not is_global(p)}
    assert set(params) - JOB_OPTIONS - CLI_ONLY.get(operation, set()) == set(spec.model_fields)
    ctx = click.Context(command)
    for field, info in spec.model_fields.items():
        param = params[field]
        if isinstance(param, click.Argument):  # `backup drill [BACKUP_ID]`: optional in both
            assert info.is_required() or not param.required, field
            continue
        assert isinstance(param, SpecOption) and load_spec(param.spec) is spec, field
        assert param.required == info.is_required(), field
        # The option's kind is the field's type; its default is the field's (the CLI has none).
        kind = _base(info.annotation)
        assert param.is_flag == (kind is bool) and param.multiple == (kind is list), field
        if kind in (int, float):
            assert isinstance(
                param.type, click.types.IntParamType if kind is int else click.types.FloatParamType
            )
        unset = getattr(click.core, "UNSET", None)  # click 8.3 marks "no default" so
        assert param.default is unset or param.default in (None, False, ()), field
        record = param.get_help_record(ctx)
        assert record is not None and record[1].startswith(spec.describe(field)), field
        if not info.is_required() and info.default not in (None, False, "", []):
            assert f"[default: {info.default}]" in record[1], field


def _base(annotation: Any) -> Any:
    """``int`` of ``int | None``, ``list`` of ``list[str]``."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return _base(args[0]) if len(args) == 1 else object  # a Literal | None: a choice
    return typing.get_origin(annotation) or annotation


@pytest.mark.parametrize("operation", sorted(SPEC_METHODS))
def test_cesod_schema_is_the_spec_and_the_job_options(operation: str) -> None:
    spec, schema = _spec(operation), SPEC_METHODS[operation].schema()
    fields = _spelled(spec)
    assert set(schema["properties"]) == set(fields) | set(JOB_PARAMS)
    assert {name: schema["properties"][name]["description"] for name in fields} == {
        name: info.description for name, info in fields.items()
    }
    assert sorted(schema.get("required", [])) == sorted(n for n, info in fields.items() if info.is_required())
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("operation", sorted(SPEC_METHODS))
def test_job_params_are_the_spec_and_come_back_as_it(operation: str) -> None:
    spec = _spec(operation)
    given = spec.parse(EXAMPLES[operation])
    facts = {fact: f"{fact}-value" for fact in spec.job_facts}
    stored = json.loads(json.dumps(given.job_params(**facts)))  # as SQL keeps them
    assert set(stored) == set(_spelled(spec)) | set(spec.job_facts)
    assert spec.from_job(stored) == given  # the worker's input is what the caller gave
    with pytest.raises(TypeError):
        given.job_params(**facts, extra="not a declared fact")


@pytest.mark.parametrize("operation", sorted(SPEC_METHODS))
def test_every_operation_has_a_plan_on_each_route(operation: str) -> None:
    spec = _spec(operation).parse(EXAMPLES[operation])
    assert plan_for(spec, API) and plan_for(spec, SSH)
