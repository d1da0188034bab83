"""OpenSSH public key parsing (cross-checked with cryptography) and read_ssh_keys."""

from __future__ import annotations

import base64
import os
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ceso.cloudinit import parse_ssh_public_key, read_ssh_keys
from ceso.errors import InvalidInputError


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _line(*fields: bytes, key_type: str | None = None, comment: str = "") -> str:
    blob = b"".join(_string(f) for f in fields)
    stated = key_type or fields[0].decode()
    return f"{stated} {base64.b64encode(blob).decode()} {comment}".strip()


def _filler(size: int) -> bytes:
    """Key material of ``size`` bytes, the same in every process: the cases' ids are made of it, and
    parallel runs (pytest-xdist) need every process to collect the same ids."""
    return bytes(i % 255 + 1 for i in range(size))


def _openssh(public_key: object) -> str:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    ).decode()


@pytest.mark.parametrize(
    "make",
    [
        lambda: ed25519.Ed25519PrivateKey.generate().public_key(),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key(),
        lambda: ec.generate_private_key(ec.SECP256R1()).public_key(),
        lambda: ec.generate_private_key(ec.SECP384R1()).public_key(),
        lambda: ec.generate_private_key(ec.SECP521R1()).public_key(),
    ],
)
def test_real_keys_parse(make: object) -> None:
    line = _openssh(make()) + " alice@laptop"  # type: ignore[operator]
    key = parse_ssh_public_key(line)
    assert key.line == line
    assert key.comment == "alice@laptop"
    assert key.fingerprint.startswith("SHA256:") and not key.fingerprint.endswith("=")
    # Our normalized line loads in cryptography too.
    serialization.load_ssh_public_key(key.line.encode())


def test_security_key_types_parse() -> None:
    sk_ed = _line(b"sk-ssh-ed25519@openssh.com", os.urandom(32), b"ssh:", comment="yubi")
    assert parse_ssh_public_key(sk_ed).key_type == "sk-ssh-ed25519@openssh.com"
    point = b"\x04" + os.urandom(64)
    sk_ec = _line(b"sk-ecdsa-sha2-nistp256@openssh.com", b"nistp256", point, b"ssh:")
    assert parse_ssh_public_key(sk_ec).comment == ""


def test_options_prefix_is_kept() -> None:
    base = _line(b"ssh-ed25519", os.urandom(32), comment="ops key")
    line = f'from="10.0.0.0/8",command="echo hi there" {base}'
    key = parse_ssh_public_key(line)
    assert key.options == 'from="10.0.0.0/8",command="echo hi there"'
    assert key.line == line


@pytest.mark.parametrize(
    ("line", "fragment"),
    [
        ("", "is not an OpenSSH public key"),
        ("ssh-ed25519", "is not an OpenSSH public key"),
        ("ssh-foo AAAA", "unsupported key type 'ssh-foo'"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "DSA key"),
        ("ssh-ed25519 not*base64", "not a valid ssh-ed25519 public key"),
        (
            _line(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + _filler(256), key_type="ssh-ed25519"),
            "the blob says 'ssh-rsa'",
        ),
        (_line(b"ssh-ed25519", _filler(31)), "not 32 bytes"),
        (_line(b"ssh-ed25519", _filler(32), b"extra"), "trailing bytes"),
        (_line(b"ssh-ed25519", _filler(32))[:40], "not a valid ssh-ed25519"),
        (_line(b"ssh-rsa", b"\x01\x00\x01", b"\x00" + _filler(64)), "OpenSSH refuses keys under 1024"),
        (
            _line(b"ecdsa-sha2-nistp256", b"nistp384", b"\x04" + _filler(64)),
            "curve name is not 'nistp256'",
        ),
        (_line(b"ecdsa-sha2-nistp256", b"nistp256", b"\x02" + _filler(32)), "uncompressed"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private key"),
        ('from="x ssh-ed25519 AAAA', "unbalanced double quote"),
    ],
)
def test_bad_keys(line: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_ssh_public_key(line)
    assert fragment in info.value.message
    assert "ssh key" in info.value.message


def test_read_ssh_keys_literal_and_file(tmp_path: Path) -> None:
    one = _line(b"ssh-ed25519", os.urandom(32), comment="one")
    two = _openssh(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert read_ssh_keys(f"  {one}\n") == [one]
    path = tmp_path / "keys.pub"
    path.write_text(f"# team keys\n{one}\n\n{two}\r\n", encoding="utf-8")
    assert read_ssh_keys(str(path)) == [one, two]


def test_read_ssh_keys_file_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="neither an OpenSSH public key line nor a readable key file"):
        read_ssh_keys(str(tmp_path / "missing.pub"))
    empty = tmp_path / "empty.pub"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="holds no public key"):
        read_ssh_keys(str(empty))
    bad = tmp_path / "bad.pub"
    bad.write_text(_line(b"ssh-ed25519", os.urandom(32)) + "\nssh-ed25519 AAAA\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 2"):
        read_ssh_keys(str(bad))
    private = tmp_path / "id_ed25519"
    private.write_text(
        "-----BEGIN OPENSSH PRIVATE KEY-----\nxx\n-----END OPENSSH PRIVATE KEY-----\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match="private key"):
        read_ssh_keys(str(private))
    with pytest.raises(InvalidInputError, match="must not be empty"):
        read_ssh_keys("  ")
