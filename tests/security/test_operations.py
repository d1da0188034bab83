"""The operation table: one name per operation, modes ordered, every CLI command mapped, fail closed."""

from __future__ import annotations

import click
import pytest

from ceso.cli.root import cli
from ceso.errors import InvalidInputError
from ceso.jobs.kinds import JOB_KINDS
from ceso.security.modes import MODES, allows, higher, parse_mode
from ceso.security.operations import all_operations, get_operation, operation_for_command


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[list[str]]:
    found: list[list[str]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append([*prefix, name])
    return found


def test_modes_are_ordered() -> None:
    assert MODES == ("read-only", "standard", "admin")
    assert allows("admin", "read-only") and allows("standard", "standard")
    assert not allows("read-only", "standard") and not allows("standard", "admin")
    assert higher("standard", "read-only") == "standard"
    with pytest.raises(InvalidInputError, match="unknown mode 'root'"):
        parse_mode("root")


def test_job_kinds_are_operations_with_their_own_mode() -> None:
    table = all_operations()
    for kind in JOB_KINDS.values():
        assert table[kind.name].mode == kind.mode
        assert table[kind.name].kind == "job"
        assert kind.mode in MODES


def test_issue_modes() -> None:
    mode = {name: op.mode for name, op in all_operations().items()}
    for name in ("vm.list", "vm.info", "job.status", "job.list", "backup.list", "host.list"):
        assert mode[name] == "read-only", name
    for name in ("vm.create", "vm.clone", "vm.power", "backup.create", "backup.restore"):
        assert mode[name] == "standard", name
    for name in (
        "vm.delete",
        "backup.restore_in_place",
        "backup.prune",
        "host.add",
        "agent.approve",
        "agent.add",
    ):
        assert mode[name] == "admin", name


def test_every_cli_command_is_a_known_operation() -> None:
    unknown = [c for c in _commands(cli) if not operation_for_command(c).known]
    assert unknown == []
    assert operation_for_command(["agent", "request-promotion"]).name == "agent.request_promotion"
    assert operation_for_command(["vm", "snapshot", "list"]).mode == "read-only"


def test_unknown_operation_is_admin_only() -> None:
    op = get_operation("vm.teleport")
    assert (op.mode, op.known) == ("admin", False)
    assert operation_for_command(["frobnicate", "all"]).mode == "admin"


def test_restoring_over_the_original_vm_needs_admin() -> None:
    from ceso.security.gate import job_operation

    assert job_operation("backup.restore", {"in_place": False}).mode == "standard"
    assert job_operation("backup.restore", {"in_place": True}).mode == "admin"
