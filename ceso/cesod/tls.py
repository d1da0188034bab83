"""TLS for cesod's agent listener: the server context, and the rule that keeps bearer tokens off
the network in clear text.

cesod authenticates agents with bearer tokens, so anything that can read the traffic can act as
the agent. The rule (:func:`check_transport`): cesod serves plain HTTP only on a loopback address;
any other address needs a certificate and key (TLS 1.2 or newer), or the operator's explicit
``--insecure-http`` for a TLS-terminating proxy that sits in front of it.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

from ceso.errors import ConfigError

__all__ = ["check_transport", "is_loopback", "server_context"]


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1); False for wildcards."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(host: str, port: int, *, tls: bool, insecure_http: bool) -> None:
    """Refuse plain HTTP on a non-loopback address unless the operator asked for it.

    Raises ConfigError (exit 2) naming the fixes; returns quietly otherwise.
    """
    if tls or insecure_http or is_loopback(host):
        return
    shown = f"[{host}]" if ":" in host else host
    raise ConfigError(
        f"cesod would send agents' bearer tokens in clear text on {shown}:{port}: give --tls-cert and "
        "--tls-key (cesod.tls_cert, cesod.tls_key), listen on a loopback address, or pass "
        "--insecure-http when a TLS-terminating proxy sits in front of cesod"
    )


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side context with ``cert`` (PEM, the chain after the leaf) and its ``key`` (PEM).

    TLS 1.2 is the oldest version offered. Raises ConfigError if a file is missing or unreadable,
    or the key does not match the certificate; the message names the files, never their contents.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for label, path in (("certificate", cert), ("key", key)):
        if not path.is_file():
            raise ConfigError(f"cesod TLS {label} {str(path)!r} is not a readable file")
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (ssl.SSLError, OSError) as exc:
        # The reason only (e.g. KEY_VALUES_MISMATCH, PEM lib): ssl's messages never quote the key.
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise ConfigError(
            f"cesod cannot use the TLS certificate {str(cert)!r} with the key {str(key)!r}: {reason} "
            "(both PEM; the key must match the certificate and must not need a passphrase)"
        ) from None
    return context
