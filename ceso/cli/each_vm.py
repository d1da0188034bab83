"""Several VMs in one command: ``vm power on web-01 web-02``, ``vm delete --match 'test-*'``.

:func:`each_vm` sits between a one-VM job command's options and its
:func:`~ceso.cli.via_cesod.dispatch`: the command's ``NAME`` argument takes several names
(``nargs=-1``) and ``--match GLOB`` adds every VM whose name matches (on ``--host`` only, if
given). One name runs exactly as before. Several run one job each, in order, each reported as it
ends; then a summary table (with ``--json``: one object ``{"jobs": [...], "errors": [...]}``).
The exit status is 0 if every VM's job succeeded, the failures' common exit code if they share
one, else 1 — as ``vm list`` with a host that did not answer. A Ctrl-C stops at once (the jobs
already submitted go on). A command with ``confirm`` (delete) asks once, listing every VM.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ceso.cli.application import Application
from ceso.errors import CesoError, InvalidInputError, WaitInterruptedError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["each_vm"]

# Appended to the command's help (its docstring's indentation, which click removes).
_SEVERAL = """

    Several NAMEs, or --match GLOB, run one job per VM in turn, then print a
    summary (JSON: {"jobs": [...], "errors": [...]}); the exit status is 0 when
    every VM's job succeeded, else the failures' exit code (1 if they differ)."""
_ASKS_ONCE = " Asks once, listing every VM."


def each_vm(*, confirm: str | None = None) -> Callable[[F], F]:
    """Run the decorated one-VM command once per VM named or matched (see the module docstring).

    ``confirm`` (a verb, "delete") makes several VMs need ``--yes`` or one answer at a terminal,
    given for all of them before the first job is sent.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, name: tuple[str, ...], match: str | None, **params: Any) -> Any:
            ctx = click.get_current_context()
            app = ctx.find_object(Application)
            assert app is not None, "every command runs under the ceso group"
            names = list(
                dict.fromkeys([*name, *(_matching(app, match, params.get("host")) if match else [])])
            )
            if not names:
                if match:
                    raise InvalidInputError(f"no VM matches {match!r}")
                raise click.UsageError("give a VM NAME (several are fine) or --match GLOB", ctx)
            if len(names) == 1 and not match:
                return fn(*args, name=names[0], **params)
            if params.get("idempotency_key"):
                raise InvalidInputError("--idempotency-key names one job: give one VM with it")
            if confirm is not None and not app.dry_run:
                from ceso.cli.prompts import confirm_or_refuse

                listed = "\n  ".join(names)
                confirm_or_refuse(
                    app,
                    f"{confirm.capitalize()} these {len(names)} VMs and all their files?\n  {listed}\n",
                    yes=bool(params.get("yes")),
                    what=f"{confirm} {len(names)} VMs",
                )
                params["yes"] = ctx.params["yes"] = True  # asked once for all of them
            return _run_each(app, names, lambda one: fn(*args, name=one, **params))

        wrapper.__doc__ = (fn.__doc__ or "").rstrip() + _SEVERAL + (_ASKS_ONCE if confirm else "")
        wrapper = click.option(
            "--match",
            metavar="GLOB",
            help="Also every VM whose name matches, e.g. 'web-*' (on --host only, if given): one job each.",
        )(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorate


def _matching(app: Application, pattern: str, host: str | None) -> list[str]:
    """The names of the VMs (templates excepted) matching ``pattern`` on ``host`` or on every host."""
    from fnmatch import fnmatchcase

    from ceso.inventory import list_answering_hosts

    found, failures = list_answering_hosts(app.runtime, host)
    for failure in failures:
        click.echo(f"warning: host {failure.host} did not answer: {failure.error.message}", err=True)
    return sorted({v.name for v in found if fnmatchcase(v.name, pattern) and not v.template})


def _run_each(app: Application, names: list[str], run: Callable[[str], Any]) -> None:
    """One job per name, in order; a summary; the exit status of the failures."""
    app.collected = []
    rows: list[tuple[str, str, str]] = []
    errors: list[dict[str, Any]] = []
    failures: list[CesoError] = []
    try:
        for one in names:
            before = len(app.collected)
            error: CesoError | None = None
            try:
                run(one)
            except WaitInterruptedError:
                raise
            except CesoError as exc:
                error = exc
            job = app.collected[-1] if len(app.collected) > before else {}
            job_id = str(job.get("id", ""))[:8]
            if error is None:
                rows.append((one, job_id, str(job.get("state", "done"))))
                continue
            failures.append(error)
            errors.append({"name": one, "code": error.code, "message": error.message})
            if not error.details.get("reported"):
                app.info(f"error: {one}: {error.message}")
            rows.append((one, job_id, f"{job.get('state', 'failed')}: {error.code}"))
    finally:
        collected, app.collected = app.collected, None
    app.emit(
        {"jobs": collected, "errors": errors},
        lambda: app.table(["vm", "job", "outcome"], rows, title=f"{len(names)} VMs"),
    )
    if failures:
        codes = {f.exit_code for f in failures}
        error = CesoError(
            f"{len(failures)} of {len(names)} VMs failed: {', '.join(e['name'] for e in errors)}",
            code="some_failed",
            details={"reported": True},
        )
        error.exit_code = codes.pop() if len(codes) == 1 else 1
        raise error
