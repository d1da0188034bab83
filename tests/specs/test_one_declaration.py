"""Every operation is declared once: its spec is the CLI's options and their help, cesod's params
schema, the job's stored params and the worker's input, and it has a dry-run plan on each route.

A walk over every job method of cesod (one per job kind): nothing here names a field, so an
option added to one side only, or described differently on the two, fails.
"""

from __future__ import annotations

import json
from typing import Any

import click
import pytest

from ceso.cesod.calls import JOB_PARAMS
from ceso.cesod.methods import METHODS
from ceso.cli.root import cli
from ceso.jobs.kinds import JOB_KINDS
from ceso.plans import API, SSH, plan_for
from ceso.specs import Spec

SPEC_METHODS = {name: method for name, method in METHODS.items() if method.spec is not None}
JOB_OPTIONS = {"wait", "timeout", "idempotency_key"}  # how the CLI follows a job, not what it does
CLI_ONLY = {"vm.delete": {"yes"}, "backup.restore": {"yes"}}  # confirmations the CLI asks itself
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
    spec = _spec(operation)
    params = {p.name: p for p in _command(operation).params if p.name != "help"}
    assert set(params) - JOB_OPTIONS - CLI_ONLY.get(operation, set()) == set(spec.model_fields)
    for field, info in spec.model_fields.items():
        param = params[field]
        assert param.required == info.is_required() or isinstance(param, click.Argument), field
        if isinstance(param, click.Option):
            assert param.help is not None and param.help.startswith(spec.describe(field)), field
            if not info.is_required() and info.default not in (None, False, "", []):
                assert param.default == info.default, field


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
