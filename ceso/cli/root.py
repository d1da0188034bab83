"""The ``ceso`` command group (click) and :func:`invoke`, which runs it on an argument list.

Every command of the CLI hangs off :data:`cli`; :func:`ceso.cli.main` calls :func:`invoke`
for every command line.
"""

from __future__ import annotations

import json
import sys

import click

from ceso.cli.application import Application
from ceso.cli.global_options import root_options
from ceso.cli.lazy import LazyGroup

__all__ = ["COMMANDS", "EXIT_CODES_HELP", "cli", "invoke"]

EXIT_CODES_HELP = """\b
Exit codes: 0 ok, 1 operation or job failed, 2 bad input or usage,
3 not permitted, 4 not found, 5 conflict or locked, 6 host unreachable,
130 interrupted while following a job (the job goes on)."""


#: Every command group, imported when used (:mod:`ceso.cli.lazy`).
COMMANDS = {
    name: f"ceso.cli.{name}:{name}"
    for name in (
        "agent", "audit", "backup", "beat", "cloudinit", "completion", "datastore", "db", "host", "job", "metrics", "schedule", "secrets",
        "target", "template", "vm", "worker",
    )
}  # fmt: skip


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
    params=root_options(),
)
@click.version_option(package_name="ceso", message="ceso %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """ceso (ESXi Commander): queued, locked, audited VM operations on standalone ESXi hosts.

    The global options (--config, --json, --dry-run, --progress, --verbose) may also follow
    the command: `ceso vm list --json`.
    """
    ctx.ensure_object(Application)  # the global options' callbacks made it already


def invoke(args: list[str], *, json_output: bool) -> None:
    """Run ``ceso ARGS`` through click.

    click's own outcomes end here in SystemExit: ``--help`` and ``--version`` (0), an
    aborted prompt (1), a usage error (its message, or a JSON ``usage`` error object with
    ``--json``; exit 2). CesoError and anything else propagate to :func:`ceso.cli.main`.
    """
    try:
        cli.main(args=args, prog_name="ceso", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        if json_output:
            click.echo(json.dumps({"error": {"code": "usage", "message": exc.format_message()}}, indent=2))
        else:
            exc.show()
        sys.exit(exc.exit_code)
