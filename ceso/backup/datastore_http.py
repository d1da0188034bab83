"""Datastore files of one host over its ``/folder`` HTTP(S) file service.

``GET/PUT /folder/<path>?dcPath=ha-datacenter&dsName=<datastore>``, authenticated
with the API session's cookie (real ESXi requires it), TLS pinned to the host's
thumbprint like the API. Reads resume after a dropped connection with a
``Range`` request from the last byte received, within the window of their
:class:`~ceso.jobs.retry.ReadResume` (a job's ``jobs.host_retry_s``); uploads
(one PUT of the whole file) cannot resume and are retried whole by their caller.

Errors: NotFoundError (404), AuthenticationError (401/403 after one re-login),
TransientError (connection lost, HTTP 5xx), HostUnreachableError (a read not
resumed within its window), OperationError (any other status, or a host that
ignores a read's range). The cookie never appears in an error or a log line.
"""

from __future__ import annotations

import http.client
import logging
import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import quote

from ceso.errors import AuthenticationError, CesoError, NotFoundError, OperationError, TransientError
from ceso.jobs.retry import ReadResume

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["DatastoreHttp", "RemoteFile"]

log = logging.getLogger(__name__)

DATACENTER = "ha-datacenter"  # a standalone host's only datacenter
_NET_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


class DatastoreHttp:
    """HTTP access to the datastore files of the host behind ``client``."""

    def __init__(
        self, client: EsxiClient, *, timeout: float | None = None, resume: ReadResume | None = None
    ) -> None:
        self.client = client
        self.timeout = timeout or client.timeout
        self.resume = resume or ReadResume()
        self._context: ssl.SSLContext | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def connection(self) -> http.client.HTTPConnection:
        ep = self.client.endpoint
        if ep.scheme == "http":
            return http.client.HTTPConnection(ep.hostname, ep.port, timeout=self.timeout)
        if self._context is None:
            from ceso.esxi.tlspin import pinned_context

            thumb = self.client.thumbprint
            self._context = pinned_context(thumb) if thumb else ssl.create_default_context()
        return http.client.HTTPSConnection(ep.hostname, ep.port, timeout=self.timeout, context=self._context)

    @staticmethod
    def url(datastore: str, path: str) -> str:
        """The request target of ``[datastore] path``."""
        return (
            f"/folder/{quote(path.lstrip('/'), safe='/')}"
            f"?dcPath={quote(DATACENTER, safe='')}&dsName={quote(datastore, safe='')}"
        )

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Cookie": self.client.session_cookie(), **extra}

    def _check(self, resp: http.client.HTTPResponse, what: str, ok: tuple[int, ...]) -> None:
        if resp.status in ok:
            return
        body = resp.read(512).decode("utf-8", "replace").strip()
        resp.close()
        host = self.client.name
        if resp.status == 404:
            raise NotFoundError(f"{what}: no such file on host {host}")
        if resp.status in (401, 403):
            raise AuthenticationError(f"{what}: host {host} refused the session (HTTP {resp.status})")
        if resp.status >= 500:
            raise TransientError(f"{what}: host {host} answered HTTP {resp.status} {body[:200]}")
        raise OperationError(f"{what}: host {host} answered HTTP {resp.status} {body[:200]}")

    def _request(
        self, method: str, datastore: str, path: str, what: str, ok: tuple[int, ...], **headers: str
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """One request with no body; a refused session is renewed once."""
        for attempt in (1, 2):
            conn = self.connection()
            try:
                conn.request(method, self.url(datastore, path), headers=self.headers(**headers))
                resp = conn.getresponse()
            except _NET_ERRORS as exc:
                conn.close()
                raise TransientError(
                    f"{what} on host {self.client.name}: {type(exc).__name__}: {exc}", code="connection_lost"
                ) from exc
            if resp.status in (401, 403) and attempt == 1:
                resp.close()
                conn.close()
                self.client.connect()  # the session expired: log in again, new cookie
                continue
            try:
                self._check(resp, what, ok)
            except BaseException:
                conn.close()
                raise
            return conn, resp
        raise AssertionError("unreachable")

    # -- reads ----------------------------------------------------------------------------------
    def open_read(self, datastore: str, path: str) -> RemoteFile:
        """Open ``[datastore] path`` for reading (NotFoundError if missing)."""
        return RemoteFile(self, datastore, path)

    def open_range(self, datastore: str, path: str, start: int, length: int) -> RemoteFile:
        """Open ``length`` bytes of ``[datastore] path`` from ``start`` (one Range request)."""
        return RemoteFile(self, datastore, path, window=(start, length))

    def size(self, datastore: str, path: str) -> int:
        """The size of a file (HEAD); NotFoundError if missing."""
        conn, resp = self._request("HEAD", datastore, path, f"stat [{datastore}] {path}", (200,))
        try:
            return int(resp.getheader("Content-Length") or 0)
        finally:
            resp.close()
            conn.close()

    # -- writes ---------------------------------------------------------------------------------
    def upload(self, datastore: str, path: str, size: int, chunks: Iterable[bytes | memoryview]) -> None:
        """PUT exactly ``size`` bytes from ``chunks`` to ``[datastore] path`` (replacing it).

        Raises TransientError if the connection breaks (the file on the host is then
        incomplete; the caller deletes or rewrites it), OperationError if ``chunks``
        yields more or fewer than ``size`` bytes.
        """
        what = f"upload [{datastore}] {path}"
        conn = self.connection()
        sent = 0
        try:
            conn.putrequest("PUT", self.url(datastore, path), skip_accept_encoding=True)
            for key, value in self.headers(
                **{"Content-Length": str(size), "Content-Type": "application/octet-stream"}
            ).items():
                conn.putheader(key, value)
            conn.endheaders()
            for chunk in chunks:
                sent += len(chunk)
                if sent > size:
                    raise OperationError(f"{what}: more bytes than the announced {size}")
                conn.send(chunk)
            if sent != size:
                raise OperationError(f"{what}: {sent} bytes instead of the announced {size}")
            resp = conn.getresponse()
            self._check(resp, what, (200, 201, 204))
            resp.read()
        except _NET_ERRORS as exc:
            raise TransientError(
                f"{what} on host {self.client.name} broke after {sent} bytes: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            conn.close()

    def chunked_upload(self, datastore: str, path: str) -> ChunkedUpload:
        """A PUT whose size is not known in advance (chunked transfer encoding)."""
        return ChunkedUpload(self, datastore, path)


class RemoteFile:
    """A datastore file (or a ``window`` of it: start, length) being read; ``offset`` and ``size`` count
    from the window's start.

    A connection lost mid-read (reset, timeout, the host unreachable for a while) is resumed by the
    owner's :class:`~ceso.jobs.retry.ReadResume`: a ``Range`` request from the first byte not yet
    returned, whose answer must be ``206`` with exactly that ``Content-Range`` (a host that ignores
    the range would send bytes twice: that fails the read). A refused session is renewed once per
    request (the host's service may have restarted). The first request is retried the same way.
    """

    def __init__(
        self, owner: DatastoreHttp, datastore: str, path: str, *, window: tuple[int, int] | None = None
    ) -> None:
        self._owner = owner
        self.datastore = datastore
        self.path = path
        self.what = f"read [{datastore}] {path}"
        self.offset = 0
        self._window = window
        self.size = window[1] if window is not None else -1
        if window is not None:
            self.what += f" bytes {window[0]}+{window[1]}"
        try:
            self._open()
        except CesoError as exc:
            owner.resume.reopen(self._where(), 0, exc, self._open)

    @property
    def resumes(self) -> int:
        """Reads resumed so far through this file's owner."""
        return self._owner.resume.resumes

    def _where(self) -> str:
        return f"{self.what} on host {self._owner.client.name}"

    def _open(self) -> None:
        """Ask for the bytes from ``offset`` on; check the answer holds exactly those."""
        first = self.offset + (self._window[0] if self._window is not None else 0)
        if self._window is None and self.offset == 0:
            self._conn, self._resp = self._owner._request("GET", self.datastore, self.path, self.what, (200,))
            self.size = int(self._resp.getheader("Content-Length") or 0)
            return
        last = (self._window[0] + self._window[1] if self._window is not None else self.size) - 1
        self._conn, self._resp = self._owner._request(
            "GET", self.datastore, self.path, self.what, (200, 206), Range=f"bytes={first}-{last}"
        )
        content_range = self._resp.getheader("Content-Range") or ""
        whole = self._resp.status == 200
        wrong = not content_range.startswith(f"bytes {first}-{last}/") or (
            self._window is None and not content_range.endswith(f"/{self.size}")
        )
        if whole or wrong:
            self.close()
            if whole:
                raise OperationError(
                    f"{self._where()}: the host ignored the range from byte {first} and answered the "
                    "whole file; the read cannot go on without repeating bytes"
                )
            raise OperationError(f"{self.what}: answered with range {content_range!r} (file changed?)")

    def readinto(self, buffer: bytearray | memoryview) -> int:
        """Fill ``buffer`` as far as possible; 0 only at the end of the file."""
        view = memoryview(buffer)
        filled = 0
        while filled < len(view) and self.offset < self.size:
            try:
                n = self._resp.readinto(view[filled:])
                if n == 0:
                    raise http.client.IncompleteRead(b"", self.size - self.offset)
            except _NET_ERRORS as exc:  # socket timeouts are OSErrors
                self.close()
                cut = TransientError(
                    f"{self._where()}: connection lost at byte {self.offset}: {type(exc).__name__}: {exc}",
                    code="connection_lost",
                )
                self._owner.resume.reopen(self._where(), self.offset, cut, self._open)
                continue
            filled += n
            self.offset += n
        return filled

    def close(self) -> None:
        self._resp.close()
        self._conn.close()


class ChunkedUpload:
    """``write()`` bytes of unknown total size to a datastore file; :meth:`finish` confirms it."""

    def __init__(self, owner: DatastoreHttp, datastore: str, path: str) -> None:
        self._owner = owner
        self.what = f"upload [{datastore}] {path}"
        self._conn = owner.connection()
        self.written = 0
        try:
            self._conn.putrequest("PUT", owner.url(datastore, path), skip_accept_encoding=True)
            for key, value in owner.headers(
                **{"Transfer-Encoding": "chunked", "Content-Type": "application/octet-stream"}
            ).items():
                self._conn.putheader(key, value)
            self._conn.endheaders()
        except _NET_ERRORS as exc:
            self._conn.close()
            raise TransientError(f"{self.what}: {type(exc).__name__}: {exc}") from exc

    def write(self, data: bytes | memoryview) -> None:
        if not data:
            return
        try:
            self._conn.send(b"%x\r\n" % len(data))
            self._conn.send(data)
            self._conn.send(b"\r\n")
        except _NET_ERRORS as exc:
            self._conn.close()
            raise TransientError(f"{self.what} broke after {self.written} bytes: {exc}") from exc
        self.written += len(data)

    def finish(self) -> None:
        try:
            self._conn.send(b"0\r\n\r\n")
            resp = self._conn.getresponse()
            self._owner._check(resp, self.what, (200, 201, 204))
            resp.read()
        except _NET_ERRORS as exc:
            raise TransientError(f"{self.what}: {type(exc).__name__}: {exc}") from exc
        finally:
            self._conn.close()

    def abort(self) -> None:
        self._conn.close()
