"""Host endpoints: URL validation and TLS certificate fingerprints."""

from __future__ import annotations

import hashlib
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from ceso.errors import HostUnreachableError, InvalidInputError

__all__ = ["Endpoint", "fetch_thumbprint", "normalize_thumbprint", "parse_endpoint"]


@dataclass(frozen=True)
class Endpoint:
    """Where a host's SOAP API answers."""

    scheme: str
    hostname: str
    port: int
    path: str

    @property
    def url(self) -> str:
        host = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return f"{self.scheme}://{host}:{self.port}{self.path}"


def parse_endpoint(url: str) -> Endpoint:
    """Validate a host URL such as ``https://esxi-a.example.com`` or ``http://127.0.0.1:8989/sdk``.

    Only http and https are accepted; plain http must be asked for explicitly
    (it is meant for the simulator). The path defaults to ``/sdk``.
    Raises InvalidInputError with the reason.
    """
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInputError(f"malformed URL {url!r}: empty or contains spaces or control characters")
    if "://" not in url:
        raise InvalidInputError(f"malformed URL {url!r}: give a scheme, e.g. https://{url}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidInputError(f"malformed URL {url!r}: scheme must be https (or http for a simulator)")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"malformed URL {url!r}: bad port") from exc
    if not parts.hostname:
        raise InvalidInputError(f"malformed URL {url!r}: no host name")
    if parts.username or parts.password:
        raise InvalidInputError(f"malformed URL {url!r}: put the user in --user and the password on stdin")
    if parts.query or parts.fragment:
        raise InvalidInputError(f"malformed URL {url!r}: no query or fragment allowed")
    path = parts.path or "/sdk"
    return Endpoint(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def normalize_thumbprint(value: str) -> str:
    """``AA:bb:...`` or ``aabb...`` → lower-case colon-separated SHA-256 hex.

    Raises InvalidInputError unless it is 32 bytes of hex.
    """
    raw = value.replace(":", "").strip().lower()
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        raise InvalidInputError(f"thumbprint {value!r} is not a SHA-256 fingerprint (64 hex digits)")
    return ":".join(raw[i : i + 2] for i in range(0, 64, 2))


def fetch_thumbprint(endpoint: Endpoint, timeout: float = 10.0) -> str:
    """Return the SHA-256 fingerprint of the certificate the host presents.

    The certificate is not validated (ESXi hosts are usually self-signed):
    the fingerprint is what the operator pins. Raises HostUnreachableError.
    """
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((endpoint.hostname, endpoint.port), timeout=timeout) as sock,
            ctx.wrap_socket(sock, server_hostname=endpoint.hostname) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as exc:
        raise HostUnreachableError(
            f"cannot reach {endpoint.hostname}:{endpoint.port} over TLS: {exc}"
        ) from exc
    if der is None:
        raise HostUnreachableError(f"{endpoint.hostname}:{endpoint.port} presented no certificate")
    return normalize_thumbprint(hashlib.sha256(der).hexdigest())
