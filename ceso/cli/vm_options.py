"""Click options of a new VM's size and guest identity (``vm create``, ``vm clone``,
``backup restore``, ``cloudinit render``), declared as fields of their spec
(:mod:`ceso.cli.spec_options`; the fields are :class:`ceso.vm.specs.NewVm`'s).

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
from ceso.vm.documents import read_guest_files

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["guest_options", "hardware_options", "read_guest_files_of"]

_FILE = {"type": click.Path(dir_okay=False), "metavar": "FILE", "help_suffix": " Read from FILE."}
_MANY: dict[str, Any] = {"multiple": True}
_FLAG: dict[str, Any] = {"is_flag": True}


def guest_options(spec: str) -> Callable[[F], F]:
    """Identity, network and cloud-init options of a new guest."""
    return spec_options(
        spec,
        hostname={},
        ip={"metavar": "CIDR|dhcp"},
        gateway={},
        ip6={"metavar": "CIDR|dhcp"},
        gateway6={},
        dns=_MANY,
        search=_MANY,
        user={},
        ssh_key={"multiple": True, "metavar": "FILE|KEY", "help_suffix": " A FILE of such lines is read."},
        package=_MANY,
        userdata=_FILE,
        vendordata=_FILE,
    )


def hardware_options(spec: str) -> Callable[[F], F]:
    """Size, placement and power options of a new VM."""
    return spec_options(
        spec,
        cpus={"type": int},
        memory={"metavar": "SIZE"},
        disk={"metavar": "SIZE"},
        datastore={},
        network={"metavar": "PORTGROUP"},
        no_power_on=_FLAG,
        wait_ip=_FLAG,
        wait_ip_timeout={"type": Seconds(min=1), "metavar": "SECONDS"},
    )


def read_guest_files_of(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with each ``--ssh-key`` resolved to key lines and the documents' files read
    (InvalidInputError on the first problem): the spec's fields, ready for it."""
    keys, userdata, vendordata = read_guest_files(params["ssh_key"], params["userdata"], params["vendordata"])
    return {**params, "ssh_key": keys, "userdata": userdata, "vendordata": vendordata}
