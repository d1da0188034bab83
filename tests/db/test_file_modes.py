"""File modes of what ceso creates: the data directory 0700, the SQLite database and its
``-wal``/``-shm`` files 0600, whatever the umask lets through (checked on the real files)."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import CESO_BIN


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o022)  # the usual default: group and others may read what is made
    yield
    os.umask(old)


def test_cli_creates_a_private_data_directory_and_database(tmp_path: Path, open_umask: None) -> None:
    data_dir = tmp_path / "fresh" / "ceso"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CESO_") and k not in ("XDG_RUNTIME_DIR",)}
    env.update(
        CESO_DATA_DIR=str(data_dir),
        HOME=str(tmp_path / "home"),
        CESO_NO_CESOD="1",
        CESO_SECRET_STORE="file",
    )
    done = subprocess.run(
        [str(CESO_BIN), "job", "list"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (data_dir / "ceso.db").is_file()
    assert _mode(data_dir) == 0o700
    assert _mode(data_dir / "ceso.db") == 0o600
    assert _mode(tmp_path / "fresh") == 0o755  # a parent is not ceso's: the usual mode


def test_wal_and_shm_files_follow_the_database(tmp_path: Path, open_umask: None) -> None:
    from ceso.db.engine import make_engine

    db = tmp_path / "new-dir" / "ceso.db"
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:  # the connection keeps -wal and -shm in place
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            conn.commit()
            companions = [Path(f"{db}-wal"), Path(f"{db}-shm")]
            assert all(p.exists() for p in companions)
            assert {p.name: _mode(p) for p in [db, *companions]} == {
                "ceso.db": 0o600,
                "ceso.db-wal": 0o600,
                "ceso.db-shm": 0o600,
            }
        assert _mode(db.parent) == 0o700
    finally:
        engine.dispose()


def test_an_existing_directory_keeps_its_mode(tmp_path: Path, open_umask: None) -> None:
    from ceso.db.engine import make_engine

    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    os.chmod(shared, 0o750)
    make_engine(f"sqlite:///{shared / 'ceso.db'}").dispose()
    assert _mode(shared) == 0o750  # the operator's choice
    assert _mode(shared / "ceso.db") == 0o600
