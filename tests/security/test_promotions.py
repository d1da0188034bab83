"""Promotions: requested by an agent, decided by an operator, capped, expiring on their own, audited."""

from __future__ import annotations

import time

import pytest

from tests.conftest import Cli
from tests.security.helpers import add_agent, as_agent, audit_rows


def _request(cli: Cli, monkeypatch: pytest.MonkeyPatch, token: str, *extra: str) -> dict[str, object]:
    result = as_agent(
        cli,
        monkeypatch,
        token,
        "--json",
        "agent",
        "request-promotion",
        "--mode",
        "standard",
        "--reason",
        "make web",
        *extra,
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    body: dict[str, object] = result.json()
    return body


def _mode(cli: Cli, monkeypatch: pytest.MonkeyPatch, token: str) -> str:
    return str(as_agent(cli, monkeypatch, token, "--json", "agent", "whoami").json()["mode"])


def test_approved_promotion_raises_the_mode_until_it_expires(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "bot")
    asked = _request(cli, monkeypatch, token, "--for", "10m")
    assert (asked["state"], asked["for"], asked["mode"]) == ("pending", "10m", "standard")
    pending = cli("--json", "agent", "requests").json()
    assert [p["id"] for p in pending] == [asked["id"]]
    twice = as_agent(
        cli, monkeypatch, token, "--json", "agent", "request-promotion", "--mode", "admin", "--reason", "x"
    )
    assert twice.exit_code == 5  # one pending request at a time
    approved = cli("--json", "agent", "approve", str(asked["id"]), "--for", "2s").json()
    assert approved["state"] == "approved" and approved["decided_by"].startswith("operator:")
    assert _mode(cli, monkeypatch, token) == "standard"
    listed = cli("--json", "agent", "list").json()[0]
    assert (listed["mode"], listed["effective_mode"]) == ("read-only", "standard")
    time.sleep(2.2)
    assert _mode(cli, monkeypatch, token) == "read-only"
    assert cli("--json", "agent", "requests", "--all").json()[0]["state"] == "expired"
    events = [r["event"] for r in audit_rows(ceso_env["CESO_DATABASE_URL"], "event LIKE 'promotion.%'")]
    assert events == ["promotion.requested", "promotion.approved"]


def test_deny_revoke_caps_and_self_approval(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "bot")
    boss = add_agent(cli, "boss", "admin")
    too_long = as_agent(
        cli,
        monkeypatch,
        token,
        "--json",
        "agent",
        "request-promotion",
        "--mode",
        "standard",
        "--for",
        "5h",
        "--reason",
        "x",
    )
    assert too_long.exit_code == 2 and "longer than the cap of 4h" in too_long.json()["error"]["message"]
    no_unit = as_agent(
        cli,
        monkeypatch,
        token,
        "agent",
        "request-promotion",
        "--mode",
        "standard",
        "--for",
        "30",
        "--reason",
        "x",
    )
    assert no_unit.exit_code == 2 and "with a unit" in no_unit.stderr
    first = _request(cli, monkeypatch, token)
    assert first["for"] == "30m"  # the configured default
    denied = cli("--json", "agent", "deny", str(first["id"])).json()
    assert denied["state"] == "denied"
    assert cli("--json", "agent", "approve", str(first["id"])).exit_code == 5  # decided already
    second = _request(cli, monkeypatch, token, "--for", "1h")
    over = cli("--json", "agent", "approve", str(second["id"]), "--for", "4h1m")
    assert over.exit_code == 2
    approved = as_agent(cli, monkeypatch, boss, "--json", "agent", "approve", str(second["id"]))
    assert approved.exit_code == 0 and approved.json()["decided_by"] == "agent:boss"
    assert _mode(cli, monkeypatch, token) == "standard"
    revoked = cli("--json", "agent", "revoke-promotion", str(second["id"])).json()
    assert revoked["state"] == "revoked"
    assert _mode(cli, monkeypatch, token) == "read-only"
    # An admin agent cannot promote itself; a read-only one cannot approve anything.
    own = as_agent(cli, monkeypatch, boss, "agent", "request-promotion", "--mode", "admin", "--reason", "x")
    assert own.exit_code == 2  # already admin
    third = _request(cli, monkeypatch, token)
    assert as_agent(cli, monkeypatch, token, "agent", "approve", str(third["id"])).exit_code == 3
    operator = cli("--json", "agent", "request-promotion", "--mode", "admin", "--reason", "x")
    assert operator.exit_code == 2 and "only agents" in operator.json()["error"]["message"]
    events = [r["event"] for r in audit_rows(ceso_env["CESO_DATABASE_URL"], "event LIKE 'promotion.%'")]
    assert events == [
        "promotion.requested",
        "promotion.denied",
        "promotion.requested",
        "promotion.approved",
        "promotion.revoked",
        "promotion.requested",
    ]
