"""Configuration: file discovery, env overrides, one clear error naming key and source."""

from __future__ import annotations

from pathlib import Path

import pytest

from ceso.errors import ConfigError
from ceso.settings import load_settings
from tests.conftest import Cli


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in [k for k in os.environ if k.startswith("CESO_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_defaults_without_any_file(tmp_path: Path) -> None:
    s = load_settings()
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert s.database_url == f"sqlite:///{tmp_path / 'home/.local/share/ceso/ceso.db'}"
    assert s.config_file is None


def test_yaml_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("redis_url: redis://r:6379/2\njobs:\n  max_attempts: 7\n  heartbeat_s: 2\n")
    s = load_settings(cfg)
    assert (s.redis_url, s.jobs.max_attempts, s.jobs.heartbeat_s) == ("redis://r:6379/2", 7, 2)
    monkeypatch.setenv("CESO_JOBS__MAX_ATTEMPTS", "9")
    monkeypatch.setenv("CESO_REDIS_URL", "redis://other/0")
    s = load_settings(cfg)
    assert (s.redis_url, s.jobs.max_attempts, s.jobs.heartbeat_s) == ("redis://other/0", 9, 2)


def test_user_config_file_is_found(tmp_path: Path) -> None:
    cfg = tmp_path / "home/.config/ceso/config.yaml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text("esxi_timeout_s: 12\n")
    s = load_settings()
    assert s.esxi_timeout_s == 12
    assert s.config_file == cfg


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("jobs:\n  max_attempts: zero\n", "'jobs.max_attempts'"),
        ("no_such_key: 1\n", "'no_such_key'"),
        ("- a list\n", "must be a mapping"),
        ("redis_url: [unclosed\n", "cannot read config"),
        ("secret_store: vault\n", "'secret_store'"),
    ],
)
def test_invalid_file_names_key_and_file(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert fragment in info.value.message
    assert str(cfg) in info.value.message


def test_invalid_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CESO_ESXI_TIMEOUT_S", "-3")
    with pytest.raises(ConfigError, match="CESO_ESXI_TIMEOUT_S"):
        load_settings()


def test_missing_explicit_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_cli_reports_invalid_config_in_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("jobs:\n  max_attempts: -1\n")
    result = Cli({})("--config", str(cfg), "job", "list")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "jobs.max_attempts" in result.stderr and str(cfg) in result.stderr
    as_json = Cli({})("--json", "--config", str(cfg), "job", "list")
    assert as_json.exit_code == 2
    assert as_json.json()["error"]["code"] == "invalid_config"


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("jobs:\n  max_atempts: 5\n", "jobs.max_atempts"),
        ("locks:\n  ttl: 5\n", "locks.ttl"),
        ("metrics:\n  port: 1\n", "metrics.port"),
        ("backups:\n  retention:\n    keep_dayly: 3\n", "backups.retention.keep_dayly"),
        ("backups:\n  compresion: gzip\n", "backups.compresion"),
        (
            "backups:\n  schedules:\n    - {vm: web, host: esxi-a, cron: '0 2 * * *', targt: nas, encrypted: true}\n",
            "backups.schedules.0.targt",
        ),
        ("cesod:\n  listn: 127.0.0.1:1\n", "cesod.listn"),
    ],
)
def test_a_typo_at_any_level_is_refused_with_its_path(tmp_path: Path, yaml_text: str, key: str) -> None:
    """A misspelt key inside a section used to load as its default, silently (a schedule's
    target and encryption included)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(ConfigError, match=rf"unknown key '{key.replace('.', '[.]')}'"):
        load_settings(cfg)
