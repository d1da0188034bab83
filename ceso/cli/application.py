"""The CLI's application object: global options, lazy runtime, output and errors.

Commands build a request, call the core and hand the outcome to this object;
they never print JSON, exit or catch errors themselves. Heavy modules (SQL,
Celery, pyVmomi, rich) are imported inside methods so ``--help`` stays fast.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from click import echo

from ceso.errors import CesoError, JobCancelledError, JobFailedError, exit_code_for

if TYPE_CHECKING:
    from ceso.cli.options import JobOptions
    from ceso.db.models import Job
    from ceso.jobs.request import JobRequest
    from ceso.runtime import Runtime
    from ceso.security.operations import Operation
    from ceso.security.principals import Principal
    from ceso.specs import Spec

__all__ = ["Application", "pass_app"]


class Application:
    """Global options of one invocation and the services commands use."""

    def __init__(
        self,
        config: str | None = None,
        json_output: bool = False,
        dry_run: bool = False,
        verbose: bool = False,
        progress: bool = False,
    ) -> None:
        self.config = config
        self.json_output = json_output
        self.dry_run = dry_run
        self.verbose = verbose
        self.progress = progress  # progress lines on stderr without a terminal
        self.pending_documents: dict[str, str] | None = None
        # While a command runs one job per VM (ceso.cli.each_vm): what each emitted, for one summary.
        self.collected: list[Any] | None = None

    @property
    def runtime(self) -> Runtime:
        from ceso.runtime import get_runtime

        return get_runtime(self.config)

    @functools.cached_property
    def principal(self) -> Principal:
        """Who runs this command: the agent of ``CESO_AGENT_TOKEN`` if set, else the local operator."""
        from ceso.security.cli_principal import resolve_cli_principal

        return resolve_cli_principal(self.runtime)

    def authorize_command(self, op: Operation) -> Operation:
        """Bind the caller for the command of operation ``op`` and check its mode (NotPermittedError,
        audited, exit 3)."""
        from ceso.security.cli_principal import authorize_cli

        return authorize_cli(self.runtime, self.principal, op)

    @property
    def interactive(self) -> bool:
        return sys.stdout.isatty() and not self.json_output

    # -- output -------------------------------------------------------------
    def emit(self, data: Any, human: Callable[[], None] | None = None) -> None:
        """Print ``data`` as JSON with ``--json``, else call ``human`` (or print it plainly).

        While :attr:`collected` is a list, ``data`` is kept there too, and printed in JSON only
        with the others, at the end."""
        if self.collected is not None:
            self.collected.append(data)
            if self.json_output:
                return
        if self.json_output or human is None:
            echo(json.dumps(data, indent=2, default=str))
        else:
            human()

    def table(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> None:
        """A table: rich on a terminal, tab-separated lines otherwise (easy to pipe)."""
        if not sys.stdout.isatty():
            echo("\t".join(c.upper() for c in columns))
            for row in rows:
                echo("\t".join("" if v is None else str(v) for v in row))
            return
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns, title=title, header_style="bold")
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row))
        Console().print(table)

    def show_documents(self, documents: dict[str, str]) -> None:
        """Print decoded cloud-init documents (``--dry-run`` of create and clone) on stderr in JSON mode."""
        if self.json_output:
            self.pending_documents = documents
            return
        for name, text in documents.items():
            echo(f"--- guestinfo.{name} (decoded)")
            echo(text.rstrip())

    def info(self, message: str) -> None:
        """A human message on stderr (kept out of stdout so JSON stays parseable)."""
        if not self.json_output:
            echo(message, err=True)

    # -- jobs -----------------------------------------------------------------
    def submit(self, request: JobRequest, *, wait: bool, timeout: float | None, plan: list[str]) -> None:
        """Submit a job (or show its plan with ``--dry-run``) and report it.

        With ``wait`` the command follows the job to its end and exits 1 if
        it failed or was cancelled; with ``--json`` the job object is printed
        either way.
        """
        if self.dry_run:
            from ceso.security.gate import check_job

            check_job(self.runtime, request)  # a plan the caller may not run is refused like the job
            self.emit(
                {
                    "dry_run": True,
                    "kind": request.kind,
                    "host": request.host,
                    "target": request.target,
                    "params": request.params,
                    "plan": plan,
                    "cloudinit": self.pending_documents,
                },
                lambda: self._print_plan(request, plan),
            )
            return
        from ceso.jobs.store import job_to_dict
        from ceso.jobs.submit import submit_job

        job, created = submit_job(self.runtime, request)
        if not created:
            self.info(f"idempotency key already used: following job {job.id}")
        if not wait:
            from ceso.jobs.liveness import unserved_warning

            warning = unserved_warning(self.runtime, job.host) if job.state == "queued" else None
            if warning:
                echo(f"warning: {warning}", err=True)
            self.emit(
                {**job_to_dict(job), **({"warnings": [warning]} if warning else {})}, lambda: echo(job.id)
            )
            return
        self.follow(job.id, timeout=timeout)

    def submit_spec(
        self,
        spec: Spec,
        request: JobRequest,
        job: JobOptions,
        *,
        documents: dict[str, str] | None = None,
        details: list[str] | None = None,
    ) -> None:
        """:meth:`submit` the job of ``spec``; with ``--dry-run``, show its cloud-init ``documents``
        and the plan of the route its host would take (:func:`ceso.plans.plan_for`)."""
        plan: list[str] = []
        if self.dry_run:
            from ceso.plans import dry_run_plan

            if documents is not None:
                self.show_documents(documents)
            plan = dry_run_plan(self.runtime, spec, request.host, details)
        self.submit(request, wait=job.wait, timeout=job.timeout, plan=plan)

    def follow(self, job_id: str, *, timeout: float | None) -> None:
        """Wait for a job, showing progress on a terminal; print and judge the outcome."""
        from ceso.jobs.store import job_to_dict
        from ceso.jobs.wait import wait_for_job

        warnings: list[str] = []  # e.g. a queued job whose host no live worker serves

        def warn(message: str) -> None:
            warnings.append(message)
            echo(f"warning: {message}", err=True)

        try:
            if self.interactive:
                job = self._wait_with_progress(job_id, timeout, warnings)
            else:
                job = wait_for_job(
                    self.runtime.engine,
                    job_id,
                    timeout=timeout,
                    on_update=_progress_lines() if self.progress else None,
                    redis_url=self.runtime.settings.redis_url,
                    on_no_worker=warn,
                )
        except KeyboardInterrupt:
            from ceso.errors import WaitInterruptedError

            short = job_id[:8]
            raise WaitInterruptedError(
                f"stopped following job {job_id}; the job goes on: `ceso job wait {short}` follows it again, "
                f"`ceso job cancel {short}` stops it",
                details={"job_id": job_id},
            ) from None
        self.report_outcome({**job_to_dict(job), **({"warnings": warnings} if warnings else {})})

    def report_outcome(self, job: dict[str, Any]) -> None:
        """Print an ended job (its ``--json`` object, or a summary) and judge it: JobFailedError
        (the exit code of its error) or JobCancelledError, both marked as already reported."""
        self.emit(job, lambda: _print_outcome(job))
        if job["state"] == "failed":
            error = job.get("error") or {}
            failed = JobFailedError(
                f"job {job['id']} failed: {error.get('message')}",
                code=error.get("code") or "job_failed",
                details={"reported": True},
            )
            failed.exit_code = exit_code_for(error.get("code"))  # a refused request keeps its own exit code
            raise failed
        if job["state"] == "cancelled":
            raise JobCancelledError(f"job {job['id']} was cancelled", details={"reported": True})

    def _wait_with_progress(self, job_id: str, timeout: float | None, warnings: list[str]) -> Job:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from ceso.jobs.wait import wait_for_job

        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            transient=True,
        ) as progress:
            bar = progress.add_task(f"job {job_id[:8]} queued", total=100)

            def warn(message: str) -> None:  # above the bar, which stays
                warnings.append(message)
                progress.console.print(f"warning: {message}", style="yellow", markup=False)

            def update(job: Job) -> None:
                progress.update(bar, completed=job.progress, description=_job_line(job))

            return wait_for_job(
                self.runtime.engine,
                job_id,
                timeout=timeout,
                on_update=update,
                redis_url=self.runtime.settings.redis_url,
                on_no_worker=warn,
            )

    def _print_plan(self, request: JobRequest, plan: list[str]) -> None:
        echo(
            f"dry run: would queue {request.kind} on host {request.host}"
            + (f" for {request.target}" if request.target else "")
        )
        for i, step in enumerate(plan, 1):
            echo(f"  {i}. {step}")


_F = TypeVar("_F", bound=Callable[..., Any])


def _job_line(job: Job) -> str:
    """``job 1a2b3c4d running: copy disk 1/1`` and, when its step reports bytes (a backup's or a
    restore's copy), ``1.2 GiB of 4.0 GiB, 55.0 MiB/s, 40 s left``; when it reports a vSphere task's
    percent (a disk copy on the host), ``40%, 12 s left``."""
    line = f"job {job.id[:8]} {job.state}: {job.current_step or ''}"
    step = next((s for s in reversed(job.steps or []) if s.get("name") == job.current_step), None)
    if step is not None and step.get("bytes_done") is None and step.get("task_percent") is not None:
        eta = step.get("eta_s")
        return f"{line} ({step['task_percent']}%" + (f", {eta} s left)" if eta is not None else ")")
    if step is None or step.get("bytes_done") is None:
        return line
    from ceso.cli.progress import human_bytes

    done, total = step["bytes_done"], step.get("bytes_total")
    parts = [human_bytes(done) + (f" of {human_bytes(total)}" if total else "")]
    if step.get("rate_mib_s") is not None:
        parts.append(f"{step['rate_mib_s']} MiB/s")
    if step.get("eta_s") is not None:
        parts.append(f"{step['eta_s']} s left")
    return f"{line} ({', '.join(parts)})"


def _progress_lines(every_s: float = 5.0) -> Callable[[Job], None]:
    """An ``on_update`` printing the job's progress on stderr: at each new step, else every ``every_s``."""
    import time

    last: dict[str, Any] = {"at": 0.0, "step": None}

    def update(job: Job) -> None:
        now = time.monotonic()
        if job.current_step == last["step"] and now - last["at"] < every_s:
            return
        last.update(at=now, step=job.current_step)
        echo(f"{_job_line(job)} {job.progress}%", err=True)

    return update


def _print_outcome(job: dict[str, Any]) -> None:
    if job["state"] == "succeeded":
        from ceso.cli.render import mapping_lines

        echo(f"job {job['id']} {job['kind']} on {job['host']}: succeeded")
        for line in mapping_lines(job.get("result") or {}):
            echo(line)
    else:
        echo(f"job {job['id']} {job['kind']} on {job['host']}: {job['state']}", err=True)
        error = job.get("error")
        if error and error.get("message"):
            echo(f"error: {error.get('code')}: {error.get('message')}", err=True)


def pass_app(fn: _F) -> _F:
    """Pass the Application as first argument, after the sandbox check of the command (:mod:`ceso.cli.guard`)."""
    from ceso.cli.guard import guarded

    return guarded(fn, Application)


def render_error(error: CesoError, *, json_output: bool) -> None:
    """Print one error: a line on stderr, or a JSON error object on stdout."""
    if error.details.get("reported"):
        return  # the job object was already printed
    from ceso.security.redact import redact, redact_text  # light: re and logging only

    if json_output:
        echo(json.dumps({"error": redact(error.to_dict())}, indent=2, default=str))
    else:
        echo(f"error: {redact_text(error.message)}", err=True)
