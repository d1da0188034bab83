"""Names every route writes alike: datastore paths, static MAC addresses, the one VM of a name."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from ceso.errors import ConflictError, InvalidInputError, NotFoundError

__all__ = ["datastore_path", "one_named", "random_static_mac", "split_datastore_path"]

T = TypeVar("T")


def datastore_path(datastore: str, path: str) -> str:
    """``[datastore] path`` as vSphere writes it."""
    return f"[{datastore}] {path}"


def split_datastore_path(value: str) -> tuple[str, str]:
    """``[ds] dir/file.vmdk`` → (``ds``, ``dir/file.vmdk``); InvalidInputError for another form."""
    if not value.startswith("[") or "]" not in value:
        raise InvalidInputError(f"{value!r} is not a datastore path like [datastore] dir/file")
    ds, _, rest = value[1:].partition("]")
    return ds, rest.strip()


def random_static_mac(taken: set[str]) -> str:
    """A MAC from VMware's manual range 00:50:56:00:00:00-00:50:56:3F:FF:FF not in ``taken``.

    ESXi refuses to power on a VM whose manual MAC lies outside that range.
    ConflictError if no free one is found.
    """
    rng = random.SystemRandom()
    for _ in range(1000):
        mac = f"00:50:56:{rng.randint(0, 0x3F):02x}:{rng.randint(0, 255):02x}:{rng.randint(0, 255):02x}"
        if mac not in taken:
            return mac
    raise ConflictError("no free MAC address found in 00:50:56:00:00:00-00:50:56:3f:ff:ff")


def one_named(matches: Sequence[T], name: str, host: str) -> T:
    """The only VM of ``matches`` (the host's VMs named ``name``).

    NotFoundError if none, ConflictError if several (ESXi allows duplicate
    display names; ceso refuses to guess).
    """
    if not matches:
        raise NotFoundError(f"no VM named {name!r} on host {host}")
    if len(matches) > 1:
        raise ConflictError(f"{len(matches)} VMs are named {name!r} on host {host}; rename one in ESXi")
    return matches[0]
