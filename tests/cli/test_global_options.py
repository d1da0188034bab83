"""The global options are accepted anywhere on the line, as govc takes them: before the command,
after it, or after its arguments; each means the same wherever it stands."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.mark.parametrize(
    "args",
    [("--json", "vm", "list"), ("vm", "--json", "list"), ("vm", "list", "--json"), ("job", "list", "--json")],
)
def test_json_anywhere(cli: Cli, args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.exit_code == 0, done.stdout + done.stderr
    assert done.json() == []


def test_config_after_the_command_is_the_one_read(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs: {max_atempts: 5}\n")
    refused = cli("vm", "list", "--config", str(bad), "--json")
    assert refused.exit_code == 2, refused.stdout + refused.stderr
    assert "max_atempts" in refused.json()["error"]["message"]
    # CESO_CONFIG is read once, by the `ceso` group: it never undoes a --config given before the command.
    good = tmp_path / "good.yaml"
    good.write_text("jobs: {max_attempts: 5}\n")
    monkeypatch.setenv("CESO_CONFIG", str(good))
    assert cli("job", "list", "--json").exit_code == 0
    again = cli("--config", str(bad), "job", "list", "--json")
    assert again.exit_code == 2 and "max_atempts" in again.json()["error"]["message"]


def test_dry_run_and_verbose_after_the_arguments(cli: Cli, registered_host: str) -> None:
    planned = cli("host", "ping", registered_host, "--dry-run", "-v", "--json")
    assert planned.exit_code == 0, planned.stdout + planned.stderr
    plan = planned.json()
    assert plan["dry_run"] is True and plan["kind"] == "host.ping"
    assert cli("--json", "job", "list").json() == []  # nothing was queued


def test_a_usage_error_after_the_command_is_json_too(cli: Cli) -> None:
    done = cli("vm", "info", "--json")
    assert done.exit_code == 2 and done.json()["error"]["code"] == "usage"
