"""The CLI's bad-input corpus: every case is one clear line and exit 2, nothing recorded that the
request would have recorded, no traceback, no SQL, and never a hang (files are checked for what
they are before they are read). Runs on SQLite and PostgreSQL (``database_url``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, CliResult, unique
from tests.security.helpers import audit_rows
from tests.support.simulator import SimulatorHost
from tests.support.vms import vm_names
from tests.vm.conftest import TemplateBed, bed  # noqa: F401  (the fixture)


def _one_clear_line(result: CliResult, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for leak in ("Traceback", "internal error", "INSERT", "SELECT", "sqlalchemy", "psycopg"):
        assert leak not in result.stderr, result.stderr
    return lines[0]


def _count(url: str, table: str, where: str = "1=1") -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A FIFO nobody writes to: reading it would block for ever."""
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path


# -- host add: every bound of a column is a bound of the input ---------------------------------------
def test_host_user_over_its_column_is_refused_before_any_write(
    cli: Cli, sim: SimulatorHost, ceso_env: dict[str, str]
) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    user = "u" * 200
    result = cli(
        "host", "add", "h-long-user", "--url", sim.url, "--user", user, "--password-stdin", input="pw\n"
    )
    line = _one_clear_line(result)
    assert "--user" in line and "at most 128" in line and user not in line
    assert _count(url, "hosts") == 0
    long_url = _one_clear_line(
        cli(
            "host",
            "add",
            "h-long-url",
            "--url",
            sim.url + "/" + "p" * 600,
            "--user",
            "root",
            "--password-stdin",
            input="pw\n",
        )
    )
    assert "--url" in long_url and "at most 512" in long_url
    assert _count(url, "hosts") == 0
    refused = audit_rows(url, "operation = 'host.add'")
    assert [(r["outcome"], r["host"]) for r in refused] == [
        ("failed", "h-long-user"),
        ("failed", "h-long-url"),
    ]


@pytest.mark.parametrize("length", [70, 10_000])
def test_over_long_host_name_keeps_its_audit_record(cli: Cli, ceso_env: dict[str, str], length: int) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    name = "h" * length
    result = cli(
        "host",
        "add",
        name,
        "--url",
        "https://127.0.0.1:1",
        "--user",
        "root",
        "--password-stdin",
        input="pw\n",
    )
    line = _one_clear_line(result)
    assert "invalid host name" in line and len(line) < 300
    assert _count(url, "hosts") == 0
    (record,) = audit_rows(url, "operation = 'host.add'")
    assert record["outcome"] == "failed" and record["details"]["error"]["code"] == "invalid_input"
    assert len(record["host"]) == 64 and record["host"].endswith("…")  # fitted to its column
    assert record["details"]["params"]["name"] == name  # the whole request is in the details
    assert cli("audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        ("audit", "show", "99999999999999999999"),
        ("agent", "approve", "99999999999999999999"),
        ("agent", "deny", "--", "-99999999999999999999"),
    ],
)
def test_ids_beyond_their_integer_column(cli: Cli, args: tuple[str, ...]) -> None:
    assert "out of range" in _one_clear_line(cli(*args))


def test_agent_and_idempotency_key_over_their_columns(cli: Cli, ceso_env: dict[str, str]) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    assert cli("job", "list").exit_code == 0  # the schema exists (SQLite makes it on first use)
    assert "invalid agent name" in _one_clear_line(cli("agent", "add", "a" * 65))
    assert _count(url, "agents") == 0
    line = _one_clear_line(cli("host", "ping", "nohost", "--idempotency-key", "k" * 201))
    assert "--idempotency-key" in line and "at most 200" in line
    assert _count(url, "jobs") == 0


# -- configuration -------------------------------------------------------------------------------
def test_config_paths_that_are_not_config_files(cli: Cli, tmp_path: Path, fifo: Path) -> None:
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(bytes(range(256)) * 8)
    big = tmp_path / "big.yaml"
    big.write_text("# filler\n" * 200_000)
    cases = {
        "": "the path is empty",
        str(tmp_path / "missing.yaml"): "does not exist",
        str(binary): "is not UTF-8 text",
        str(fifo): "is a FIFO",
        "/dev/zero": "is a character device",
        str(big): "larger than 1 MiB",
    }
    for path, fragment in cases.items():
        started = time.monotonic()
        line = _one_clear_line(cli("--config", path, "job", "list"))
        assert fragment in line, (path, line)
        assert time.monotonic() - started < 30, path  # a FIFO is refused, never waited on


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("CESO_CESOD__ALLOWLIST", "[127.0.0.1", "CESO_CESOD__ALLOWLIST"),
        ("CESO_DATABASE_URL", "foo://user:hunter2-pw@db/x", "unsupported database 'foo'"),
        ("CESO_DATABASE_URL", "postgresql://user:hunter2-pw@[::1/x", "not a valid SQLAlchemy URL"),
        ("CESO_DATABASE_URL", "postgresql://user:hunter2-pw@[::1]:99999/x", "not a valid SQLAlchemy URL"),
    ],
)
def test_bad_environment_is_one_line(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, fragment: str
) -> None:
    from ceso.settings import get_settings

    monkeypatch.setenv(variable, value)
    get_settings.cache_clear()
    line = _one_clear_line(cli("job", "list"))
    assert fragment in line and "hunter2-pw" not in line
    result = cli("--json", "job", "list")
    assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "invalid_config"
    get_settings.cache_clear()


# -- files, sizes and names of a new VM ------------------------------------------------------------------
def test_vm_create_bad_files_sizes_and_names(
    cli: Cli,
    bed: TemplateBed,  # noqa: F811  (the fixture imported above)
    ceso_env: dict[str, str],
    tmp_path: Path,
    fifo: Path,
) -> None:
    url = ceso_env["CESO_DATABASE_URL"]
    before = set(vm_names(bed.si))
    audit_before = _count(url, "audit_records")
    huge = tmp_path / "huge.yaml"
    huge.write_text("#cloud-config\n" + "# x\n" * 80_000)
    create = ["vm", "create", unique("web"), "--template", bed.template, "--no-power-on"]
    cases: list[tuple[list[str], str]] = [
        (["--userdata", str(fifo)], "is a FIFO"),
        (["--vendordata", str(fifo)], "is a FIFO"),
        (["--ssh-key", str(fifo)], "is a FIFO"),
        (["--userdata", "/dev/zero"], "is a character device"),
        (["--userdata", str(huge)], "larger than 256 KiB"),
        (["--memory", "1.5G"], "write 1536M"),
        (["--memory", "1000K"], "whole number of MiB"),
        (["--memory", "30T"], "over ESXi's maximum of 24560G"),
        (["--memory", "6M"], "multiple of 4 MiB"),
        (["--memory", "4"], "'4' would mean 4 MiB; write 4G for 4 GiB"),
        (["--disk", "40960"], "'40960' would mean 40960 GiB; write 40T"),
        (["--disk", "63T"], "over ESXi's maximum of 62T"),
        (["--disk", "2.5T"], "write 2560G"),
        (["--disk", "9" * 400], "not a size"),
        (["--cpus", "769"], "outside 1-768"),
    ]
    for extra, fragment in cases:
        started = time.monotonic()
        line = _one_clear_line(cli(*create, *extra))
        assert fragment in line, (extra, line)
        assert time.monotonic() - started < 30, extra
    long_name = _one_clear_line(cli("vm", "create", "n" * 81, "--template", bed.template))
    assert "at most 80" in long_name
    reconfigure = ["vm", "reconfigure", bed.template]
    for extra, fragment in [
        (["--network", "VM Network", "--nic", "11"], "numbered 1-10"),
        (["--network", "VM Network", "--nic", "99999999999999999999"], "numbered 1-10"),
        (["--memory", "0.75G"], "write 768M"),
        (["--memory", "8"], "write 8G for 8 GiB"),
        (["--disk-grow", "1", "100T"], "over ESXi's maximum of 62T"),
    ]:
        assert fragment in _one_clear_line(cli(*reconfigure, *extra)), extra
    # Nothing recorded: no job, no audit record, no VM on the host (read directly).
    assert _count(url, "jobs") == 0
    assert _count(url, "audit_records") == audit_before
    assert set(vm_names(bed.si)) == before


def test_host_add_ssh_key_that_is_a_fifo(
    cli: Cli, sim: SimulatorHost, fifo: Path, ceso_env: dict[str, str]
) -> None:
    args: list[Any] = ["host", "add", "h-fifo", "--url", sim.url, "--user", "root", "--password-stdin"]
    assert cli("job", "list").exit_code == 0  # the schema exists (SQLite makes it on first use)
    line = _one_clear_line(cli(*args, "--ssh-user", "root", "--ssh-key", str(fifo), input="pw\n"))
    assert "is a FIFO" in line
    assert _count(ceso_env["CESO_DATABASE_URL"], "hosts") == 0


def test_numbers_no_column_or_clock_can_hold(cli: Cli) -> None:
    assert "give an ISO time" in _one_clear_line(cli("audit", "list", "--since", "99999999999999999999h"))
    result = cli("backup", "list", "--limit", "99999999999999999999")
    assert (
        result.exit_code == 2 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    )
