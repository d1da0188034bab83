"""The encrypted secret file: round trip, file modes, nothing in clear text."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ceso.errors import CesoError, NotFoundError
from ceso.secrets import FileSecretStore, host_secret_key, open_secret_store


def test_round_trip_and_modes(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path / "data")
    store.set(host_secret_key("a"), "pa$$word-äö")
    store.set(host_secret_key("b"), "other")
    assert store.get(host_secret_key("a")) == "pa$$word-äö"
    assert stat.S_IMODE(store.key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.data_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert b"pa$$word" not in store.data_path.read_bytes()
    store.delete(host_secret_key("a"))
    store.delete(host_secret_key("a"))  # idempotent
    with pytest.raises(NotFoundError):
        store.get(host_secret_key("a"))
    assert FileSecretStore(tmp_path / "data").get(host_secret_key("b")) == "other"


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    store = FileSecretStore(tmp_path)
    store.set("k", "v")
    store.key_path.chmod(0o644)
    with pytest.raises(CesoError, match="chmod 600"):
        store.get("k")


def test_auto_falls_back_to_file_without_a_keyring(tmp_path: Path) -> None:
    # This machine has no Secret Service, as on a headless server.
    assert open_secret_store("auto", tmp_path).kind == "file"
    assert open_secret_store("file", tmp_path).kind == "file"
