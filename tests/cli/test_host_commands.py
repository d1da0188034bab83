"""`ceso host ...` against a simulated ESXi host, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, closed_port, unique
from tests.support.simulator import SimulatorHost
from tests.support.vms import vm_names


def _hosts_in_sql(url: str) -> list[tuple[str, ...]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("hosts"):
            return []  # refused before the database was even opened
        rows = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM hosts"))]
    engine.dispose()
    return rows


def test_add_list_check_remove(cli: Cli, sim: SimulatorHost, ceso_env: dict[str, str]) -> None:
    name = unique("esxi")
    added = cli(
        "--json",
        "host",
        "add",
        name,
        "--url",
        sim.url,
        "--user",
        "root",
        "--password-stdin",
        input="s3cret-pw\n",
    )
    assert added.exit_code == 0, added.stdout + added.stderr
    body = added.json()
    assert body["name"] == name
    assert "ESXi" in body["product"]
    assert body["api_version"]

    listed = cli("--json", "host", "list").json()
    assert [h["name"] for h in listed] == [name]

    checked = cli("--json", "host", "check", name)
    assert checked.exit_code == 0, checked.stderr
    facts = checked.json()
    # The session simulator is shared: compare with what the host itself says, read independently.
    assert facts["vm_count"] == len(vm_names(sim.connect()))
    assert facts["datastores"] and facts["datastores"][0]["name"] == "LocalDS_0"
    assert facts["api_type"] == "HostAgent"

    # The password never reaches SQL.
    rows = _hosts_in_sql(ceso_env["CESO_DATABASE_URL"])
    assert rows and not any("s3cret-pw" in str(v) for row in rows for v in row)

    removed = cli("host", "remove", name)
    assert removed.exit_code == 0
    assert cli("--json", "host", "list").json() == []


def test_duplicate_host_name_is_a_conflict(
    cli: Cli, sim: SimulatorHost, registered_host: str, ceso_env: dict[str, str]
) -> None:
    again = cli(
        "host", "add", registered_host, "--url", sim.url, "--user", "root", "--password-stdin", input="x\n"
    )
    assert again.exit_code == 5
    assert "already registered" in again.stderr
    assert len(_hosts_in_sql(ceso_env["CESO_DATABASE_URL"])) == 1


def test_unknown_host_is_not_found(cli: Cli, ceso_env: dict[str, str]) -> None:
    result = cli("--json", "host", "check", "nope")
    assert result.exit_code == 4
    assert result.json()["error"]["code"] == "not_found"
    assert "unknown host 'nope'" in result.json()["error"]["message"]


def test_bad_inputs_write_nothing(cli: Cli, sim: SimulatorHost, ceso_env: dict[str, str]) -> None:
    cases = [
        (
            ["host", "add", "Bad/Name", "--url", sim.url, "--user", "root", "--password-stdin"],
            2,
            "invalid host name",
        ),
        (["host", "add", "h1", "--url", "ftp://x", "--user", "root", "--password-stdin"], 2, "malformed URL"),
        (
            ["host", "add", "h1", "--url", "esxi.example", "--user", "root", "--password-stdin"],
            2,
            "malformed URL",
        ),
        (
            [
                "host",
                "add",
                "h1",
                "--url",
                f"http://127.0.0.1:{closed_port()}/sdk",
                "--user",
                "root",
                "--password-stdin",
            ],
            6,
            "unreachable",
        ),
        (
            [
                "host",
                "add",
                "h1",
                "--url",
                sim.url,
                "--user",
                "root",
                "--password-stdin",
                "--thumbprint",
                "zz",
            ],
            2,
            "not a SHA-256",
        ),
    ]
    for args, code, fragment in cases:
        result = cli(*args, input="pw\n")
        assert result.exit_code == code, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr  # one clear line, no traceback
    assert _hosts_in_sql(ceso_env["CESO_DATABASE_URL"]) == []


def test_empty_password_is_refused(cli: Cli, sim: SimulatorHost, ceso_env: dict[str, str]) -> None:
    result = cli(
        "--json", "host", "add", "h2", "--url", sim.url, "--user", "root", "--password-stdin", input="\n"
    )
    assert result.exit_code == 2
    assert result.json()["error"]["code"] == "invalid_input"
    assert _hosts_in_sql(ceso_env["CESO_DATABASE_URL"]) == []


def test_wrong_password_is_refused_and_nothing_is_stored(
    cli: Cli, sim_factory: Any, ceso_env: dict[str, str]
) -> None:
    strict = sim_factory(extra_args=("-username", "root", "-password", "right-pw"))
    wrong = cli(
        "--json",
        "host",
        "add",
        "strict",
        "--url",
        strict.url,
        "--user",
        "root",
        "--password-stdin",
        input="wrong-pw\n",
    )
    assert wrong.exit_code == 6
    assert wrong.json()["error"]["code"] == "authentication_failed"
    assert "wrong-pw" not in wrong.stdout
    assert _hosts_in_sql(ceso_env["CESO_DATABASE_URL"]) == []
    from ceso.errors import NotFoundError
    from ceso.secrets import FileSecretStore, host_secret_key

    with pytest.raises(NotFoundError):
        FileSecretStore(Path(ceso_env["CESO_DATA_DIR"])).get(host_secret_key("strict"))

    right = cli(
        "host", "add", "strict", "--url", strict.url, "--user", "root", "--password-stdin", input="right-pw\n"
    )
    assert right.exit_code == 0, right.stderr
    assert cli("--json", "host", "check", "strict").json()["vm_count"] == 0
