"""ceso.jobs.retry.ReadResume, the window a cut read of a host file is resumed in; and a host that
ignores a resumed read's Range (a real HTTP server on loopback that does so)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from ceso.backup.datastore_http import DatastoreHttp
from ceso.errors import (
    AuthenticationError,
    HostUnreachableError,
    NotFoundError,
    OperationError,
    TransientError,
)
from ceso.hosts.endpoint import parse_endpoint
from ceso.jobs.retry import ReadResume


def _lost(n: int) -> TransientError:
    return TransientError(f"lost {n}", code="connection_lost")


def test_a_read_resumes_after_refused_tries_each_recorded() -> None:
    waits: list[float] = []
    resume = ReadResume(60.0, sleep=waits.append)
    answers: list[Any] = [_lost(2), HostUnreachableError("refused"), "opened"]

    def open_again() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return str(answer)

    assert resume.reopen("read x", 4096, _lost(1), open_again) == "opened"
    assert waits == [0.5, 1.0, 2.0] and resume.resumes == 1
    records = resume.drain()
    assert [(r["try"], r["code"], r["wait_s"], r["at_byte"]) for r in records] == [
        (1, "connection_lost", 0.5, 4096),
        (2, "connection_lost", 1.0, 4096),
        (3, "host_unreachable", 2.0, 4096),
    ]
    assert resume.drain() == []


def test_faults_that_are_not_transient_fail_at_once() -> None:
    resume = ReadResume(60.0, sleep=lambda _s: None)
    with pytest.raises(AuthenticationError):
        resume.reopen("read x", 0, AuthenticationError("refused"), lambda: None)

    def gone() -> None:
        raise NotFoundError("no such file")

    with pytest.raises(NotFoundError):
        resume.reopen("read x", 10, _lost(1), gone)
    assert len(resume.drain()) == 1 and resume.resumes == 0


def test_the_window_and_the_job_end_bound_the_resumes() -> None:
    def refused() -> None:
        raise HostUnreachableError("refused")

    started = time.monotonic()
    with pytest.raises(HostUnreachableError, match="cut at byte 7") as caught:
        ReadResume(1.2).reopen("read x", 7, _lost(1), refused)  # waits 0.5; 1.0 would pass the window
    assert time.monotonic() - started < 1.2 and caught.value.details["tries"] == 2
    late = ReadResume(60.0, ends_at=time.monotonic() + 0.1, sleep=lambda _s: pytest.fail("no wait"))
    with pytest.raises(HostUnreachableError):
        late.reopen("read x", 7, _lost(1), refused)
    (record,) = late.drain()
    assert record["wait_s"] is None


class _CutThenWhole(http.server.BaseHTTPRequestHandler):
    """The first GET is cut after half its body; later ones ignore Range and send the whole file."""

    body = bytes(range(256)) * 4096
    gets: list[str | None] = []

    def do_GET(self) -> None:
        self.gets.append(self.headers.get("Range"))
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        if len(self.gets) == 1:
            self.wfile.write(self.body[: len(self.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


class _Client:
    """What DatastoreHttp asks of an EsxiClient: where the host is and the session's cookie."""

    def __init__(self, port: int) -> None:
        self.endpoint = parse_endpoint(f"http://127.0.0.1:{port}/sdk")
        self.name, self.timeout, self.thumbprint = "loopback", 5.0, None

    def session_cookie(self) -> str:
        return "vmware_soap_session=x"

    def connect(self) -> None:
        pass


@pytest.fixture
def ignoring_server() -> Iterator[int]:
    _CutThenWhole.gets = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _CutThenWhole)
    server.handle_error = lambda *_args: None  # type: ignore[method-assign]  # the client hangs up
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_a_host_that_ignores_the_range_fails_the_read_rather_than_repeat_bytes(ignoring_server: int) -> None:
    http_files = DatastoreHttp(_Client(ignoring_server), resume=ReadResume(10.0))  # type: ignore[arg-type]
    remote = http_files.open_read("ds", "vm/disk-flat.vmdk")
    buf = bytearray(64 << 10)
    with pytest.raises(OperationError, match="ignored the range"):
        while remote.readinto(buf):
            pass
    half = len(_CutThenWhole.body) // 2
    assert _CutThenWhole.gets[0] is None and _CutThenWhole.gets[1] == f"bytes={half}-{2 * half - 1}"
