"""Which way a job reaches its host — the vSphere API or SSH — and the backend it gets for it.

Route choice (:func:`choose_route`), per host, from its SQL record:

* ``route = api`` or ``ssh`` forces that route;
* ``auto`` takes SSH when the last probe found API writes refused (a free
  license, or a ``RestrictedVersion`` fault on the probe's write), else the API.

:func:`open_backend` makes that choice for a job (``ctx.backend()`` calls it),
records it on every later step of the job (``route`` in the step) and returns
the backend of that route. A job that can only run on one route says so
(``require``) and is refused clearly, before any call to the host, on a host
that takes the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, overload

from sqlmodel import Session

from ceso.errors import NotPermittedError

if TYPE_CHECKING:
    from ceso.backends.api import ApiVmBackend
    from ceso.backends.protocol import AnyBackend, Recorder
    from ceso.db.models import Host
    from ceso.jobs.context import JobContext
    from ceso.runtime import Runtime

__all__ = ["ROUTES", "BackendFactory", "choose_route", "open_backend", "route_of"]

ROUTES = ("auto", "api", "ssh")

#: Builds a job's backend instead of the real routes (``Runtime.backend_factory``): given the host's
#: row, the chosen route and the job's call recorder. Tests plug :class:`ceso.backends.fake.FakeBackend`
#: in here, as an HTTP client takes an in-memory transport.
BackendFactory = Callable[["Host", str, "Recorder"], "AnyBackend"]


def choose_route(host: Host) -> str:
    """``api`` or ``ssh`` for ``host`` (see the module docstring)."""
    if host.route in ("api", "ssh"):
        return host.route
    return "ssh" if (host.capabilities or {}).get("api_writes") is False else "api"


def route_of(runtime: Runtime, host_name: str) -> str:
    """The route jobs on host ``host_name`` will take now (``api`` or ``ssh``); NotFoundError if unknown."""
    from ceso.hosts.registry import get_host

    with Session(runtime.engine) as session:
        return choose_route(get_host(session, host_name))


@overload
def open_backend(ctx: JobContext, *, require: None = None, what: str = "") -> AnyBackend: ...
@overload
def open_backend(ctx: JobContext, *, require: Literal["api"], what: str) -> ApiVmBackend: ...
def open_backend(ctx: JobContext, *, require: str | None = None, what: str = "") -> AnyBackend:
    """The backend of the job's host on its route; the route is recorded on every later step.

    ``require="api"``: the job (``what`` names it) runs only through the API;
    on a host whose route is SSH it is refused with NotPermittedError
    (``needs_api_route``). Raises NotPermittedError (``api_read_only``) when
    the API cannot write and no SSH login is configured for the host, and
    NotFoundError for an unknown host. Nothing is asked of the host here.
    """
    from ceso.hosts.registry import get_host
    from ceso.ssh.target import ssh_configured

    with Session(ctx.runtime.engine) as session:
        host = get_host(session, ctx.job.host)
    route = choose_route(host)
    why_ssh = "is set aside by route: ssh" if host.route == "ssh" else "cannot write"
    if require is not None and route != require:
        raise NotPermittedError(
            f"{what or ctx.job.kind} needs the vSphere API, but host {host.name} takes the SSH route "
            f"(its API {why_ssh}); this is not done over SSH",
            code="needs_api_route",
        )
    if route == "ssh" and not ssh_configured(host):
        raise NotPermittedError(
            f"host {host.name} needs the SSH route (its API {why_ssh}) but has no SSH login: "
            "re-add it with --ssh-user and --ssh-key",
            code="api_read_only",
        )
    ctx.take_route(route)
    timeout = ctx.runtime.settings.esxi_task_timeout_s
    if ctx.runtime.backend_factory is not None and require is None:  # an API-only job needs the real API
        return ctx.runtime.backend_factory(host, route, ctx.record_call)
    if route == "api":
        from ceso.backends.api import ApiVmBackend

        return ApiVmBackend(ctx.client(), ctx.record_call, task_timeout=timeout)
    from ceso.backends.ssh import SshVmBackend

    return SshVmBackend(ctx.runtime.ssh.client(host), ctx.record_call, task_timeout=timeout)
