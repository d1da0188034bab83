"""Core host operations. Callers pass a Runtime; nothing here prints or exits."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from ceso.db.engine import session_scope
from ceso.db.models import Host
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError, ThumbprintMismatchError
from ceso.esxi.client import EsxiClient
from ceso.esxi.endpoint import fetch_thumbprint, normalize_thumbprint, parse_endpoint
from ceso.hosts.names import validate_host_name
from ceso.runtime import Runtime
from ceso.secrets import host_secret_key

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
        "created_at": host.created_at.isoformat(),
        "checked_at": host.checked_at.isoformat() if host.checked_at else None,
    }


def get_host(session: Session, name: str) -> Host:
    """The registered host ``name``; NotFoundError lists the known names."""
    host = session.exec(select(Host).where(Host.name == name)).first()
    if host is None:
        known = ", ".join(session.exec(select(Host.name).order_by(Host.name)).all()) or "none"
        raise NotFoundError(f"unknown host {name!r} (registered: {known})")
    return host


def list_hosts(session: Session) -> list[Host]:
    return list(session.exec(select(Host).order_by(Host.name)).all())


def add_host(runtime: Runtime, request: AddHostRequest) -> Host:
    """Register a host after proving we can log in to it.

    Order: validate input → refuse a duplicate name → pin or check the TLS
    thumbprint → log in → store the password → insert the row. Any failure
    leaves neither a row nor a stored password behind.
    """
    name = validate_host_name(request.name)
    endpoint = parse_endpoint(request.url)
    if not request.username or any(ord(c) < 32 for c in request.username):
        raise InvalidInputError("--user must be a non-empty user name without control characters")
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

    password = request.password
    client = EsxiClient(
        name=name,
        endpoint=endpoint,
        username=request.username,
        password=lambda: password,
        thumbprint=thumbprint,
        timeout=runtime.settings.esxi_timeout_s,
    )
    client.connect()
    try:
        about = client.content.about
        product, api_version = str(about.fullName), str(about.apiVersion)
    finally:
        client.logout()

    secret_key = host_secret_key(name)
    runtime.secrets.set(secret_key, password)
    try:
        with session_scope(runtime.engine) as session:
            host = Host(
                name=name,
                url=endpoint.url,
                username=request.username,
                thumbprint=thumbprint,
                route=request.route,
                product=product,
                api_version=api_version,
                checked_at=utcnow(),
            )
            session.add(host)
    except sa.exc.IntegrityError as exc:
        runtime.secrets.delete(secret_key)
        raise ConflictError(f"host {name!r} is already registered") from exc
    except BaseException:
        runtime.secrets.delete(secret_key)
        raise
    return host


def remove_host(runtime: Runtime, name: str) -> Host:
    """Forget a host: its row and its stored password (not its VMs)."""
    with session_scope(runtime.engine) as session:
        host = get_host(session, name)
        session.delete(host)
    runtime.secrets.delete(host_secret_key(name))
    return host


def check_host(runtime: Runtime, name: str) -> dict[str, Any]:
    """Log in and report product, API version, datastores, networks and VM count; record it in SQL."""
    from ceso.esxi.inventory import host_facts

    with Session(runtime.engine) as session:
        host = get_host(session, name)
    client = runtime.client(host)
    facts = host_facts(client)
    with session_scope(runtime.engine) as session:
        row = get_host(session, name)
        row.product = facts["product"]
        row.api_version = facts["api_version"]
        row.capabilities = {
            "api_type": facts["api_type"],
            "datastores": [d["name"] for d in facts["datastores"]],
        }
        row.checked_at = utcnow()
        session.add(row)
    return {"name": name, "url": host.url, **facts}


def client_for(runtime: Runtime, name: str) -> EsxiClient:
    """The pooled session of the registered host ``name``."""
    with Session(runtime.engine) as session:
        host = get_host(session, name)
    return runtime.client(host)
