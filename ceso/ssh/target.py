"""Where and as whom the SSH route logs in to a host — read from its row; no paramiko here.

A host row says where and how to log in (``ssh_port``, ``ssh_username``,
``ssh_auth`` = key|password, ``ssh_host_key`` = the pinned fingerprint); the
secret lives in the secret store under ``host:<name>:ssh-key`` or
``host:<name>:ssh-password``, beside the API password, and is read only when
a login needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ceso.errors import NotPermittedError
from ceso.hosts.endpoint import parse_endpoint

if TYPE_CHECKING:
    from ceso.db.models import Host

__all__ = ["AUTH_KINDS", "SshTarget", "ssh_configured", "ssh_secret_key", "ssh_target"]

AUTH_KINDS = ("key", "password")


@dataclass(frozen=True)
class SshTarget:
    """Where and as whom to log in; ``auth`` is ``key`` or ``password``; ``host_key`` the pinned fingerprint."""

    host: str
    address: str
    port: int
    username: str
    host_key: str
    auth: str


def ssh_secret_key(host: str, auth: str) -> str:
    """The secret-store key of a host's SSH private key (``auth="key"``) or password."""
    return f"host:{host}:ssh-{'key' if auth == 'key' else 'password'}"


def ssh_configured(host: Host) -> bool:
    """True if the host row holds everything an SSH login needs."""
    return bool(host.ssh_username and host.ssh_auth in AUTH_KINDS and host.ssh_host_key)


def ssh_target(host: Host) -> SshTarget:
    """Where and as whom to log in to ``host``; NotPermittedError if it has no SSH settings."""
    if not ssh_configured(host):
        raise NotPermittedError(
            f"host {host.name} has no SSH login configured: re-add it with --ssh-user and --ssh-key "
            "(or --ssh-password-stdin) to use the SSH route",
            code="ssh_not_configured",
        )
    assert host.ssh_username is not None and host.ssh_auth is not None and host.ssh_host_key is not None
    return SshTarget(
        host=host.name,
        address=parse_endpoint(host.url).hostname,
        port=host.ssh_port or 22,
        username=host.ssh_username,
        host_key=host.ssh_host_key,
        auth=host.ssh_auth,
    )
