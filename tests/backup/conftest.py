"""Fixtures of backup tests: a real sshd and an S3-compatible server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backup.bed import backup_bed  # noqa: F401  (a fixture)
from tests.support.services import S3Server, Sshd, start_s3, start_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = start_sshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_s3(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def sftp_credentials(server: Sshd) -> dict[str, str]:
    return {"private_key": Path(server.client_key).read_text()}
