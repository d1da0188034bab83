"""TLS thumbprint pinning against a simulated host serving https."""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import sqlalchemy as sa

from tests.conftest import Cli


def _fingerprint(host: str, port: int) -> str:
    pem = ssl.get_server_certificate((host, port))
    digest = hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, 64, 2))


def test_thumbprint_is_shown_then_pinned(cli: Cli, sim_factory: Any, ceso_env: dict[str, str]) -> None:
    https = sim_factory(tls=True)
    truth = _fingerprint(https.host, https.port)
    base = ["host", "add", "secure", "--url", https.url, "--user", "root", "--password-stdin"]

    unconfirmed = cli("--json", *base, input="pw\n")
    assert unconfirmed.exit_code == 2
    error = unconfirmed.json()["error"]
    assert error["code"] == "thumbprint_unconfirmed"
    assert error["details"]["thumbprint"] == truth

    wrong = cli("--json", *base, "--thumbprint", "00" * 32, input="pw\n")
    assert wrong.exit_code == 6
    assert wrong.json()["error"]["code"] == "thumbprint_mismatch"

    pinned = cli("--json", *base, "--thumbprint", truth.replace(":", "").upper(), input="pw\n")
    assert pinned.exit_code == 0, pinned.stdout
    assert pinned.json()["thumbprint"] == truth
    assert cli("host", "check", "secure").exit_code == 0


def test_changed_certificate_is_refused_after_pinning(
    cli: Cli, sim_factory: Any, ceso_env: dict[str, str]
) -> None:
    https = sim_factory(tls=True)
    added = cli(
        "host",
        "add",
        "pinned",
        "--url",
        https.url,
        "--user",
        "root",
        "--password-stdin",
        "--accept-thumbprint",
        input="pw\n",
    )
    assert added.exit_code == 0, added.stderr
    # Pretend the host's certificate changed: the pin no longer matches what it presents.
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"])
    with engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE hosts SET thumbprint = :t WHERE name = 'pinned'"), {"t": ":".join(["ab"] * 32)}
        )
    engine.dispose()
    refused = cli("--json", "host", "check", "pinned")
    assert refused.exit_code == 6
    assert refused.json()["error"]["code"] == "thumbprint_mismatch"
    assert "does not match the pinned thumbprint" in refused.json()["error"]["message"]
