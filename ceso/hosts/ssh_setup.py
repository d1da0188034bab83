"""``host add``'s SSH half: validate the options, pin the host key, prove the login works.

Order, so that a failure leaves nothing behind: validate input → read the
host key the server presents → compare it with ``--ssh-host-key`` (or accept
it with ``--accept-ssh-host-key``; otherwise refuse, showing the
fingerprint) → log in once with the key or password. The caller stores the
secret and the row only after this (and the API login) succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceso.errors import InvalidInputError, ThumbprintMismatchError
from ceso.ssh.client import SshClient
from ceso.ssh.keys import fetch_host_key, load_private_key, normalize_fingerprint
from ceso.ssh.target import SshTarget

__all__ = ["SshOptions", "SshSetup", "verify_ssh"]


@dataclass(frozen=True)
class SshOptions:
    """The SSH options of ``host add``; exactly one of ``key`` (private key text) and ``password``."""

    username: str
    port: int = 22
    key: str | None = None
    password: str | None = None
    host_key: str | None = None
    accept_host_key: bool = False

    def __repr__(self) -> str:  # never show the key or password, even in a traceback
        return f"SshOptions(username={self.username!r}, port={self.port}, host_key={self.host_key!r})"

    @property
    def auth(self) -> str:
        return "key" if self.key else "password"

    @property
    def secret(self) -> str:
        return self.key or self.password or ""

    def validate(self, host: str) -> None:
        """InvalidInputError for a bad user, port, credential choice or fingerprint."""
        from ceso.hosts.names import validate_login_user

        validate_login_user(self.username, column="ssh_username", what="--ssh-user")
        if not 1 <= self.port <= 65535:
            raise InvalidInputError(f"--ssh-port {self.port} is not a TCP port")
        if bool(self.key) == bool(self.password):
            raise InvalidInputError("give exactly one of --ssh-key FILE and --ssh-password-stdin")
        if self.key:
            load_private_key(self.key, host=host)  # refuse an unreadable key before touching the network
        if self.host_key:
            normalize_fingerprint(self.host_key)


@dataclass
class SshSetup:
    """A verified SSH login: the pinned fingerprint and a logged-in client (close it when done)."""

    options: SshOptions
    host_key: str
    key_type: str
    client: SshClient


def verify_ssh(host: str, address: str, options: SshOptions, *, timeout: float) -> SshSetup:
    """Pin the host key and log in once (see module docstring).

    Raises InvalidInputError (``ssh_host_key_unconfirmed``, with the
    fingerprint in ``details``), ThumbprintMismatchError, AuthenticationError
    or HostUnreachableError.
    """
    options.validate(host)
    key_type, seen = fetch_host_key(host, address, options.port, timeout=timeout)
    if options.host_key is not None:
        wanted = normalize_fingerprint(options.host_key)
        if wanted != seen:
            raise ThumbprintMismatchError(
                f"host {host} presents SSH host key {key_type} {seen}, not the pinned {wanted}",
                code="ssh_host_key_mismatch",
                details={"seen": seen, "pinned": wanted},
            )
    elif not options.accept_host_key:
        raise InvalidInputError(
            f"host {host} presents SSH host key {key_type} {seen}; verify it (on the ESXi console: "
            f"ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub) and pass --ssh-host-key {seen}",
            code="ssh_host_key_unconfirmed",
            details={"ssh_host_key": seen, "key_type": key_type},
        )
    target = SshTarget(
        host=host,
        address=address,
        port=options.port,
        username=options.username,
        host_key=seen,
        auth=options.auth,
    )
    secret = options.secret
    client = SshClient(target, lambda: secret, connect_timeout=timeout, connect_attempts=1)
    client.connect()
    return SshSetup(options=options, host_key=seen, key_type=key_type, client=client)
