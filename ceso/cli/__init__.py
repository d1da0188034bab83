"""The ``ceso`` command line: :func:`run` for the script, :func:`main` in-process.

Only :func:`main` turns errors into exit codes. This module stays light (the standard
library and :mod:`ceso.errors`): a command the local cesod can run is handed to it
straight from the argument list (:func:`ceso.cli.via_cesod.forward_argv`) without
loading click; every other command runs through the click group in :mod:`ceso.cli.root`.
"""

from __future__ import annotations

import os
import sys

from ceso.constants import ENV_DEBUG
from ceso.errors import CesoError

__all__ = ["main", "run"]


def _json_requested(argv: list[str]) -> bool:
    # Errors raised while parsing happen before the Application exists.
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ceso`` script."""
    from ceso.cli.application import render_error

    args = list(sys.argv[1:] if argv is None else argv)
    json_output = _json_requested(args)
    debug = bool(os.environ.get(ENV_DEBUG)) or "-v" in args or "--verbose" in args
    try:
        from ceso.cli.via_cesod import forward_argv

        if not forward_argv(args):
            from ceso.cli.root import invoke

            invoke(args, json_output=json_output)
    except CesoError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        render_error(exc, json_output=json_output)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        from ceso.cli.echo import echo

        echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            import traceback

            traceback.print_exc()
        error = _translated(exc)
        if error is None:
            message = f"internal error: {type(exc).__name__}: {exc} (run with --verbose for a traceback)"
            error = CesoError(message, code="internal_error")
        render_error(error, json_output=json_output)
        sys.exit(error.exit_code)


def _translated(exc: Exception) -> CesoError | None:
    """A SQL error no adapter translated (the database went away mid-command), in ceso's words."""
    if not type(exc).__module__.startswith("sqlalchemy"):
        return None  # and sqlalchemy is not imported for nothing
    from ceso.db.errors import translate_db_error

    return translate_db_error(exc)


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
    from ceso.cli.echo import echo

    echo(str(code), err=True)
    return 1


def _quick_exit(code: int) -> None:
    import atexit

    # What a normal exit does before the teardown, in its order: threading's own exit hooks
    # (which stop idle thread pools) and the wait for non-daemon threads, then the handlers.
    # Without the threading module no Python thread was ever started: nothing to wait for.
    threading = sys.modules.get("threading")
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105  (contextlib is not loaded on the fast path)
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nobody is reading any more
            pass
    os._exit(code)
