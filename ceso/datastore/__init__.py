"""Files on a host's datastores: list, upload, download and remove, on either route.

* :mod:`ceso.datastore.paths` — ``HOST:[DS] PATH`` parsed, and every path held inside its
  datastore (no ``..``, no absolute path);
* :mod:`ceso.datastore.files` — the :class:`~ceso.datastore.files.DatastoreFiles` interface and
  :func:`~ceso.datastore.route.open_files`, which picks the host's route;
* :mod:`ceso.datastore.api` — the vSphere API route (``/folder`` HTTP with the session, the
  datastore browser, ``FileManager``);
* :mod:`ceso.datastore.sftp` — the SSH route (SFTP under ``/vmfs/volumes/<ds>/``);
* :mod:`ceso.datastore.owners` — which registered VM a path belongs to (``rm`` refuses those).

Uploads are atomic on both routes: the bytes go to ``<path>.ceso-part`` and are renamed into
place once complete, so nothing on the host ever sees half a file under the real name.
"""
