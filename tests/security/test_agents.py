"""Agents through the CLI: tokens shown once and stored hashed, modes enforced, refusals audited."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from tests.conftest import Cli
from tests.security.helpers import add_agent, as_agent, audit_rows


def test_token_is_printed_once_and_only_its_hash_is_stored(cli: Cli, ceso_env: dict[str, str]) -> None:
    token = add_agent(cli, "bot")
    human = cli("agent", "add", "bot2")
    assert human.exit_code == 0 and human.stdout.strip().startswith("ceso_")
    assert "not shown again" in human.stderr
    engine = sa.create_engine(ceso_env["CESO_DATABASE_URL"])
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(sa.text("SELECT * FROM agents ORDER BY name"))]
    engine.dispose()
    assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(v) for row in rows for v in row.values())
    listed = cli("--json", "agent", "list").json()
    assert [a["name"] for a in listed] == ["bot", "bot2"] and "token" not in str(listed)
    again = cli("--json", "agent", "add", "bot")
    assert again.exit_code == 5 and again.json()["error"]["code"] == "conflict"
    added = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'agent.added'")[0]
    assert added["details"] == {"agent": "bot", "agent_mode": "read-only"}
    assert added["actor"].startswith("operator:") and added["mode"] == "admin" and token not in str(added)


def test_read_only_agent_reads_but_changes_nothing(
    cli: Cli, registered_host: str, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "reader")
    me = as_agent(cli, monkeypatch, token, "--json", "agent", "whoami").json()
    assert (me["actor"], me["mode"]) == ("agent:reader", "read-only")
    assert as_agent(cli, monkeypatch, token, "--json", "job", "list").exit_code == 0
    assert as_agent(cli, monkeypatch, token, "--json", "host", "list").exit_code == 0
    for args in (
        ("vm", "create", "web-1", "--template", "t"),
        ("vm", "delete", "web-1", "--host", registered_host),
        ("host", "add", "h2", "--url", "http://127.0.0.1:1/sdk", "--user", "root", "--password-stdin"),
        ("agent", "add", "sneaky", "--mode", "admin"),
        ("audit", "list"),
    ):
        refused = as_agent(cli, monkeypatch, token, "--json", *args, input="pw\n")
        assert refused.exit_code == 3, (args, refused.stdout)
        assert refused.json()["error"]["code"] == "not_permitted"
    assert (
        "needs mode standard"
        in as_agent(cli, monkeypatch, token, "vm", "create", "x", "--template", "t").stderr
    )
    url = ceso_env["CESO_DATABASE_URL"]
    refusals = audit_rows(url, "event = 'access.refused'")
    assert [r["operation"] for r in refusals[:5]] == [
        "vm.create",
        "vm.delete",
        "host.add",
        "agent.add",
        "audit.list",
    ]
    assert {(r["actor"], r["mode"], r["source"], r["outcome"]) for r in refusals} == {
        ("agent:reader", "read-only", "cli", "refused")
    }
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM jobs")).scalar() == 0
        assert conn.execute(sa.text("SELECT COUNT(*) FROM agents")).scalar() == 1
        assert conn.execute(sa.text("SELECT COUNT(*) FROM hosts")).scalar() == 1
    engine.dispose()


def test_wrong_empty_and_revoked_tokens_are_refused(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "temp")
    wrong = as_agent(cli, monkeypatch, "ceso_" + "x" * 43, "--json", "job", "list")
    assert wrong.exit_code == 3
    assert wrong.json()["error"] == {
        "code": "unauthenticated",
        "message": "CESO_AGENT_TOKEN: invalid agent token",
    }
    assert as_agent(cli, monkeypatch, "  ", "job", "list").exit_code == 3
    assert as_agent(cli, monkeypatch, token, "job", "list").exit_code == 0
    revoked = cli("--json", "agent", "revoke", "temp")
    assert revoked.exit_code == 0 and revoked.json()["revoked_at"]
    after = as_agent(cli, monkeypatch, token, "--json", "job", "list")
    assert after.exit_code == 3 and "was revoked" in after.json()["error"]["message"]
    refused = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'auth.refused'")
    assert len(refused) == 3 and all(token not in str(r) for r in refused)
    assert len(audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'agent.revoked'")) == 1


def test_operator_mode_is_configurable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CESO_SECURITY__OPERATOR_MODE", "read-only")
    monkeypatch.setenv("CESO_SECURITY__OPERATOR_NAME", "alice")
    from ceso.settings import get_settings

    get_settings.cache_clear()
    from ceso.runtime import get_runtime

    get_runtime.cache_clear()
    me = cli("--json", "agent", "whoami").json()
    assert (me["actor"], me["mode"]) == ("operator:alice", "read-only")
    assert cli("agent", "add", "x").exit_code == 3
