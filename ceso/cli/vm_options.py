"""Click options of a new VM's size and guest identity (``vm create``, ``vm clone``,
``backup restore``, ``cloudinit render``), declared from their spec (:mod:`ceso.vm.specs`).

The CLI takes two kinds of option cesod does not: ``--ssh-key`` may name a file of keys,
and ``--userdata``/``--vendordata`` name files. :func:`read_guest_files_of` reads them,
so a spec always holds key lines and document text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ceso.cli.options import Seconds
from ceso.cli.spec_options import spec_options
from ceso.specs import Spec
from ceso.vm.documents import read_guest_files

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["GUEST_FIELDS", "HARDWARE_FIELDS", "guest_options", "hardware_options", "read_guest_files_of"]

GUEST_FIELDS = (
    "hostname", "ip", "gateway", "ip6", "gateway6", "dns", "search", "user", "ssh_key", "package",
    "userdata", "vendordata",
)  # fmt: skip
HARDWARE_FIELDS = (
    "cpus", "memory", "disk", "datastore", "network", "no_power_on", "wait_ip", "wait_ip_timeout",
)  # fmt: skip

_FILE = {"type": click.Path(dir_okay=False), "metavar": "FILE", "help_suffix": " Read from FILE."}


def guest_options(spec: type[Spec]) -> Callable[[F], F]:
    """Identity, network and cloud-init options of a new guest."""
    return spec_options(
        spec,
        *GUEST_FIELDS,
        ip={"metavar": "CIDR|dhcp"},
        ip6={"metavar": "CIDR|dhcp"},
        ssh_key={"metavar": "FILE|KEY", "help_suffix": " A FILE of such lines is read."},
        userdata=_FILE,
        vendordata=_FILE,
    )


def hardware_options(spec: type[Spec]) -> Callable[[F], F]:
    """Size, placement and power options of a new VM."""
    return spec_options(
        spec,
        *HARDWARE_FIELDS,
        memory={"metavar": "SIZE"},
        disk={"metavar": "SIZE"},
        network={"metavar": "PORTGROUP"},
        wait_ip_timeout={"type": Seconds(min=1), "metavar": "SECONDS"},
    )


def read_guest_files_of(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each ``--ssh-key`` resolved to key lines and the documents' files read
    (InvalidInputError on the first problem); the spec's fields, ready for it."""
    keys, userdata, vendordata = read_guest_files(params["ssh_key"], params["userdata"], params["vendordata"])
    return {**params, "ssh_key": keys, "userdata": userdata, "vendordata": vendordata}
