"""OpenSSH public key parsing without paramiko, and the key-or-file resolver.

A key line is ``[options] <type> <base64 blob> [comment]`` (the authorized_keys
format cloud-init writes verbatim). The blob is decoded and walked field by field
in the SSH wire format (RFC 4253 section 6.6, RFC 5656, RFC 8709, OpenSSH's
PROTOCOL.u2f): a line passes only if the blob's embedded type string equals the
stated type and the fields have the sizes that type requires, so a truncated
paste or a private key is caught here rather than as a guest nobody can log in to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from ceso.errors import InvalidInputError
from ceso.input_files import KIB, read_text_file

__all__ = ["MAX_KEY_FILE", "SSH_KEY_TYPES", "SshPublicKey", "parse_ssh_public_key", "read_ssh_keys"]

#: A file of public keys (or a private key file for the SSH route) larger than this is refused:
#: a 16384-bit RSA key is under 4 KiB, so this holds dozens of keys.
MAX_KEY_FILE = 64 * KIB

#: Key types accepted, each with the curve name its blob must carry (None: no curve field).
SSH_KEY_TYPES: dict[str, str | None] = {
    "ssh-ed25519": None,
    "ssh-rsa": None,
    "ecdsa-sha2-nistp256": "nistp256",
    "ecdsa-sha2-nistp384": "nistp384",
    "ecdsa-sha2-nistp521": "nistp521",
    "sk-ssh-ed25519@openssh.com": None,
    "sk-ecdsa-sha2-nistp256@openssh.com": "nistp256",
}
# Uncompressed point sizes (0x04 || X || Y); OpenSSH accepts no other encoding.
_EC_POINT_SIZES = {"nistp256": 65, "nistp384": 97, "nistp521": 133}
_RSA_MIN_BITS = 1024  # OpenSSH's SSH_RSA_MINIMUM_MODULUS_SIZE: sshd refuses anything smaller.
_MAX_BLOB = 16384  # far above an RSA-16384 key; bounds work on hostile input


@dataclass(frozen=True)
class SshPublicKey:
    """One parsed public key line. ``line`` is the normalized text written to the guest."""

    key_type: str
    blob: bytes
    comment: str
    options: str | None

    @property
    def line(self) -> str:
        parts = [self.options] if self.options else []
        parts += [self.key_type, base64.b64encode(self.blob).decode("ascii")]
        if self.comment:
            parts.append(self.comment)
        return " ".join(parts)

    @property
    def fingerprint(self) -> str:
        """``SHA256:...`` as ``ssh-keygen -l`` prints it: safe to log and audit."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode("ascii").rstrip("=")
        return f"SHA256:{digest}"


class _Reader:
    """Reads SSH wire-format fields; raises ValueError on any overrun."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self) -> bytes:
        if self.pos + 4 > len(self.data):
            raise ValueError("blob is truncated")
        (size,) = struct.unpack(">I", self.data[self.pos : self.pos + 4])
        start = self.pos + 4
        if start + size > len(self.data):
            raise ValueError("blob is truncated")
        self.pos = start + size
        return self.data[start : self.pos]

    def done(self) -> bool:
        return self.pos == len(self.data)


def _check_blob(key_type: str, blob: bytes) -> None:
    """Walk the blob's fields for ``key_type``; raise ValueError naming what is wrong."""
    reader = _Reader(blob)
    embedded = reader.string()
    if embedded != key_type.encode("ascii"):
        raise ValueError(f"the blob says {embedded.decode('ascii', 'replace')!r}, not {key_type!r}")
    curve = SSH_KEY_TYPES[key_type]
    if key_type == "ssh-rsa":
        exponent, modulus = reader.string(), reader.string()
        if not exponent or not modulus:
            raise ValueError("RSA exponent or modulus is empty")
        bits = int.from_bytes(modulus, "big").bit_length()
        if bits < _RSA_MIN_BITS:
            raise ValueError(f"RSA modulus is {bits} bits; OpenSSH refuses keys under {_RSA_MIN_BITS}")
    elif curve is None:  # ssh-ed25519 and its security-key variant
        if len(reader.string()) != 32:
            raise ValueError("Ed25519 public key is not 32 bytes")
    else:
        if reader.string() != curve.encode("ascii"):
            raise ValueError(f"curve name is not {curve!r}")
        point = reader.string()
        if len(point) != _EC_POINT_SIZES[curve] or point[0] != 4:
            raise ValueError(f"EC point is not an uncompressed {curve} point")
    if key_type.startswith("sk-"):
        reader.string()  # the FIDO application, normally "ssh:"
    if not reader.done():
        raise ValueError("blob has trailing bytes")


def _split_line(line: str) -> list[str]:
    """Split on whitespace, keeping a double-quoted run (authorized_keys options) in one token."""
    tokens: list[str] = []
    current: list[str] = []
    quoted = False
    for char in line:
        if char == '"':
            quoted = not quoted
        if char.isspace() and not quoted:
            if current:
                tokens.append("".join(current))
                current = []
            continue
        current.append(char)
    if quoted:
        raise ValueError("unbalanced double quote in the options")
    if current:
        tokens.append("".join(current))
    return tokens


def parse_ssh_public_key(line: str, field: str = "ssh key") -> SshPublicKey:
    """Parse one OpenSSH public key line.

    Accepts an optional authorized_keys options prefix and a free-text comment.
    Raises InvalidInputError naming ``field`` and (a prefix of) the bad line when the
    type is unknown, the base64 is invalid or the blob does not match its type.
    """
    text = line.strip()
    shown = text if len(text) <= 60 else text[:57] + "..."
    if text.startswith("-----BEGIN") or "PRIVATE KEY" in text:
        raise InvalidInputError(f"{field} is a private key; give the public key (the .pub file) instead")
    try:
        tokens = _split_line(text)
    except ValueError as exc:
        raise InvalidInputError(f"{field} {shown!r} is not an OpenSSH public key: {exc}") from exc
    options: str | None = None
    if tokens and tokens[0] not in SSH_KEY_TYPES and len(tokens) >= 3 and tokens[1] in SSH_KEY_TYPES:
        options, tokens = tokens[0], tokens[1:]
    if len(tokens) < 2:
        raise InvalidInputError(
            f"{field} {shown!r} is not an OpenSSH public key ('<type> <base64> [comment]')"
        )
    key_type, encoded = tokens[0], tokens[1]
    if key_type == "ssh-dss":
        raise InvalidInputError(f"{field} {shown!r} is a DSA key, which current OpenSSH refuses; use ed25519")
    if key_type not in SSH_KEY_TYPES:
        allowed = ", ".join(SSH_KEY_TYPES)
        raise InvalidInputError(
            f"{field} {shown!r} has unsupported key type {key_type!r} (allowed: {allowed})"
        )
    if len(encoded) > _MAX_BLOB * 4 // 3 + 4:
        raise InvalidInputError(f"{field} {shown!r} is implausibly long for a public key")
    try:
        blob = base64.b64decode(encoded, validate=True)
        _check_blob(key_type, blob)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInputError(f"{field} {shown!r} is not a valid {key_type} public key: {exc}") from exc
    comment = " ".join(tokens[2:])
    return SshPublicKey(key_type=key_type, blob=blob, comment=comment, options=options)


def _looks_like_key_line(spec: str) -> bool:
    # A key type as a whitespace-separated word marks a key line (options may precede it);
    # a path almost never holds one, and a wrong guess still fails with a clear message.
    return any(word in SSH_KEY_TYPES or word == "ssh-dss" for word in spec.split())


def read_ssh_keys(spec: str) -> list[str]:
    """Resolve one ``--ssh-key`` value to validated key lines.

    ``spec`` is either a literal key line or a path (``~`` expanded) to a file
    holding one or more keys, one a line; blank lines and ``#`` comments are skipped.
    Returns the normalized lines in file order. Raises InvalidInputError when the
    literal key is invalid, the file cannot be read, holds no key, or any line in
    it is not a public key (the message gives the file and line number).
    This is the only function of the package that reads a file.
    """
    text = spec.strip()
    if not text:
        raise InvalidInputError("ssh key must not be empty")
    if _looks_like_key_line(text):
        return [parse_ssh_public_key(text).line]
    path = Path(text).expanduser()
    if not os.path.lexists(path):
        raise InvalidInputError(
            f"ssh key {text!r} is neither an OpenSSH public key line nor a readable key file: "
            "No such file or directory"
        )
    content = read_text_file(path, "ssh key file", max_bytes=MAX_KEY_FILE)
    if "PRIVATE KEY" in content:
        raise InvalidInputError(f"ssh key file {text!r} holds a private key; give the .pub file instead")
    keys: list[str] = []
    for number, raw in enumerate(content.splitlines(), start=1):
        stripped = raw.strip()
        if stripped and not stripped.startswith("#"):
            keys.append(parse_ssh_public_key(stripped, f"ssh key file {text!r} line {number}").line)
    if not keys:
        raise InvalidInputError(f"ssh key file {text!r} holds no public key")
    return keys
