"""Datastore files through the vSphere API: the ``/folder`` HTTP service with the API session for
bytes (:class:`ceso.backup.datastore_http.DatastoreHttp`), the datastore's browser for listings,
``FileManager`` for moves and deletes."""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING, Any, BinaryIO

from ceso.backends.vmomi import vim
from ceso.backup.datastore_http import DatastoreHttp
from ceso.datastore.files import CHUNK, Entry, Progress
from ceso.datastore.paths import PART_SUFFIX
from ceso.errors import CesoError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ceso.esxi.client import EsxiClient

__all__ = ["ApiDatastoreFiles"]


class ApiDatastoreFiles:
    """The files of ``datastore`` on the host of ``client`` (see :class:`ceso.datastore.files.DatastoreFiles`)."""

    route = "api"

    def __init__(self, client: EsxiClient, datastore: str) -> None:
        self.client = client
        self.datastore = datastore
        self.http = DatastoreHttp(client)
        self._browser: Any = None

    def _ds(self, path: str) -> str:
        return f"[{self.datastore}] {path}".rstrip()

    def _browse(self) -> Any:
        if self._browser is None:
            rows = [
                r
                for r in self.client.retrieve("Datastore", ["name", "browser"])
                if r.get("name") == self.datastore
            ]
            if not rows:
                raise NotFoundError(f"host {self.client.name} has no datastore {self.datastore}")
            self._browser = rows[0]["browser"]  # the datastore's own: the host's is dead in the simulator
        return self._browser

    def _search(self, folder: str, pattern: str) -> list[Entry]:
        browser = self._browse()
        flags = vim().host.DatastoreBrowser.FileInfo.Details(fileType=True, fileSize=True, modification=True)
        spec = vim().host.DatastoreBrowser.SearchSpec(matchPattern=[pattern], details=flags)
        action = f"list {self._ds(folder)} on host {self.client.name}"
        task = self.client.call(
            action, lambda: browser.SearchDatastore_Task(datastorePath=self._ds(folder), searchSpec=spec)
        )
        result = self.client.wait_task(task, action=action)
        folder_info = vim().host.DatastoreBrowser.FolderInfo
        entries = []
        for info in (result.file if result is not None else None) or []:
            name = str(info.path).rstrip("/")
            modified = info.modification.isoformat() if getattr(info, "modification", None) else None
            is_folder = isinstance(info, folder_info)
            size = None if is_folder else int(info.fileSize or 0)
            entries.append(Entry(posixpath.join(folder, name) if folder else name, is_folder, size, modified))
        return sorted(entries, key=lambda e: e.path)

    def stat(self, path: str) -> Entry | None:
        if not path:
            self._browse()
            return Entry("", True, None)
        folder, name = posixpath.split(path)
        try:
            found = self._search(folder, name)
        except NotFoundError:
            return None
        # The pattern is a glob: a name holding * or ? may match others.
        return next((e for e in found if e.path == path), None)

    def list(self, path: str) -> list[Entry]:
        entry = self.stat(path)
        if entry is None:
            raise NotFoundError(f"no {self._ds(path)} on host {self.client.name}")
        if not entry.folder:
            return [entry]
        return [e for e in self._search(path, "*") if not e.path.endswith(PART_SUFFIX)]

    def _file_task(self, method: str, action: str, **kwargs: Any) -> None:
        fm = self.client.content.fileManager
        task = self.client.call(action, lambda: getattr(fm, method)(**kwargs))
        self.client.wait_task(task, action=action)

    def upload(self, source: BinaryIO, size: int, path: str, *, replace: bool, progress: Progress) -> None:
        part = path + PART_SUFFIX
        try:
            self.http.upload(self.datastore, part, size, _chunks(source, progress))
            self._file_task(
                "MoveDatastoreFile_Task",
                f"move {self._ds(part)} into place",
                sourceName=self._ds(part),
                destinationName=self._ds(path),
                force=replace,
            )
        except BaseException:
            with contextlib.suppress(CesoError):
                self._file_task("DeleteDatastoreFile_Task", f"delete {self._ds(part)}", name=self._ds(part))
            raise

    def download(self, path: str, sink: BinaryIO, *, progress: Progress) -> int:
        remote = self.http.open_read(self.datastore, path)
        buffer = bytearray(CHUNK)
        copied = 0
        try:
            while n := remote.readinto(buffer):
                sink.write(memoryview(buffer)[:n])
                copied += n
                progress(n)
        finally:
            remote.close()
        return copied

    def remove(self, path: str) -> None:
        self._file_task("DeleteDatastoreFile_Task", f"delete {self._ds(path)}", name=self._ds(path))

    def close(self) -> None:
        return None  # the session belongs to the runtime's pool


def _chunks(source: BinaryIO, progress: Progress) -> Iterator[bytes]:
    while chunk := source.read(CHUNK):
        yield chunk
        progress(len(chunk))
