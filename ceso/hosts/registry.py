"""Core host operations. Callers pass a Runtime; nothing here prints or exits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ceso.db.bounds import check_text
from ceso.db.engine import session_scope
from ceso.db.models import Host
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, ThumbprintMismatchError
from ceso.esxi.client import EsxiClient
from ceso.hosts.direct import unknown_host
from ceso.hosts.endpoint import fetch_thumbprint, normalize_thumbprint, parse_endpoint
from ceso.hosts.names import validate_host_name, validate_login_user
from ceso.runtime import Runtime
from ceso.secrets import host_secret_key
from ceso.ssh.target import ssh_secret_key

if TYPE_CHECKING:
    from ceso.hosts.ssh_setup import SshOptions, SshSetup

__all__ = [
    "AddHostRequest",
    "add_host",
    "check_host",
    "get_host",
    "host_to_dict",
    "list_hosts",
    "remove_host",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AddHostRequest:
    """What ``host add`` needs. ``thumbprint`` pins https; ``accept_thumbprint`` trusts the one seen."""

    name: str
    url: str
    username: str
    password: str
    thumbprint: str | None = None
    accept_thumbprint: bool = False
    route: str = "auto"
    ssh: SshOptions | None = None  # SSH login for the SSH route (ceso.hosts.ssh_setup)

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return f"AddHostRequest(name={self.name!r}, url={self.url!r}, username={self.username!r})"


def host_to_dict(host: Host) -> dict[str, Any]:
    """The ``--json`` shape of a host (no secret in it)."""
    return {
        "name": host.name,
        "url": host.url,
        "username": host.username,
        "thumbprint": host.thumbprint,
        "route": host.route,
        "product": host.product,
        "api_version": host.api_version,
        "ssh_username": host.ssh_username,
        "ssh_port": host.ssh_port,
        "ssh_auth": host.ssh_auth,
        "ssh_host_key": host.ssh_host_key,
        "capabilities": host.capabilities,
        "created_at": host.created_at.isoformat(),
        "checked_at": host.checked_at.isoformat() if host.checked_at else None,
    }


def get_host(session: Session, name: str) -> Host:
    """The registered host ``name``; NotFoundError lists the known names."""
    host = session.exec(select(Host).where(Host.name == name)).first()
    if host is None:
        raise unknown_host(name, list(session.exec(select(Host.name).order_by(Host.name)).all()))
    return host


def list_hosts(session: Session) -> list[Host]:
    return list(session.exec(select(Host).order_by(Host.name)).all())


def add_host(runtime: Runtime, request: AddHostRequest) -> Host:
    """Register a host after proving we can log in to it.

    Order: validate input → refuse a duplicate name → pin or check the TLS
    thumbprint → (with SSH options: pin the SSH host key and log in over SSH)
    → log in → probe capabilities → store the password(s) → insert the row.
    Any failure leaves neither a row nor a stored password or SSH key behind.
    """
    name = validate_host_name(request.name)
    endpoint = parse_endpoint(check_text(request.url, Host, "url", what="--url"))
    validate_login_user(request.username)
    if not request.password:
        raise InvalidInputError("no password given: use --password-stdin or set CESO_HOST_PASSWORD")
    if request.route not in ("auto", "api", "ssh"):
        raise InvalidInputError(f"--route must be auto, api or ssh, not {request.route!r}")
    wanted = normalize_thumbprint(request.thumbprint) if request.thumbprint else None
    with Session(runtime.engine) as session:
        if session.exec(select(Host).where(Host.name == name)).first() is not None:
            raise ConflictError(f"host {name!r} is already registered (remove it first to change it)")

    thumbprint: str | None = None
    if endpoint.scheme == "https":
        seen = fetch_thumbprint(endpoint, timeout=runtime.settings.esxi_timeout_s)
        if wanted is not None and wanted != seen:
            raise ThumbprintMismatchError(f"host {name} presents certificate {seen}, not the pinned {wanted}")
        if wanted is None and not request.accept_thumbprint:
            raise InvalidInputError(
                f"host {name} presents certificate SHA256 {seen}; verify it and pass --thumbprint {seen}",
                code="thumbprint_unconfirmed",
                details={"thumbprint": seen},
            )
        thumbprint = seen

    ssh_setup = _verify_ssh(runtime, name, endpoint.hostname, request.ssh)
    password = request.password
    client = EsxiClient(
        name=name,
        endpoint=endpoint,
        username=request.username,
        password=lambda: password,
        thumbprint=thumbprint,
        timeout=runtime.settings.esxi_timeout_s,
    )
    product, api_version, capabilities = _login_and_probe(client, ssh_setup)

    secret_key = host_secret_key(name)
    runtime.secrets.set(secret_key, password)
    ssh_key = ssh_secret_key(name, ssh_setup.options.auth) if ssh_setup else None
    try:
        if ssh_setup is not None and ssh_key is not None:
            runtime.secrets.set(ssh_key, ssh_setup.options.secret)  # beside the API password
        with session_scope(runtime.engine) as session:
            host = Host(
                name=name,
                url=endpoint.url,
                username=request.username,
                thumbprint=thumbprint,
                route=request.route,
                product=product,
                api_version=api_version,
                capabilities=capabilities,
                checked_at=utcnow(),
            )
            _set_ssh_columns(host, ssh_setup)
            session.add(host)
    except sa.exc.IntegrityError as exc:
        _forget_secrets(runtime, secret_key, ssh_key)
        raise ConflictError(f"host {name!r} is already registered") from exc
    except BaseException:
        _forget_secrets(runtime, secret_key, ssh_key)
        raise
    return host


def _login_and_probe(client: EsxiClient, ssh_setup: SshSetup | None) -> tuple[str, str, dict[str, Any]]:
    """Log in to the API, read product and API version, probe capabilities; always log out."""
    from ceso.hosts.probe import probe_capabilities

    try:
        client.connect()
        about = client.content.about
        capabilities = probe_capabilities(client, ssh_setup.client if ssh_setup else None)
        return str(about.fullName), str(about.apiVersion), capabilities
    finally:
        client.logout()
        if ssh_setup is not None:
            ssh_setup.client.close()


def _verify_ssh(runtime: Runtime, name: str, address: str, options: SshOptions | None) -> SshSetup | None:
    """Pin the SSH host key and prove the SSH login (ceso.hosts.ssh_setup); None without SSH options."""
    if options is None:
        return None
    from ceso.hosts.ssh_setup import verify_ssh

    return verify_ssh(name, address, options, timeout=runtime.settings.esxi_timeout_s)


def _set_ssh_columns(host: Host, setup: SshSetup | None) -> None:
    if setup is not None:
        host.ssh_username = setup.options.username
        host.ssh_port = setup.options.port
        host.ssh_auth = setup.options.auth
        host.ssh_host_key = setup.host_key


def _forget_secrets(runtime: Runtime, *keys: str | None) -> None:
    for key in keys:
        if key is not None:
            runtime.secrets.delete(key)


def remove_host(runtime: Runtime, name: str) -> Host:
    """Forget a host: its row and its stored password (not its VMs)."""
    with session_scope(runtime.engine) as session:
        host = get_host(session, name)
        session.delete(host)
    runtime.secrets.delete(host_secret_key(name))
    for auth in ("key", "password"):
        runtime.secrets.delete(ssh_secret_key(name, auth))
    return host


def check_host(runtime: Runtime, name: str) -> dict[str, Any]:
    """Log in and report product, API version, datastores, networks, VM count and the capability probe.

    The probe (license, API writes, SSH login and tools, hardware versions; see
    :mod:`ceso.hosts.probe`) is stored in ``hosts.capabilities`` for route choice.
    """
    from ceso.esxi.inventory import host_facts

    with Session(runtime.engine) as session:
        host = get_host(session, name)
    from ceso.hosts.probe import probe_capabilities
    from ceso.ssh.target import ssh_configured

    client = runtime.client(host)
    facts = host_facts(client)
    capabilities = probe_capabilities(client, runtime.ssh.client(host) if ssh_configured(host) else None)
    with session_scope(runtime.engine) as session:
        row = get_host(session, name)
        row.product = facts["product"]
        row.api_version = facts["api_version"]
        row.capabilities = capabilities
        row.checked_at = utcnow()
        session.add(row)
    return {"name": name, "url": host.url, "route": host.route, **facts, "capabilities": capabilities}


def client_for(runtime: Runtime, name: str) -> EsxiClient:
    """The pooled session of the registered host ``name``."""
    with Session(runtime.engine) as session:
        host = get_host(session, name)
    return runtime.client(host)
