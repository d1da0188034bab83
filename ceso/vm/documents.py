"""Reading the files an operator names for a new guest: ``--ssh-key`` files and the cloud-init
documents (``--userdata``, ``--vendordata``).

Light (``os``, not pathlib): the CLI reads them itself before it hands a
command to a local cesod, which never reads a file a caller names.
"""

from __future__ import annotations

from collections.abc import Sequence

from ceso.input_files import KIB, read_text_file

__all__ = ["MAX_DOCUMENT_FILE", "read_document", "read_guest_files"]

MAX_DOCUMENT_FILE = 256 * KIB  # far above the 64 KiB encoded limit; refuses a wrong file early


def read_document(path: str, what: str) -> str:
    """The UTF-8 text of regular file ``path``; InvalidInputError naming ``what`` if it is empty, too
    large, unreadable, not text or not a regular file (a FIFO is refused at once, never waited on)."""
    return read_text_file(path, f"--{what} file", max_bytes=MAX_DOCUMENT_FILE)


def read_guest_files(
    ssh_keys: Sequence[str], userdata_file: str | None, vendordata_file: str | None
) -> tuple[list[str], str | None, str | None]:
    """``(key lines, userdata, vendordata)``: each ``--ssh-key`` resolved (a literal key, or a file of
    keys) and the two documents read, in that order; InvalidInputError on the first problem."""
    keys: list[str] = []
    if ssh_keys:
        from ceso.cloudinit.sshkeys import read_ssh_keys

        keys = [line for spec in ssh_keys for line in read_ssh_keys(spec)]
    userdata = read_document(userdata_file, "userdata") if userdata_file else None
    vendordata = read_document(vendordata_file, "vendordata") if vendordata_file else None
    return keys, userdata, vendordata
