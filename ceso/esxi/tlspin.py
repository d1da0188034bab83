"""TLS contexts that accept exactly one certificate: the pinned one.

ESXi certificates are usually self-signed, so CA validation proves nothing;
the operator pins the SHA-256 fingerprint instead. pyVmomi's own thumbprint
check runs only when CA validation fails, so a CA-valid certificate with a
different fingerprint would slip through; this context checks the pin on every
handshake, for every connection pyVmomi opens, whatever the CA says.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

__all__ = ["CertificatePinError", "pinned_context"]


class CertificatePinError(ssl.SSLError):
    """The server's certificate is not the pinned one."""


class _PinnedSocket(ssl.SSLSocket):
    expected_sha256 = ""

    def do_handshake(self, block: bool = False) -> None:
        super().do_handshake(block)
        der = self.getpeercert(binary_form=True) or b""
        seen = hashlib.sha256(der).hexdigest()
        if seen != self.expected_sha256:
            self.close()
            raise CertificatePinError(f"certificate SHA-256 {seen} is not the pinned {self.expected_sha256}")


def pinned_context(thumbprint: str) -> ssl.SSLContext:
    """An SSL context whose handshakes fail unless the peer's certificate has ``thumbprint`` (SHA-256)."""
    expected = thumbprint.replace(":", "").lower()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # the pin below replaces CA validation
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    socket_class: Any = type("PinnedSSLSocket", (_PinnedSocket,), {"expected_sha256": expected})
    ctx.sslsocket_class = socket_class
    return ctx
