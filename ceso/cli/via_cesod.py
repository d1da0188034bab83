"""Handing a parsed command to the local cesod when one serves this configuration.

A ``ceso`` process pays for its imports, a database connection, an ESXi
login for the name check and a queue connection on every command; a running
cesod holds all of them. For a job command declared with :func:`dispatch`, the
CLI sends the fields of the command's spec (:mod:`ceso.specs`) to cesod's operator
socket (:mod:`ceso.cesod.local`) and prints the answer exactly as it would have
printed its own outcome: same validation and messages (cesod parses the same spec
and runs the same request builders), same ``--json`` objects, same exit codes. cesod acts as the local operator; audit
records name the source ``cli``.

The command runs in this process as before when there is no such cesod,
with ``--dry-run``, for an agent (``CESO_AGENT_TOKEN``), or with
``CESO_NO_CESOD=1``. What only this process can do happens here first:
reading ``--ssh-key`` files and ``--userdata``/``--vendordata`` files (cesod
never reads a file a caller names), and, on a terminal, following the job with
a progress bar.

One way in: click parses the command, then :func:`dispatch` (a decorator of its own,
stacked above the sandbox check of :func:`ceso.cli.application.pass_app`) hands the spec
to cesod, which authorizes and audits it there; only if cesod does not take it does the
command's body run here, after the sandbox check.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from ceso.cesod.local import call, connect
from ceso.cli.application import Application
from ceso.cli.options import JobOptions
from ceso.cli.spec_options import load_spec
from ceso.errors import CesoError, TimeoutExpiredError
from ceso.security.operations import operation_for_command

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["dispatch", "forward"]

_TERMINAL = ("succeeded", "failed", "cancelled")
_DEFAULT_WAIT_S = 30.0  # what cesod waits at most when asked to wait without a timeout
_ANSWER_MARGIN_S = 30.0  # on top of the wait: cesod's own work before and after it


def dispatch(
    spec: str,
    to_params: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    *,
    here: Callable[[dict[str, Any]], bool] | None = None,
) -> Callable[[F], F]:
    """A job command's one dispatch: its click params → the fields of spec ``spec`` (a reference,
    ``"module:Class"``), by ``to_params``, the command's one mapping, which also reads the files
    options name (bad input fails there, nothing sent); then the local cesod runs them if one
    takes them (:func:`forward`), else the command's body does, as
    ``fn(app, spec=SPEC, job=JobOptions)``. ``here(params)`` true keeps this invocation in this
    process (a confirmation the CLI asks first).

    Stacked between the command's options and :func:`ceso.cli.application.pass_app`, so a
    command cesod took is authorized and audited by cesod, and one it did not take by the
    sandbox check here, never both. The spec class is loaded only on the second path: cesod
    parses the fields itself.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **params: Any) -> Any:
            ctx = click.get_current_context()
            app = ctx.find_object(Application)
            assert app is not None, "every command runs under the ceso group"
            job = JobOptions.pop_from(params)
            fields = {k: v for k, v in (to_params or dict)(params).items() if v is not None}
            if not (here is not None and here(params)):
                operation = operation_for_command(ctx.command_path.split()[1:]).name
                if forward(app, operation, fields, job):
                    return None
            return fn(*args, spec=load_spec(spec).parse(fields), job=job)

        wrapper.spec = spec  # type: ignore[attr-defined]  # what the command runs, for tests and docs
        return wrapper  # type: ignore[return-value]

    return decorate


def forward(app: Application, operation: str, fields: dict[str, Any], job: JobOptions) -> bool:
    """Run job method ``operation`` with the spec's ``fields`` through the local cesod and report
    it as this process would have; False if it must run in this process instead (nothing has
    been sent then)."""
    if app.dry_run:
        return False
    sock = connect(app.config)
    if sock is None:
        return False
    wait, timeout, key = job.wait, job.timeout, job.idempotency_key
    follow_here = wait and (app.interactive or app.progress)  # progress is shown by this process
    ask_wait = wait and not follow_here
    request = {**fields, "idempotency_key": key, "wait": ask_wait}
    if ask_wait and timeout is not None:
        request["timeout"] = timeout
    sent_at = time.time()
    started = time.monotonic()
    answer = _call(sock, operation, request, ask_wait, timeout, key)
    if answer is None:  # the connection broke; the idempotency key makes doing it here safe
        return False
    if key is not None and _created_before(answer, sent_at):
        app.info(f"idempotency key already used: following job {answer['id']}")
    if not wait:
        app.emit(answer, lambda: click.echo(answer["id"]))
    elif follow_here:
        app.follow(answer["id"], timeout=timeout)
    else:
        _follow(app, answer, timeout, started)
    return True


def _follow(app: Application, job: dict[str, Any], timeout: float | None, started: float) -> None:
    """Wait on cesod until the job ends (or here, if cesod goes away), then report it."""
    while job["state"] not in _TERMINAL:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            raise TimeoutExpiredError(
                f"job {job['id']} still {job['state']} after {timeout:g}s (it goes on running)"
            )
        job_id = job["id"]
        answer = _wait_more(app, job_id, left)
        if answer is None:  # cesod went away while the job runs: wait for it here
            app.follow(job_id, timeout=left)
            return
        job = answer
    app.report_outcome(job)


def _call(sock: Any, method: str, request: dict[str, Any], wait: bool, timeout: float | None,
          key: str | None) -> dict[str, Any] | None:  # fmt: skip
    """cesod's answer; None if the connection broke and ``key`` makes a retry here safe."""
    limit = (_DEFAULT_WAIT_S if timeout is None else min(timeout, 600.0)) if wait else 0.0
    try:
        result: dict[str, Any] = call(sock, method, request, timeout=limit + _ANSWER_MARGIN_S)
    except (OSError, ValueError) as exc:
        if key is not None:
            return None
        raise CesoError(
            f"lost the connection to the local cesod before its answer ({exc}); the job may have been "
            "submitted: see `ceso job list`, or run the command again with an --idempotency-key",
            code="cesod_connection_lost",
        ) from exc
    return result


def _wait_more(app: Application, job_id: str, left: float | None) -> dict[str, Any] | None:
    """The job after one more ``job.wait`` on cesod; None if cesod is no longer there."""
    sock = connect(app.config)
    if sock is None:
        return None
    wait_s = _DEFAULT_WAIT_S if left is None else min(left, 600.0)
    try:
        result: dict[str, Any] = call(sock, "job.wait", {"id": job_id, "timeout": wait_s},
                                      timeout=wait_s + _ANSWER_MARGIN_S)  # fmt: skip
    except (OSError, ValueError):
        return None
    return result


def _created_before(job: dict[str, Any], moment: float) -> bool:
    """True if the job existed before ``moment`` (an idempotency key answered with an older job)."""
    created = datetime.fromisoformat(str(job["created_at"]))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # ceso stores UTC
    return created.timestamp() < moment - 1.0
