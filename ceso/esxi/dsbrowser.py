"""Does a file or folder exist on a datastore? One HostDatastoreBrowser search, recorded like every call.

Used to refuse an ISO that is not there before a reconfigure (ESXi would
accept the backing and fail later, at power on or in a VM question) and to
check that ``vm delete`` left no folder behind.
"""

from __future__ import annotations

from ceso.errors import NotFoundError
from ceso.esxi.vmomi import vim
from ceso.esxi.vmops import VmOps, split_datastore_path

__all__ = ["datastore_path_exists"]


def datastore_path_exists(ops: VmOps, path: str) -> bool:
    """True if ``[ds] folder/name`` exists (a file or a folder), False if it or its folder does not.

    Raises NotFoundError when the datastore itself is unknown on the host, and
    the translated fault of any other failure.
    """
    datastore, rel = split_datastore_path(path)
    browser = ops.datastore_props(datastore, ["browser"])["browser"]
    folder, _, leaf = rel.rstrip("/").rpartition("/")
    search_in = f"[{datastore}] {folder}".rstrip()
    ops.record(
        "HostDatastoreBrowser.SearchDatastore_Task", {"datastorePath": search_in, "matchPattern": [leaf]}
    )
    spec = vim().host.DatastoreBrowser.SearchSpec(matchPattern=[leaf])
    task = ops.client.call(
        f"search {search_in}", lambda: browser.SearchDatastore_Task(datastorePath=search_in, searchSpec=spec)
    )
    try:
        result = ops.client.wait_task(task, action=f"search {search_in}", timeout=ops.task_timeout)
    except NotFoundError:
        return False  # the folder itself is missing
    # matchPattern is a glob; compare exactly so a name holding * or ? cannot match another file.
    return any(f.path == leaf for f in (getattr(result, "file", None) or []))
