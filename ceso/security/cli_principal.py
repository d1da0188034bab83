"""The CLI's caller: the agent of ``CESO_AGENT_TOKEN`` when it is set, else the local operator.

Agents that drive the CLI instead of cesod set the variable; every command
then runs in that agent's current mode, exactly as through cesod. A missing
or wrong token never falls back to the operator: it is refused (exit 3) and
the attempt audited.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ceso.audit.store import AuditEvent, record
from ceso.constants import ENV_AGENT_TOKEN
from ceso.errors import NotPermittedError
from ceso.security.caller import Caller, bind_caller, reset_caller
from ceso.security.gate import authorize
from ceso.security.operations import Operation
from ceso.security.principals import Principal, authenticate_token, operator_principal

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["authorize_cli", "resolve_cli_principal"]


def resolve_cli_principal(runtime: Runtime) -> Principal:
    """The principal of this CLI process; NotPermittedError (audited) for a bad ``CESO_AGENT_TOKEN``."""
    if ENV_AGENT_TOKEN not in os.environ:
        return operator_principal(runtime.settings)
    token = os.environ[ENV_AGENT_TOKEN].strip()
    try:
        if not token:
            raise NotPermittedError("the agent token is empty", code="unauthenticated")
        return authenticate_token(runtime.engine, token)
    except NotPermittedError as exc:
        details = {"code": exc.code, "reason": exc.message}
        record(
            runtime.engine,
            AuditEvent("auth.refused", outcome="refused", actor="unknown", source="cli", details=details),
        )
        raise NotPermittedError(f"{ENV_AGENT_TOKEN}: {exc.message}", code=exc.code) from None


def authorize_cli(runtime: Runtime, principal: Principal, op: Operation) -> Operation:
    """Bind ``principal`` as the caller until the command ends, then check the command's operation ``op``."""
    import click

    token = bind_caller(Caller(principal, source="cli"))
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.call_on_close(lambda: reset_caller(token))
    return authorize(runtime, principal, op.name)
