"""Reading the cloud-init documents an operator names by path (``--userdata``, ``--vendordata``).

Light (``os.path``, not pathlib): the CLI reads them itself before it hands a
command to a local cesod, which never reads a file a caller names.
"""

from __future__ import annotations

import os

from ceso.errors import InvalidInputError

__all__ = ["MAX_DOCUMENT_FILE", "read_document"]

MAX_DOCUMENT_FILE = 256 * 1024  # far above the 64 KiB encoded limit; refuses a wrong file early


def read_document(path: str, what: str) -> str:
    """The UTF-8 text of file ``path``; InvalidInputError naming ``what`` if it is too large or unreadable."""
    expanded = os.path.expanduser(path)
    try:
        if os.stat(expanded).st_size > MAX_DOCUMENT_FILE:
            raise InvalidInputError(f"{what} file {path} is larger than {MAX_DOCUMENT_FILE // 1024} KiB")
        with open(expanded, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot read {what} file {path}: {exc}") from exc
