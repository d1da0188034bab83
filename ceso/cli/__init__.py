"""The ``ceso`` command line: :func:`run` for the script, :func:`main` in-process.

Only :func:`main` turns errors into exit codes. Every command is parsed by the click group in
:mod:`ceso.cli.root`; a command that a local cesod can run is then handed to it
(:mod:`ceso.cli.via_cesod`), every other one runs in this process.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading

import click

from ceso.constants import ENV_DEBUG
from ceso.errors import CesoError

__all__ = ["QUICK_EXIT_PYTHONS", "main", "run"]

#: The Python versions whose exit sequence :func:`_quick_exit` repeats (it calls two private hooks,
#: ``threading._shutdown`` and ``atexit._run_exitfuncs``), each checked by
#: tests/cli/test_entry_point.py, which fails on a version not listed here: add a version once
#: that test passes on it. Any other version exits the usual way.
QUICK_EXIT_PYTHONS = ((3, 11),)


def _json_requested(argv: list[str]) -> bool:
    # Errors raised while parsing happen before the Application exists.
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``ceso`` script."""
    from ceso.cli.application import render_error
    from ceso.cli.root import invoke

    args = list(sys.argv[1:] if argv is None else argv)
    json_output = _json_requested(args)
    debug = bool(os.environ.get(ENV_DEBUG)) or "-v" in args or "--verbose" in args
    try:
        invoke(args, json_output=json_output)
    except CesoError as exc:
        if debug:
            _print_traceback()
        render_error(exc, json_output=json_output)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        if debug:
            _print_traceback()
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


def _print_traceback() -> None:
    import traceback  # only with --verbose: most runs never need it

    traceback.print_exc()


def run() -> None:
    """Entry point of the ``ceso`` script: :func:`main`, then a quick exit.

    Once a command is done, Python's teardown of every module it loaded (pyVmomi's type
    tables, SQLAlchemy) still takes a noticeable time before the process ends, and agents
    wait for the exit. The exit handlers still run (pooled ESXi sessions log out, logging
    flushes) and the output is flushed; only the teardown is skipped, and only on the
    Python versions of :data:`QUICK_EXIT_PYTHONS`. In-process callers (tests) use
    :func:`main`, which never leaves the process.
    """
    code = 0
    try:
        main()
    except SystemExit as exc:
        if sys.version_info[:2] not in QUICK_EXIT_PYTHONS:
            raise
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
    """Exit with ``code`` as a normal exit does, without the module teardown."""
    if sys.version_info[:2] not in QUICK_EXIT_PYTHONS:
        sys.exit(code)
    # What a normal exit does before the teardown, in its order: threading's own exit hooks
    # (which stop idle thread pools) and the wait for non-daemon threads, then the handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nobody is reading any more
            stream.flush()
    os._exit(code)
