"""Build a :class:`NicConfig` from CLI-style strings (``--ip``, ``--gateway``, ...).

This is the one place that turns operator text into typed addresses, so the
CLI and cesod report the same messages, named after the options the operator
typed. No ``--ip`` and no ``--ip6`` means DHCPv4, the common case for a VM
dropped on a lab network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface

from ceso.cloudinit.network import IPAddress, NicConfig
from ceso.errors import InvalidInputError

__all__ = ["parse_address", "parse_interface", "parse_nic", "split_list"]

DHCP = "dhcp"


def split_list(values: str | Sequence[str] | None) -> list[str]:
    """Flatten ``"a,b"`` or ``["a,b", "c"]`` (a repeated option) into ``["a", "b", "c"]``."""
    if values is None:
        return []
    items = [values] if isinstance(values, str) else list(values)
    return [part.strip() for item in items for part in item.split(",") if part.strip()]


def parse_interface(text: str, version: int, option: str) -> IPv4Interface | IPv6Interface:
    """Parse ``address/prefix`` of the given IP version; raise InvalidInputError naming ``option``.

    The prefix is required (a missing one is never guessed: /24 on a /22 network
    silently cuts the VM off half its peers). IPv4 also accepts a dotted netmask.
    """
    example = "192.0.2.10/24" if version == 4 else "2001:db8::10/64"
    limit = 32 if version == 4 else 128
    address, slash, prefix = text.strip().partition("/")
    if not slash or not prefix:
        raise InvalidInputError(f"{option} {text!r} needs a prefix length, like {example}")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise InvalidInputError(
            f"{option} {text!r}: {address!r} is not an IP address (expected e.g. {example})"
        ) from exc
    if ip.version != version:
        other = "--ip6" if version == 4 else "--ip"
        raise InvalidInputError(f"{option} {text!r} is an IPv{ip.version} address; use {other} for it")
    if prefix.isdigit():
        if not 1 <= int(prefix) <= limit:
            raise InvalidInputError(f"{option} {text!r}: prefix /{prefix} is out of range 1-{limit}")
        prefix = str(int(prefix))
    try:
        iface = ipaddress.ip_interface(f"{address}/{prefix}")
    except ValueError as exc:
        raise InvalidInputError(f"{option} {text!r}: {prefix!r} is not a valid prefix or netmask") from exc
    if iface.network.prefixlen == 0:
        raise InvalidInputError(f"{option} {text!r}: prefix /0 is out of range 1-{limit}")
    return iface


def parse_address(text: str, option: str, version: int | None = None) -> IPAddress:
    """Parse a bare IP address (no prefix); ``version`` restricts the family."""
    try:
        ip = ipaddress.ip_address(text.strip())
    except ValueError as exc:
        raise InvalidInputError(f"{option} {text!r} is not an IP address") from exc
    if version is not None and ip.version != version:
        raise InvalidInputError(f"{option} {text!r} is IPv{ip.version}; an IPv{version} address is required")
    return ip


def parse_nic(
    mac: str,
    *,
    ip: str | None = None,
    gateway: str | None = None,
    ip6: str | None = None,
    gateway6: str | None = None,
    dns: str | Sequence[str] | None = None,
    search: str | Sequence[str] | None = None,
    dhcp6: bool = False,
    name: str | None = None,
) -> NicConfig:
    """Build a validated NicConfig from option strings.

    ``ip``/``ip6`` are ``address/prefix`` or the word ``dhcp``; without either,
    the NIC uses DHCPv4. ``dns`` and ``search`` are comma-separated, possibly
    repeated. Raises InvalidInputError naming the option and value: a malformed
    address or prefix, a gateway without a static address or outside its subnet,
    a bad MAC, DNS server or search domain.
    """
    ipv4: IPv4Interface | None = None
    ipv6: IPv6Interface | None = None
    dhcp4 = False
    if ip is not None and ip.strip().lower() == DHCP:
        dhcp4 = True
    elif ip is not None:
        parsed4 = parse_interface(ip, 4, "--ip")
        assert isinstance(parsed4, IPv4Interface)
        ipv4 = parsed4
    if ip6 is not None and ip6.strip().lower() == DHCP:
        dhcp6 = True
    elif ip6 is not None:
        parsed6 = parse_interface(ip6, 6, "--ip6")
        assert isinstance(parsed6, IPv6Interface)
        ipv6 = parsed6
        if dhcp6:
            raise InvalidInputError(f"--ip6 {ip6!r} and --dhcp6 are exclusive; choose static or DHCP")
    if ip is None and ip6 is None:
        dhcp4 = True
    gw4: IPv4Address | None = None
    gw6: IPv6Address | None = None
    if gateway is not None:
        if ipv4 is None:
            raise InvalidInputError(f"--gateway {gateway!r} needs a static --ip address")
        parsed_gw4 = parse_address(gateway, "--gateway", 4)
        assert isinstance(parsed_gw4, IPv4Address)
        gw4 = parsed_gw4
    if gateway6 is not None:
        if ipv6 is None:
            raise InvalidInputError(f"--gateway6 {gateway6!r} needs a static --ip6 address")
        parsed_gw6 = parse_address(gateway6, "--gateway6", 6)
        assert isinstance(parsed_gw6, IPv6Address)
        gw6 = parsed_gw6
    servers = tuple(parse_address(item, "--dns") for item in split_list(dns))
    return NicConfig(
        mac=mac,
        ipv4=ipv4,
        gateway4=gw4,
        ipv6=ipv6,
        gateway6=gw6,
        dhcp4=dhcp4,
        dhcp6=dhcp6,
        dns=servers,
        search=tuple(split_list(search)),
        name=name,
    )
