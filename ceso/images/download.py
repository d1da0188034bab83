"""An https download read as a stream, resumed with a ``Range`` request where the server allows.

:class:`Download` is a reader over one URL. When the connection breaks mid-body and the server
said ``Accept-Ranges: bytes``, it asks again from the next byte, with ``If-Range`` set to the
first answer's ETag (or Last-Modified) so a file changed meanwhile is never spliced: the server
then answers 200 with the whole new file, and the download fails instead. At most
:data:`RESUMES` resumes; a server without ranges fails at the first break. The system's CA
certificates are trusted (``SSL_CERT_FILE`` and the like are honoured).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import ssl
import urllib.error
import urllib.request
from typing import Any

from ceso.errors import NotFoundError, OperationError, TransientError

__all__ = ["RESUMES", "Download"]

log = logging.getLogger(__name__)

RESUMES = 5
_BREAKS = (OSError, http.client.HTTPException, ssl.SSLError)


class Download:
    """The body of ``url`` as a stream; ``size`` is its Content-Length (None if not given)."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url, self.timeout = url, timeout
        self.position = 0
        self.resumes = 0
        self._response = self._open({})
        headers = self._response.headers
        length = headers.get("Content-Length")
        self.size: int | None = int(length) if length and length.isdigit() else None
        self._ranges = headers.get("Accept-Ranges", "").lower() == "bytes"
        self._validator = headers.get("ETag") or headers.get("Last-Modified")

    def _open(self, headers: dict[str, str]) -> Any:
        request = urllib.request.Request(self.url, headers={"User-Agent": "ceso", **headers})  # noqa: S310  # https only
        try:
            return urllib.request.urlopen(request, timeout=self.timeout, context=ssl.create_default_context())  # noqa: S310
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFoundError(f"{self.url} answers 404 Not Found") from None
            raise OperationError(f"{self.url} answers HTTP {exc.code}") from None
        except (urllib.error.URLError, *_BREAKS) as exc:
            raise TransientError(f"cannot read {self.url}: {getattr(exc, 'reason', exc)}") from None

    def read(self, n: int = -1, /) -> bytes:
        while True:
            try:
                data: bytes = self._response.read(n)
            except _BREAKS as exc:
                self._resume(exc)
                continue
            if not data and self.size is not None and self.position < self.size:
                self._resume(EOFError(f"the body ended at byte {self.position} of {self.size}"))
                continue
            self.position += len(data)
            return data

    def _resume(self, cause: BaseException) -> None:
        if not self._ranges or self.resumes >= RESUMES:
            why = "the server does not take ranges" if not self._ranges else f"{RESUMES} resumes failed"
            raise TransientError(f"download of {self.url} broke off at byte {self.position} ({cause}); {why}")
        self.resumes += 1
        log.info("download of %s broke off at byte %d (%s); resuming", self.url, self.position, cause)
        self.close()
        headers = {"Range": f"bytes={self.position}-"}
        if self._validator:
            headers["If-Range"] = self._validator
        response = self._open(headers)
        start = response.headers.get("Content-Range", "").removeprefix("bytes ").split("-", 1)[0]
        if response.status != 206 or start != str(self.position):
            response.close()
            raise TransientError(f"{self.url} changed or cannot resume at byte {self.position}; start again")
        self._response = response

    def close(self) -> None:
        with contextlib.suppress(*_BREAKS):
            self._response.close()
