"""The configuration identity that names cesod's operator socket (:mod:`ceso.cesod.local`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from ceso.cesod.local import IDENTITY_SETTINGS, config_identity, socket_path
from ceso.settings import Settings

BASE = {"CESO_DATABASE_URL": "sqlite:////srv/ceso.db", "CESO_REDIS_URL": "redis://127.0.0.1:6379/0"}


@pytest.fixture
def no_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ``$CESO_CONFIG`` and an empty home: the identity is made from the environment given."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CESO_CONFIG", raising=False)


def test_identity_covers_every_setting_but_the_daemons_own() -> None:
    assert set(IDENTITY_SETTINGS) | {"cesod", "metrics", "config_file"} == set(Settings.model_fields)


@pytest.mark.parametrize(
    "extra",
    [
        {"CESO_METRICS__CESOD_PORT": "0"},
        {"CESO_CESOD__LISTEN": "127.0.0.1:9999"},
        {"CESO_AGENT_TOKEN": "ceso_agent_secret"},
        {"CESO_HOST_PASSWORD": "hunter2"},
        {"CESO_BENCH_REDIS_URL": "redis://elsewhere"},
        {"PATH": "/nowhere"},
    ],
)
@pytest.mark.usefixtures("no_config_file")
def test_identity_ignores_what_does_not_choose_what_is_operated_on(extra: dict[str, str]) -> None:
    assert config_identity(None, {**BASE, **extra}) == config_identity(None, BASE)


@pytest.mark.parametrize(
    "extra",
    [
        {"CESO_DATABASE_URL": "postgresql://ceso@db/ceso"},
        {"ceso_redis_url": "redis://127.0.0.1:6379/1"},  # read case-insensitively, as the settings do
        {"CESO_JOBS__MAX_ATTEMPTS": "5"},
        {"CESO_SECURITY__OPERATOR_MODE": "standard"},
    ],
)
@pytest.mark.usefixtures("no_config_file")
def test_identity_follows_every_setting(extra: dict[str, str]) -> None:
    assert config_identity(None, {**BASE, **extra}) != config_identity(None, BASE)


def test_identity_follows_the_config_file_and_its_contents(tmp_path: Path) -> None:
    config = tmp_path / "ceso.yaml"
    config.write_text("redis_url: redis://127.0.0.1:6379/0\n")
    first = config_identity(str(config), BASE)
    assert first is not None and first != config_identity(None, BASE)
    config.write_text("redis_url: redis://127.0.0.1:6379/2\n")
    assert config_identity(str(config), BASE) != first
    assert config_identity(str(tmp_path / "missing.yaml"), BASE) is None  # the CLI then reports it itself


def test_socket_path_fits_a_unix_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    path = Path(socket_path("f" * 64))
    assert len(str(path)) < 108 and path.name == f"cesod-{'f' * 24}.sock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert Path(socket_path("f" * 64)).parent == Path("/run/user/1000/ceso")


@pytest.mark.usefixtures("no_config_file")
def test_identity_follows_the_release(monkeypatch: pytest.MonkeyPatch) -> None:
    import ceso.cesod.local as local

    before = config_identity(None, BASE)
    monkeypatch.setattr(local, "__version__", "99.0.0")
    assert config_identity(None, BASE) != before


def test_cli_falls_back_when_the_socket_is_stale_or_the_directory_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    import os
    import socket

    from ceso.cesod.local import connect, prepare_socket_dir

    # A short directory of its own: a socket path is limited to 107 bytes, and tmp_path is longer
    # under pytest-xdist.
    run = Path(tempfile.mkdtemp(prefix="ceso-run-"))
    request.addfinalizer(lambda: shutil.rmtree(run, ignore_errors=True))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("HOME", str(tmp_path))
    for key in [k for k in os.environ if k.startswith("CESO_")]:
        monkeypatch.delenv(key)
    identity = config_identity(None)
    assert identity is not None
    prepare_socket_dir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(socket_path(identity))  # a socket file whose cesod died without removing it
    stale.close()
    assert connect(None) is None
    listening = socket.socket(socket.AF_UNIX)
    os.unlink(socket_path(identity))
    listening.bind(socket_path(identity))
    listening.listen(1)
    try:
        sock = connect(None)
        assert sock is not None
        sock.close()
        os.chmod(run / "ceso", 0o777)  # a directory others could write: never used
        assert connect(None) is None
        os.chmod(run / "ceso", 0o700)
        monkeypatch.setenv("CESO_NO_CESOD", "1")
        assert connect(None) is None
        monkeypatch.delenv("CESO_NO_CESOD")
        monkeypatch.setenv("CESO_AGENT_TOKEN", "ceso_agent_x")
        assert connect(None) is None  # an agent's own token decides: the usual path
    finally:
        listening.close()
