"""The route that serves a host's datastore files: :func:`open_files`.

It reads the host's record and returns the API route's implementation or the SSH route's, chosen
as jobs choose (:func:`ceso.backends.routes.choose_route`). Kept apart from
:mod:`ceso.datastore.files` so that the interface imports neither implementation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ceso.datastore.files import DatastoreFiles
    from ceso.runtime import Runtime

__all__ = ["open_files"]


def open_files(runtime: Runtime, host: str, datastore: str) -> DatastoreFiles:
    """The files of ``datastore`` on registered host ``host`` through the route its jobs take.

    NotFoundError for an unknown host or datastore; NotPermittedError (``api_read_only``) for a
    host whose API cannot write and that has no SSH login.
    """
    from sqlmodel import Session

    from ceso.backends.routes import choose_route
    from ceso.errors import NotPermittedError
    from ceso.hosts.registry import get_host
    from ceso.ssh.target import ssh_configured

    with Session(runtime.engine) as session:
        row = get_host(session, host)
    route = choose_route(row)
    if route == "api":
        from ceso.datastore.api import ApiDatastoreFiles

        return ApiDatastoreFiles(runtime.client(row), datastore)
    if not ssh_configured(row):
        raise NotPermittedError(
            f"host {row.name} needs the SSH route (its API cannot write) but has no SSH login: "
            "re-add it with --ssh-user and --ssh-key",
            code="api_read_only",
        )
    from ceso.datastore.sftp import SftpDatastoreFiles

    return SftpDatastoreFiles(runtime.ssh.client(row), datastore)
