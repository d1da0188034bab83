"""The sandbox check and audit every CLI command passes before its body runs (through ``pass_app``).

The command path names the operation (``ceso vm create`` → ``vm.create``, see
:mod:`ceso.security.operations`); the application resolves the caller (the
agent of ``CESO_AGENT_TOKEN`` or the local operator), binds it for the
command and refuses, audited, what its mode does not allow. A command that
changes state without a job (``host add``, ``template remove``) is audited
here when it ends, unless its core function writes a richer record itself.

Authorization and audit only: handing a command to a local cesod is the job of
:func:`ceso.cli.via_cesod.dispatch`, stacked above this check.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ceso.constants import ENV_AGENT_TOKEN
from ceso.security.modes import READ_ONLY
from ceso.security.operations import Operation, operation_for_command

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["guarded"]


def guarded(fn: F, app_cls: type[Any]) -> F:
    """``fn`` called as ``fn(app, ...)`` after the sandbox check of the running command."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        app = ctx.find_object(app_cls)
        if app is None:  # pragma: no cover - every command runs under the `ceso` group
            raise RuntimeError("no ceso Application in the click context")
        op = operation_for_command(ctx.command_path.split()[1:])
        if _operator_read(op):
            # Every mode allows read-only operations, and reads are not audited, so the local
            # operator's check cannot refuse and leaves no trace: skip resolving the caller
            # (its SQL and imports are most of what a quick read like `job status` costs).
            return ctx.invoke(fn, app, *args, **kwargs)
        op = app.authorize_command(op)
        if op.kind != "change" or op.self_audited or app.dry_run:
            return ctx.invoke(fn, app, *args, **kwargs)
        return _audited(app, op.name, ctx, lambda: ctx.invoke(fn, app, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


def _operator_read(op: Operation) -> bool:
    """True for a read-only operation run by the local operator (no agent token in the environment)."""
    return ENV_AGENT_TOKEN not in os.environ and op.kind == "read" and op.mode == READ_ONLY


def _located(params: dict[str, Any]) -> str | None:
    """The host of a datastore command's ``HOST:[DS]`` argument, if it has one."""
    from ceso.datastore.paths import location_host

    location = params.get("location")
    return location_host(location) if isinstance(location, str) else None


def _audited(app: Any, operation: str, ctx: click.Context, body: Callable[[], Any]) -> Any:
    from ceso.audit.store import AuditEvent, record
    from ceso.errors import CesoError

    params = dict(ctx.params)
    group = operation.partition(".")[0]
    where: dict[str, Any] = {
        "operation": operation,
        "host": params.get("host") or (params.get("name") if group == "host" else None) or _located(params),
        "vm": params.get("vm") or (params.get("name") if group in ("vm", "template") else None),
    }
    try:
        result = body()
    except CesoError as exc:
        failed = AuditEvent(
            "operation", outcome="failed", details={"params": params, "error": exc.to_dict()}, **where
        )
        record(app.runtime.engine, failed)
        raise
    record(app.runtime.engine, AuditEvent("operation", details={"params": params}, **where))
    return result
