"""SSH host-key pinning and private-key loading.

A host's SSH key is pinned by its OpenSSH-style fingerprint, ``SHA256:`` and the
unpadded base64 of the SHA-256 of the public key blob — what ``ssh-keygen -lf``
and ssh's "host key fingerprint is" line show, so an operator can compare it
with the ESXi console. There is no known_hosts file: the fingerprint stored on
the host's row is the only key ever accepted, and :class:`PinnedHostKeyPolicy`
refuses every other (no trust on first use after the first pinning).
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import socket
from typing import Any

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ceso.errors import InvalidInputError, ThumbprintMismatchError
from ceso.ssh.faults import translate

__all__ = [
    "PinnedHostKeyPolicy",
    "fetch_host_key",
    "fingerprint",
    "load_private_key",
    "normalize_fingerprint",
]

_FINGERPRINT = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")


def fingerprint(key: paramiko.PKey) -> str:
    """The OpenSSH SHA256 fingerprint of a public key: ``SHA256:<43 base64 chars>``."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def normalize_fingerprint(value: str) -> str:
    """Validate a pinned fingerprint as typed (``SHA256:...``; the prefix may be omitted).

    Raises InvalidInputError unless it is 32 bytes in unpadded base64.
    """
    text = value.strip().rstrip("=")
    if not text.startswith("SHA256:"):
        text = "SHA256:" + text
    if not _FINGERPRINT.match(text):
        raise InvalidInputError(
            f"SSH host key {value!r} is not a SHA256 fingerprint like SHA256:AbC...(43 characters)"
        )
    return text


class PinnedHostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Accept exactly the pinned fingerprint; refuse any other key with ThumbprintMismatchError.

    paramiko consults this policy for every key because ceso loads no known_hosts file.
    """

    def __init__(self, host: str, expected: str) -> None:
        self.host = host
        self.expected = expected
        self.seen: str | None = None

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        self.seen = fingerprint(key)
        if self.seen != self.expected:
            raise ThumbprintMismatchError(
                f"SSH host key of host {self.host} is {key.get_name()} {self.seen}, not the pinned "
                f"{self.expected}; refusing to connect (re-add the host if the key really changed)",
                code="ssh_host_key_mismatch",
                details={"seen": self.seen, "pinned": self.expected},
            )


def fetch_host_key(host: str, address: str, port: int, *, timeout: float = 10.0) -> tuple[str, str]:
    """Connect without authenticating and return the server's (key type, fingerprint).

    The key exchange uses paramiko's default key-type preference, the same as
    later logins, so the key shown is the key that will be checked. Raises
    HostUnreachableError (or TransientError) if no SSH server answers.
    """
    transport: paramiko.Transport | None = None
    try:
        sock = socket.create_connection((address, port), timeout=timeout)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = timeout
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
        return key.get_name(), fingerprint(key)
    except Exception as exc:
        raise translate(exc, host=host, action="read the SSH host key", connecting=True) from exc
    finally:
        if transport is not None:
            transport.close()


def load_private_key(text: str, *, host: str) -> paramiko.PKey:
    """Parse an unencrypted OpenSSH or PEM private key (RSA, ECDSA or Ed25519).

    Raises InvalidInputError for anything else; the key text never appears in the message.
    """
    data = text.encode()
    try:
        try:
            loaded: Any = serialization.load_ssh_private_key(data, password=None)
        except ValueError:
            loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:  # cryptography says "Password was not given but private key is encrypted"
        raise InvalidInputError(
            f"the SSH private key for host {host} is encrypted; give an unencrypted key"
        ) from exc
    except (ValueError, paramiko.SSHException) as exc:
        raise InvalidInputError(f"the SSH private key for host {host} is not a readable private key") from exc
    classes: list[tuple[type[Any], type[paramiko.PKey]]] = [
        (rsa.RSAPrivateKey, paramiko.RSAKey),
        (ed25519.Ed25519PrivateKey, paramiko.Ed25519Key),
        (ec.EllipticCurvePrivateKey, paramiko.ECDSAKey),
    ]
    for crypto_class, key_class in classes:
        if isinstance(loaded, crypto_class):
            try:
                return key_class.from_private_key(io.StringIO(text))
            except Exception as exc:
                raise translate(exc, host=host, action="load the SSH private key") from exc
    raise InvalidInputError(f"the SSH private key for host {host} has an unsupported type")
