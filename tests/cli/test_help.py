"""`--help` works on every command and stays fast: no heavy module is imported."""

from __future__ import annotations

import json
import subprocess
import sys

import click

from ceso.cli.root import cli

HEAVY = [
    "celery",
    "kombu",
    "sqlmodel",
    "sqlalchemy",
    "pyVmomi",
    "pyVim",
    "paramiko",
    "prometheus_client",
    "rich",
    "redis",
    "alembic",
    "workers",
    "boto3",
    "botocore",
    "zstandard",
    "cryptography",
]


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # through get_command: the top group loads its groups lazily
        command = group.get_command(ctx, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def test_every_command_has_help_without_heavy_imports() -> None:
    commands = _all_commands(cli)
    assert ("vm", "list") in commands and ("job", "status") in commands and ("worker",) in commands
    script = """
import json, sys
from ceso.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    try:
        main([*argv, "--help"])
        results.append(0)
    except SystemExit as exc:
        results.append(exc.code)
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print(json.dumps({"codes": results, "heavy": heavy}), file=sys.stderr)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([list(c) for c in commands]), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["codes"] == [0] * len(commands)
    assert report["heavy"] == []
    assert proc.stdout.count("Usage: ceso") == len(commands)


def test_usage_error_is_exit_2_with_json_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ceso", "--json", "vm", "info"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout)["error"]["code"] == "usage"
