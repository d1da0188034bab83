"""The one redaction function: keys, patterns and known values; sealed references pass."""

from __future__ import annotations

import logging

from ceso.security.redact import REDACTED, RedactingFormatter, redact, redact_text, register_secret
from ceso.security.tokens import hash_token, looks_like_token, new_token

PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----"
)


def test_tokens_are_random_256_bit_and_hashed() -> None:
    a, b = new_token(), new_token()
    assert a != b and looks_like_token(a) and len(a) == len("ceso_") + 43
    assert hash_token(a) != a and len(hash_token(a)) == 64


def test_redact_by_key_keeps_structure() -> None:
    data = {
        "password": "hunter2",
        "guest": {"userdata": "#cloud-config\n", "user": "ubuntu", "ssh_keys": ["ssh-ed25519 AAAA x"]},
        "extraConfig": {"guestinfo.userdata": "H4sI...", "guestinfo.userdata.encoding": "gzip+base64"},
        "fencing_tokens": {"vm:x": 3},
        "api_key": None,
        "calls": [{"args": {"token": "abc", "name": "[ds] x"}}],
    }
    out = redact(data)
    assert out["password"] == REDACTED
    assert out["guest"]["userdata"] == REDACTED and out["guest"]["user"] == "ubuntu"
    assert out["extraConfig"] == {
        "guestinfo.userdata": REDACTED,
        "guestinfo.userdata.encoding": "gzip+base64",
    }
    assert out["fencing_tokens"] == {"vm:x": 3}
    assert out["api_key"] is None
    assert out["calls"][0]["args"] == {"token": REDACTED, "name": "[ds] x"}
    assert data["password"] == "hunter2"  # a copy, not in place


def test_redact_text_patterns() -> None:
    token = new_token()
    text = (
        f"login failed for https://root:s3cr3t-pw@esxi-a/sdk with password: 'hunter two' "
        f"and token={token}; header Authorization: Bearer {token}\n{PEM}\nchpasswd: {{expire: false}}"
    )
    out = redact_text(text)
    for secret in ("s3cr3t-pw", "hunter two", token, "b3BlbnNzaC1rZXk"):
        assert secret not in out
    assert "root:[REDACTED]@esxi-a" in out and "password: '[REDACTED]'" in out
    assert "[REDACTED private key]" in out and "chpasswd: {expire: false}" in out


def test_known_values_are_redacted_anywhere() -> None:
    register_secret("Zebra-Quartz-9931")
    register_secret("pw")  # too short to match by value: ordinary words would be shredded
    assert redact_text("vim-cmd said Zebra-Quartz-9931!") == f"vim-cmd said {REDACTED}!"
    assert redact_text("pwd is /tmp") == "pwd is /tmp"


def test_sealed_references_pass() -> None:
    sealed = {"$sealed": "ab12", "bytes": 10}
    assert redact({"guest": {"userdata": sealed}}) == {"guest": {"userdata": sealed}}


def test_log_lines_and_tracebacks_are_redacted() -> None:
    register_secret("Walrus-Secret-77")
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("boom with Walrus-Secret-77")
    except RuntimeError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "pw=%s", ("Walrus-Secret-77",), sys.exc_info()
        )
    line = formatter.format(record)
    assert "Walrus-Secret-77" not in line and "RuntimeError" in line


def test_known_values_are_a_bounded_registry() -> None:
    from ceso.security import redact as module

    first, refreshed = "Oldest-Known-0000", "Refreshed-Known-0001"
    register_secret(first)
    register_secret(refreshed)
    for i in range(module.MAX_KNOWN - 2):
        register_secret(f"filler-secret-{i:05d}")
    register_secret(refreshed)  # used again: now the most recent
    register_secret("one-more-secret-value")
    assert module.known_secret_count() == module.MAX_KNOWN
    assert redact_text(f"{first} {refreshed}") == f"{first} {REDACTED}"  # the least recent was dropped


def test_a_rejected_bearer_string_is_not_registered(database_url: str) -> None:
    import pytest

    from ceso.db.engine import make_engine
    from ceso.errors import NotPermittedError
    from ceso.security.principals import authenticate_token

    engine = make_engine(database_url)
    if database_url.startswith("sqlite"):
        from ceso.db.migrate import upgrade

        upgrade(engine)
    try:
        with pytest.raises(NotPermittedError):
            authenticate_token(engine, "existing-0001")
    finally:
        engine.dispose()
    assert redact_text("snapshot of existing-0001") == "snapshot of existing-0001"
