"""The ``ceso`` command line. Only :func:`main` turns errors into exit codes."""

from __future__ import annotations

import json
import os
import sys

import click

from ceso.cli.application import Application, render_error
from ceso.cli.lazy import LazyGroup
from ceso.constants import ENV_DEBUG
from ceso.errors import CesoError

__all__ = ["cli", "main", "run"]

EXIT_CODES_HELP = """\b
Exit codes: 0 ok, 1 operation or job failed, 2 bad input or usage,
3 not permitted, 4 not found, 5 conflict or locked, 6 host unreachable."""


#: Every command group, imported when used (:mod:`ceso.cli.lazy`).
COMMANDS = {
    name: f"ceso.cli.{name}:{name}"
    for name in (
        "agent", "audit", "backup", "beat", "cloudinit", "db", "host", "job", "metrics", "target", "template",
        "vm", "worker",
    )
}  # fmt: skip


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    epilog=EXIT_CODES_HELP,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False),
    envvar="CESO_CONFIG",
    help="YAML config file (default: ~/.config/ceso/config.yaml, then /etc/ceso/config.yaml).",
)
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout (errors too).")
@click.option("--dry-run", is_flag=True, help="Show what would be done; change nothing.")
@click.option("-v", "--verbose", is_flag=True, help="More logging; tracebacks for internal errors.")
@click.version_option(package_name="ceso", message="ceso %(version)s")
@click.pass_context
def cli(ctx: click.Context, config: str | None, json_output: bool, dry_run: bool, verbose: bool) -> None:
    """ceso (ESXi Commander): queued, locked, audited VM operations on standalone ESXi hosts."""
    ctx.obj = Application(config=config, json_output=json_output, dry_run=dry_run, verbose=verbose)
    if verbose:
        import logging

        from ceso.log import configure_logging

        configure_logging(logging.DEBUG)


def _json_requested(argv: list[str]) -> bool:
    # Errors raised while parsing happen before the Application exists.
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ceso`` script."""
    args = list(sys.argv[1:] if argv is None else argv)
    json_output = _json_requested(args)
    debug = bool(os.environ.get(ENV_DEBUG)) or "-v" in args or "--verbose" in args
    try:
        cli.main(args=args, prog_name="ceso", standalone_mode=False)
    except CesoError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        render_error(exc, json_output=json_output)
        sys.exit(exc.exit_code)
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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        message = f"internal error: {type(exc).__name__}: {exc} (run with --verbose for a traceback)"
        render_error(CesoError(message, code="internal_error"), json_output=json_output)
        sys.exit(1)


def run() -> None:
    """Entry point of the ``ceso`` script: :func:`main`, then a quick exit.

    Once a command is done, Python's teardown of every module it loaded (pyVmomi's type
    tables, SQLAlchemy) still takes ~150 ms before the process ends (docs/benchmarks.md,
    benchmark 4), and agents wait for the exit. The exit handlers still run (pooled ESXi
    sessions log out, logging flushes) and the output is flushed; only the teardown is
    skipped. In-process callers (tests) use :func:`main`, which never leaves the process.
    """
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = _exit_status(exc.code)
    _quick_exit(code)


def _exit_status(code: object) -> int:
    """The process status ``sys.exit(code)`` would give."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    click.echo(str(code), err=True)
    return 1


def _quick_exit(code: int) -> None:
    import atexit
    import contextlib
    import threading

    # What a normal exit does before the teardown, in its order: threading's own exit hooks
    # (which stop idle thread pools) and the wait for non-daemon threads, then the handlers.
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody is reading any more
            stream.flush()
    os._exit(code)
