"""cesod at the protocol level: every bad request gets a precise JSON-RPC error and nothing is done."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli
from tests.security.helpers import add_agent, audit_rows


def _counts(url: str) -> tuple[int, int, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        counts = tuple(
            int(conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0)
            for t in ("jobs", "agents", "promotions")
        )
    engine.dispose()
    return counts  # type: ignore[return-value]


def _error(body: Any) -> tuple[int, str]:
    return body["error"]["code"], body["error"]["data"]["code"]


def test_missing_wrong_and_revoked_tokens(cli: Cli, start_cesod: Any, ceso_env: dict[str, str]) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    call = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "agent.request_promotion",
        "params": {"mode": "admin", "reason": "x"},
    }
    before = _counts(ceso_env["CESO_DATABASE_URL"])
    status, body = daemon.post(call)
    assert status == 401 and _error(body) == (-32010, "unauthenticated")
    assert body["error"]["message"] == "missing bearer token (send Authorization: Bearer TOKEN)"
    status, body = daemon.post(call, token="ceso_" + "y" * 43)
    assert status == 401 and body["error"]["message"] == "invalid agent token"
    status, body = daemon.post(call, headers={"Authorization": f"Basic {token}"})
    assert status == 401
    assert cli("agent", "revoke", "bot").exit_code == 0
    status, body = daemon.post(call, token=token)
    assert status == 401 and body["error"]["message"] == "agent 'bot' was revoked"
    assert _counts(ceso_env["CESO_DATABASE_URL"]) == before
    refused = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'auth.refused'")
    assert len(refused) == 4
    assert {(r["source"], r["client_addr"], r["outcome"]) for r in refused} == {
        ("cesod", "127.0.0.1", "refused")
    }
    assert all(token not in json.dumps(r, default=str) for r in refused)


def test_client_address_outside_the_allowlist(cli: Cli, start_cesod: Any, ceso_env: dict[str, str]) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod(CESO_CESOD__ALLOWLIST='["10.0.0.0/8", "::1/128"]')
    status, body = daemon.post({"jsonrpc": "2.0", "id": 1, "method": "job.list"}, token=token)
    assert status == 403 and _error(body) == (-32011, "address_not_allowed")
    assert body["error"]["message"] == "client address 127.0.0.1 is not allowed"
    # Refused before anything else: even a bad path and no token get the same answer.
    status, _ = daemon.post(raw=b"x" * 10, path="/elsewhere")
    assert status == 403
    (refused, _) = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'access.refused'")
    assert (refused["client_addr"], refused["details"]["code"]) == ("127.0.0.1", "address_not_allowed")
    lines = [json.loads(line.split(" ", 2)[2]) for line in daemon.access_log.read_text().splitlines()]
    assert lines[0]["status"] == 403 and lines[0]["client"] == "127.0.0.1"


def test_oversized_malformed_and_invalid_requests(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod(CESO_CESOD__MAX_REQUEST_BYTES="2048", CESO_CESOD__MAX_BATCH="3")
    url = ceso_env["CESO_DATABASE_URL"]
    before = _counts(url)
    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "agent.request_promotion",
        "params": {"mode": "admin", "reason": "x" * 5000},
    }
    status, body = daemon.post(big, token=token)
    assert status == 413 and _error(body) == (-32012, "request_too_large")
    assert body["error"]["message"].endswith("is over the limit of 2048 bytes")

    def rpc(raw: bytes) -> tuple[int, str, str]:
        status, body = daemon.post(raw=raw, token=token)
        assert status == 200
        return body["error"]["code"], body["error"]["data"]["code"], body["error"]["message"]

    assert rpc(b'{"jsonrpc": "2.0", "method": ')[:2] == (-32700, "parse_error")
    assert rpc(b"\xff\xfe")[:2] == (-32700, "parse_error")
    assert rpc(b"5")[1:] == ("invalid_request", "a request must be a JSON object")
    assert rpc(b'{"method": "job.list", "id": 1}')[2] == '"jsonrpc" must be "2.0"'
    assert rpc(b'{"jsonrpc": "2.0", "id": 1}')[2] == '"method" must be a non-empty string'
    for bad_id in (b"{}", b"1.5", b"1" * 400, b'"' + b"x" * 129 + b'"'):
        assert (
            rpc(b'{"jsonrpc": "2.0", "method": "job.list", "id": ' + bad_id + b"}")[2]
            == '"id" must be a string of at most 128 characters, an integer or null'
        )
    assert rpc(b"[]")[2] == "an empty batch is not a request"
    four = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "job.list"} for i in range(4)]).encode()
    assert rpc(four)[1:] == ("batch_too_large", "a batch of 4 calls is over the limit of 3")

    def params(method: str, value: Any) -> tuple[int, str]:
        body = daemon.call(token, method, value)
        return body["error"]["code"], body["error"]["message"]

    assert params("job.list", {"hots": "x"}) == (
        -32602,
        "job.list: unknown param 'hots' (known: host, limit, state)",
    )
    assert params("job.list", {"limit": "ten"}) == (-32602, "job.list: param 'limit' must be an integer")
    assert params("job.list", {"state": "done"})[1].startswith(
        "job.list: param 'state' must be one of queued"
    )
    assert params("job.status", {})[1] == "job.status: missing required param 'id'"
    body = daemon.post({"jsonrpc": "2.0", "id": 7, "method": "job.list", "params": ["h"]}, token=token)[1]
    assert body["id"] == 7 and body["error"]["code"] == -32602 and "named params" in body["error"]["message"]
    body = daemon.call(token, "vm.teleport", {})
    assert body["error"]["code"] == -32601 and body["error"]["message"].startswith(
        "unknown method 'vm.teleport'"
    )
    assert daemon.post(None, token=token, method="GET")[0] == 405
    assert daemon.post({"jsonrpc": "2.0", "id": 1, "method": "job.list"}, token=token, path="/")[0] == 404
    assert _counts(url) == before


def test_missing_content_length_is_refused(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as sock:
        sock.sendall(f"POST /rpc HTTP/1.0\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411")  # an HTTP/1.0 request, answered in cesod's version
    assert json.loads(body)["error"]["data"]["code"] == "length_required"


def test_batches_notifications_and_cli_identical_errors(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "job.list", "params": {"limit": 5}},
        {"jsonrpc": "2.0", "id": "b", "method": "job.status", "params": {"id": "not-a-uuid"}},
        {"jsonrpc": "2.0", "method": "job.list"},  # a notification: run, not answered
        {
            "jsonrpc": "2.0",
            "id": "c",
            "method": "job.status",
            "params": {"id": "00000000-0000-0000-0000-000000000000"},
        },
        {"jsonrpc": "2.0", "id": "d", "method": "vm.create", "params": {"name": "x", "template": "t"}},
    ]
    status, body = daemon.post(batch, token=token)
    assert status == 200 and [r["id"] for r in body] == ["a", "b", "c", "d"]
    assert body[0]["result"] == []
    cli_bad = cli("--json", "job", "status", "not-a-uuid")
    assert body[1]["error"]["message"] == cli_bad.json()["error"]["message"]
    assert (body[1]["error"]["code"], body[1]["error"]["data"]["exit_code"]) == (-32602, cli_bad.exit_code)
    cli_missing = cli("--json", "job", "status", "00000000-0000-0000-0000-000000000000")
    assert body[2]["error"]["message"] == cli_missing.json()["error"]["message"]
    assert (body[2]["error"]["code"], body[2]["error"]["data"]["exit_code"]) == (-32004, 4)
    assert (body[3]["error"]["code"], body[3]["error"]["data"]["code"]) == (-32003, "not_permitted")
    status, body = daemon.post([{"jsonrpc": "2.0", "method": "job.list"}], token=token)
    assert (status, body) == (204, None)
    lines = [json.loads(line.split(" ", 2)[2]) for line in daemon.access_log.read_text().splitlines()]
    assert lines[0]["actor"] == "agent:bot" and lines[0]["client"] == "127.0.0.1"
    assert [c["outcome"] for c in lines[0]["calls"]] == [
        "ok",
        "invalid_input",
        "ok",
        "not_found",
        "not_permitted",
    ]


def test_system_describe_follows_the_mode(cli: Cli, start_cesod: Any, ceso_env: dict[str, str]) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    before = daemon.call(token, "system.describe")["result"]
    names = {m["name"] for m in before["methods"]}
    assert before["mode"] == "read-only" and {"vm.list", "job.wait", "agent.request_promotion"} <= names
    assert not names & {"vm.create", "vm.delete", "vm.power"}
    asked = daemon.call(
        token, "agent.request_promotion", {"mode": "standard", "for": "10m", "reason": "web tier"}
    )
    assert asked["result"]["state"] == "pending"
    assert cli("agent", "approve", str(asked["result"]["id"])).exit_code == 0
    after = daemon.call(token, "system.describe")["result"]
    assert after["mode"] == "standard" and after["promotion"]["expires_at"]
    create = next(m for m in after["methods"] if m["name"] == "vm.create")
    schema = create["params"]
    # template or blank: the either/or is checked by the spec, so only the name is required here.
    assert schema["required"] == ["name"] and schema["additionalProperties"] is False
    assert {"ip", "gateway", "ssh_key", "userdata", "no_power_on", "idempotency_key", "blank", "iso"} <= set(
        schema["properties"]
    )
    assert "vm.delete" not in {m["name"] for m in after["methods"]}
    events = [r["event"] for r in audit_rows(ceso_env["CESO_DATABASE_URL"], "event LIKE 'promotion.%'")]
    assert events == ["promotion.requested", "promotion.approved"]
    (asked_rec,) = audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'promotion.requested'")
    assert (asked_rec["source"], asked_rec["client_addr"]) == ("cesod", "127.0.0.1")


def test_backup_methods_follow_the_mode(cli: Cli, start_cesod: Any) -> None:
    token = add_agent(cli, "bot")
    daemon = start_cesod()
    assert daemon.call(token, "backup.list", {"vm": "web-01"})["result"] == []
    refused = daemon.call(token, "backup.create", {"vm": "web-01"})["error"]
    assert refused["code"] == -32003 and "needs mode standard" in refused["message"]
    unknown = daemon.call(token, "backup.restore", {"backup_id": "x", "as": "y", "bogus": True})["error"]
    assert unknown["code"] == -32602 and "unknown param 'bogus'" in unknown["message"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the limits hold no SQL
def test_rate_limits_per_address_and_per_token_answer_429_and_are_counted(
    cli: Cli, start_cesod: Any, ceso_env: dict[str, str]
) -> None:
    """Bursts of 3 and next to no refill: the 4th request of an address (any token, none at all)
    and of an agent is answered 429 with -32013, counted by reason, and not audited one by one."""
    import urllib.request

    token, other = add_agent(cli, "bot"), add_agent(cli, "bot2")
    ask = {"jsonrpc": "2.0", "id": 1, "method": "job.list"}
    slow = {"CESO_CESOD__RATE_BURST": "3"}
    audited = len(audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'auth.refused'"))

    by_address = start_cesod(**slow, CESO_CESOD__RATE_PER_ADDRESS="0.001", CESO_CESOD__RATE_PER_TOKEN="0")
    answers = [by_address.post(ask, token=t) for t in (token, other, None, token)]
    assert [status for status, _ in answers] == [200, 200, 401, 429], answers
    error = answers[-1][1]["error"]
    assert error["code"] == -32013 and error["data"]["code"] == "rate_limited"
    assert error["data"]["retry_after_s"] >= 1 and "too many requests" in error["message"]
    text = urllib.request.urlopen(by_address.metrics_url(), timeout=10).read().decode()
    assert 'ceso_cesod_refused_total{reason="rate_limited_address"} 1.0' in text

    by_token = start_cesod(**slow, CESO_CESOD__RATE_PER_ADDRESS="0", CESO_CESOD__RATE_PER_TOKEN="0.001")
    statuses = [by_token.post(ask, token=t)[0] for t in (token, token, token, token, other)]
    assert statuses == [200, 200, 200, 429, 200]  # one agent's excess, not the other's
    text = urllib.request.urlopen(by_token.metrics_url(), timeout=10).read().decode()
    assert 'ceso_cesod_refused_total{reason="rate_limited_token"} 1.0' in text
    # Only the one unauthenticated request of the first daemon is on record: 429s are counted.
    assert len(audit_rows(ceso_env["CESO_DATABASE_URL"], "event = 'auth.refused'")) == audited + 1
