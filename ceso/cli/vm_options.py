"""Click options shared by ``vm create``, ``vm clone`` and ``cloudinit render``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from ceso.cli.options import Seconds

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["guest_options", "guest_options_from", "hardware_options", "hardware_options_from"]


def guest_options(fn: F) -> F:
    """Identity, network and cloud-init options of a new guest."""
    options = [
        click.option(
            "--vendordata",
            "vendordata_file",
            type=click.Path(dir_okay=False),
            help="cloud-init vendordata file, passed through.",
        ),
        click.option(
            "--userdata",
            "userdata_file",
            type=click.Path(dir_okay=False),
            help="Extra #cloud-config merged into ceso's userdata (it cannot remove the SSH keys).",
        ),
        click.option(
            "--package", "packages", multiple=True, help="Package to install on first boot (repeatable)."
        ),
        click.option(
            "--user", default="ubuntu", show_default=True, help="The login user cloud-init creates."
        ),
        click.option(
            "--ssh-key",
            "ssh_keys",
            multiple=True,
            metavar="FILE|KEY",
            help="Authorized SSH public key, literal or a file of keys (repeatable).",
        ),
        click.option("--search", multiple=True, help="DNS search domains, comma-separated or repeated."),
        click.option("--dns", multiple=True, help="DNS servers (IPv4/IPv6), comma-separated or repeated."),
        click.option(
            "--gateway6", help="IPv6 default gateway (a route, inside --ip6's subnet or link-local)."
        ),
        click.option(
            "--ip6", metavar="CIDR|dhcp", help="IPv6 address of the first NIC, e.g. 2001:db8::10/64."
        ),
        click.option("--gateway", help="IPv4 default gateway (a route, inside --ip's subnet)."),
        click.option(
            "--ip",
            metavar="CIDR|dhcp",
            help="IPv4 address of the first NIC, e.g. 192.0.2.10/24 (default: DHCP).",
        ),
        click.option(
            "--hostname", help="Guest host name (default: the VM name, if it is a valid host name)."
        ),
    ]
    for option in options:
        fn = option(fn)
    return fn


def hardware_options(fn: F) -> F:
    """Size, placement and power options of a new VM."""
    options = [
        click.option(
            "--wait-ip-timeout",
            type=Seconds(min=1),
            default=600,
            show_default=True,
            metavar="SECONDS",
        ),
        click.option("--wait-ip", is_flag=True, help="Wait until VMware Tools report the guest's address."),
        click.option("--no-power-on", is_flag=True, help="Leave the new VM powered off."),
        click.option(
            "--network", metavar="PORTGROUP", help="Port group of the first NIC (default: the source's)."
        ),
        click.option("--datastore", help="Datastore for the new VM (default: the source's)."),
        click.option("--disk", metavar="SIZE", help="Grow the first disk to SIZE, e.g. 40G (never shrinks)."),
        click.option("--memory", metavar="SIZE", help="Memory, e.g. 4G or 4096M (default: the source's)."),
        click.option("--cpus", type=int, help="Virtual CPUs (default: the source's)."),
    ]
    for option in options:
        fn = option(fn)
    return fn


def guest_options_from(kw: dict[str, Any]) -> Any:
    from ceso.cloudinit.nicargs import split_list
    from ceso.vm.requests import GuestOptions

    return GuestOptions(
        hostname=kw.pop("hostname"),
        ip=kw.pop("ip"),
        gateway=kw.pop("gateway"),
        ip6=kw.pop("ip6"),
        gateway6=kw.pop("gateway6"),
        dns=tuple(split_list(kw.pop("dns"))),
        search=tuple(split_list(kw.pop("search"))),
        user=kw.pop("user"),
        ssh_keys=tuple(kw.pop("ssh_keys")),
        packages=tuple(kw.pop("packages")),
        userdata_file=kw.pop("userdata_file"),
        vendordata_file=kw.pop("vendordata_file"),
    )


def hardware_options_from(kw: dict[str, Any]) -> Any:
    from ceso.vm.requests import HardwareOptions

    return HardwareOptions(
        cpus=kw.pop("cpus"),
        memory=kw.pop("memory"),
        disk=kw.pop("disk"),
        datastore=kw.pop("datastore"),
        network=kw.pop("network"),
        power_on=not kw.pop("no_power_on"),
        wait_ip=kw.pop("wait_ip"),
        wait_ip_timeout_s=kw.pop("wait_ip_timeout"),
    )
