"""A datastore of a registered ESXi host as a backup target (same or another host than the VM's).

Files go over the host's ``/folder`` service (chunked PUT to ``<file>.partial``)
and are made visible by ``FileManager.MoveDatastoreFile_Task``; listing uses the
datastore browser, deletion ``FileManager.DeleteDatastoreFile_Task``. The host's
password stays in the secret store, as for every other use of the host.
"""

from __future__ import annotations

import contextlib
import posixpath
from typing import TYPE_CHECKING, Any

from ceso.backends.vmomi import vim
from ceso.backup.datastore_http import ChunkedUpload, DatastoreHttp, RemoteFile
from ceso.backup.targets.base import PARTIAL_SUFFIX, Target, TargetReader, TargetWriter, check_key
from ceso.errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["DatastoreTarget"]


class _Writer:
    def __init__(self, target: DatastoreTarget, path: str) -> None:
        self._target = target
        self._path = path
        self._partial = path + PARTIAL_SUFFIX
        target._mkdir(posixpath.dirname(path))
        self._upload: ChunkedUpload = target.http.chunked_upload(target.datastore, self._partial)

    def write(self, data: bytes | memoryview) -> None:
        self._upload.write(data)

    def commit(self) -> int:
        t = self._target
        try:
            self._upload.finish()
            t._file_task("MoveDatastoreFile_Task", f"move {self._partial}", self._partial, self._path)
        except BaseException:
            self.abort()
            raise
        return t.http.size(t.datastore, self._path)

    def abort(self) -> None:
        self._upload.abort()
        try:
            self._target._file_task("DeleteDatastoreFile_Task", f"delete {self._partial}", self._partial)
        except Exception:  # best effort by contract: the partial is removed with its set later
            return


class _Reader:
    def __init__(self, remote: RemoteFile) -> None:
        self._remote = remote
        self._buf = bytearray(1 << 20)

    def read(self, n: int = -1, /) -> bytes:
        size = len(self._buf) if n < 0 else min(n, len(self._buf))
        got = self._remote.readinto(memoryview(self._buf)[:size])
        return bytes(self._buf[:got])

    def close(self) -> None:
        self._remote.close()


class DatastoreTarget(Target):
    """Files under ``[datastore] root/`` on the registered host of ``client``."""

    type = "datastore"

    def __init__(self, name: str, *, client: EsxiClient, datastore: str, root: str) -> None:
        super().__init__(name)
        self.client = client
        self.datastore = datastore
        self.root = root.strip("/")
        self.http = DatastoreHttp(client)

    def _path(self, key: str) -> str:
        check_key(key)
        return f"{self.root}/{key}" if self.root else key

    def _ds_path(self, path: str) -> str:
        return f"[{self.datastore}] {path}"

    def _mkdir(self, path: str) -> None:
        fm = self.client.content.fileManager
        with contextlib.suppress(ConflictError):  # FileAlreadyExists: fine
            self.client.call(
                f"create directory {path}",
                lambda: fm.MakeDirectory(name=self._ds_path(path), createParentDirectories=True),
            )

    def _file_task(self, method: str, action: str, path: str, dest: str | None = None) -> None:
        fm = self.client.content.fileManager
        kwargs: dict[str, Any] = {}
        if dest is None:
            kwargs["name"] = self._ds_path(path)
        else:
            kwargs.update(sourceName=self._ds_path(path), destinationName=self._ds_path(dest), force=True)
        task = self.client.call(action, lambda: getattr(fm, method)(**kwargs))
        self.client.wait_task(task, action=action)

    def open_write(self, key: str) -> TargetWriter:
        return _Writer(self, self._path(key))

    def open_read(self, key: str) -> TargetReader:
        return _Reader(self.http.open_read(self.datastore, self._path(key)))

    def list(self, prefix: str = "") -> list[str]:
        # The datastore's own browser: the host's is a dead reference in the simulator.
        rows = [
            r
            for r in self.client.retrieve("Datastore", ["name", "browser"])
            if r.get("name") == self.datastore
        ]
        if not rows:
            raise NotFoundError(
                f"target {self.name}: host {self.client.name} has no datastore {self.datastore}"
            )
        browser = rows[0]["browser"]
        base = posixpath.join(self.root, prefix).rstrip("/") if prefix else self.root
        spec = vim().host.DatastoreBrowser.SearchSpec(matchPattern=["*"])
        try:
            task = self.client.call(
                f"list {base}",
                lambda: browser.SearchDatastoreSubFolders_Task(
                    datastorePath=self._ds_path(base), searchSpec=spec
                ),
            )
            results = self.client.wait_task(task, action=f"list [{self.datastore}] {base}") or []
        except NotFoundError:
            return []
        folder_info = vim().host.DatastoreBrowser.FolderInfo
        root = self._ds_path(self.root).rstrip("/ ")
        keys: list[str] = []
        for result in results:
            rel_dir = str(result.folderPath).rstrip("/")[len(root) :].strip("/ ")
            for info in result.file or []:
                name = str(info.path)
                if isinstance(info, folder_info) or name.endswith(PARTIAL_SUFFIX):
                    continue
                keys.append(posixpath.join(rel_dir, name) if rel_dir else name)
        return sorted(keys)

    def size(self, key: str) -> int | None:
        try:
            return self.http.size(self.datastore, self._path(key))
        except NotFoundError:
            return None

    def delete(self, key: str) -> None:
        with contextlib.suppress(NotFoundError):
            self._file_task("DeleteDatastoreFile_Task", f"delete {key}", self._path(key))

    def delete_prefix(self, prefix: str) -> int:
        count = len(self.list(prefix))
        with contextlib.suppress(NotFoundError):
            self._file_task("DeleteDatastoreFile_Task", f"delete {prefix}", self._path(prefix.rstrip("/")))
        return count

    def check(self) -> dict[str, Any]:
        if self.datastore not in {r.get("name") for r in self.client.retrieve("Datastore", ["name"])}:
            raise NotFoundError(
                f"target {self.name}: host {self.client.name} has no datastore {self.datastore}"
            )
        self._mkdir(self.root)
        facts = super().check()
        return {**facts, "host": self.client.name, "datastore": self.datastore, "path": self.root}
