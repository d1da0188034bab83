"""Per-NIC network settings and their netplan v2 rendering.

The rendered mapping goes into the metadata under ``network`` (cloud-init's
VMware datasource reads it there and hands a v2 mapping to netplan unchanged on
Ubuntu). Each NIC is matched by MAC, never by a guessed kernel name: a clone
gets new MACs and may see its vNICs enumerate in another order. Default gateways
are written as ``routes`` because ``gateway4`` and ``gateway6`` are deprecated in
netplan and warn on every ``netplan apply``. The IPv4 destination is spelled
``0.0.0.0/0`` rather than netplan's newer ``default`` keyword: netplan before
0.103 (Ubuntu 20.04 images older than 20.04.4) fails ``netplan generate`` on
``default`` and the guest loses its network (cloud-init issue #4133), and
cloud-init's own v2 parser, used with non-netplan renderers, rejects it (#3988).
Both spellings mean the same route to netplan 0.103 and later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any

from ceso.cloudinit.validate import validate_domain, validate_interface_name, validate_mac
from ceso.errors import InvalidInputError

__all__ = [
    "DEFAULT_ROUTE4",
    "DEFAULT_ROUTE6",
    "IPAddress",
    "NicConfig",
    "build_network_config",
    "check_host_interface",
]

IPAddress = IPv4Address | IPv6Address

DEFAULT_ROUTE4 = "0.0.0.0/0"
DEFAULT_ROUTE6 = "::/0"


def check_host_interface(iface: IPv4Interface | IPv6Interface, field: str) -> None:
    """Refuse an address/prefix no host can use; raise InvalidInputError naming ``field``.

    Prefix /0 is refused. The address must not be unspecified, loopback or multicast,
    and below /31 (IPv4) or /127 (IPv6, RFC 6164) it must not be the network address
    (IPv6: the subnet-router anycast address) nor the IPv4 broadcast address.
    """
    ip, net = iface.ip, iface.network
    limit = 32 if iface.version == 4 else 128
    if net.prefixlen == 0:
        raise InvalidInputError(f"{field} {iface} has prefix /0; the prefix must be 1-{limit}")
    if ip.is_unspecified or ip.is_loopback or ip.is_multicast:
        raise InvalidInputError(
            f"{field} {iface} is not a usable host address (unspecified, loopback or multicast)"
        )
    if isinstance(iface, IPv4Interface) and ip == IPv4Address("255.255.255.255"):
        raise InvalidInputError(f"{field} {iface} is the limited broadcast address")
    if net.prefixlen < limit - 1:
        if ip == net.network_address:
            raise InvalidInputError(f"{field} {iface} is the network address of {net}; pick a host address")
        if isinstance(iface, IPv4Interface) and ip == net.broadcast_address:
            raise InvalidInputError(f"{field} {iface} is the broadcast address of {net}; pick a host address")


def _check_gateway(
    gateway: IPv4Address | IPv6Address,
    iface: IPv4Interface | IPv6Interface | None,
    field: str,
    addr_field: str,
) -> None:
    if iface is None:
        raise InvalidInputError(f"{field} {gateway} needs a static {addr_field} address on the same NIC")
    if gateway.is_unspecified or gateway.is_multicast or gateway.is_loopback:
        raise InvalidInputError(f"{field} {gateway} is not a usable gateway address")
    if gateway == iface.ip:
        raise InvalidInputError(f"{field} {gateway} is the NIC's own address")
    # IPv6 routers commonly advertise a link-local next hop; it is on-link by definition.
    if isinstance(gateway, IPv6Address) and gateway.is_link_local:
        return
    net = iface.network
    if gateway not in net:
        raise InvalidInputError(f"{field} {gateway} is outside the subnet {net} of {addr_field} {iface}")
    limit = 32 if net.version == 4 else 128
    if net.prefixlen < limit - 1 and gateway == net.network_address:
        raise InvalidInputError(f"{field} {gateway} is the network address of {net}")
    if isinstance(gateway, IPv4Address) and net.prefixlen < 31 and gateway == net.broadcast_address:
        raise InvalidInputError(f"{field} {gateway} is the broadcast address of {net}")


def _expect(value: object, kinds: tuple[type, ...], field: str, what: str) -> None:
    # Runtime guard for callers that bypass the typed API (JSON-RPC payloads, tests).
    if value is not None and not isinstance(value, kinds):
        raise InvalidInputError(f"{field} must be {what}, got {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class NicConfig:
    """The guest-side network settings of one vNIC, validated on construction.

    ``mac`` is normalized to lowercase ``aa:bb:cc:dd:ee:ff``. A family is either
    static (``ipv4``/``ipv6`` with an optional gateway in its subnet) or DHCP, not
    both; a NIC needs at least one of the four. ``dns`` and ``search`` are
    deduplicated in order. ``name`` is the interface name netplan sets
    (``set-name``); None means ``eth<index>`` at render time. Raises
    InvalidInputError naming the field and value on any violation.
    """

    mac: str
    ipv4: IPv4Interface | None = None
    gateway4: IPv4Address | None = None
    ipv6: IPv6Interface | None = None
    gateway6: IPv6Address | None = None
    dhcp4: bool = False
    dhcp6: bool = False
    dns: tuple[IPAddress, ...] = ()
    search: tuple[str, ...] = ()
    name: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", validate_mac(str(self.mac)))  # frozen: normalize once, here
        self._check_addresses()
        if self.ipv4 is None and self.ipv6 is None and not (self.dhcp4 or self.dhcp6):
            raise InvalidInputError(f"NIC {self.mac} has no address: give ipv4, ipv6, dhcp4 or dhcp6")
        self._normalize_resolver()
        if self.name is not None:
            validate_interface_name(self.name, "NIC name")

    def _check_addresses(self) -> None:
        _expect(self.ipv4, (IPv4Interface,), "ipv4", "an IPv4Interface like 192.0.2.10/24")
        _expect(self.gateway4, (IPv4Address,), "gateway4", "an IPv4Address")
        _expect(self.ipv6, (IPv6Interface,), "ipv6", "an IPv6Interface like 2001:db8::10/64")
        _expect(self.gateway6, (IPv6Address,), "gateway6", "an IPv6Address")
        for iface, dhcp, family in ((self.ipv4, self.dhcp4, "4"), (self.ipv6, self.dhcp6, "6")):
            if iface is not None:
                check_host_interface(iface, f"ipv{family}")
                if dhcp:
                    raise InvalidInputError(
                        f"ipv{family} {iface} and dhcp{family} are exclusive; choose static or DHCP"
                    )
        if self.gateway4 is not None:
            _check_gateway(self.gateway4, self.ipv4, "gateway4", "ipv4")
        if self.gateway6 is not None:
            _check_gateway(self.gateway6, self.ipv6, "gateway6", "ipv6")

    def _normalize_resolver(self) -> None:
        for field in ("dns", "search"):
            if isinstance(getattr(self, field), str):  # a lone string would iterate as characters
                raise InvalidInputError(f"{field} must be a tuple, not a single string")
        dns: list[IPAddress] = []
        for server in self.dns:
            _expect(server, (IPv4Address, IPv6Address), "dns", "an IP address")
            if server.is_unspecified or server.is_multicast:
                raise InvalidInputError(f"dns server {server} is not a usable address")
            if server not in dns:
                dns.append(server)
        search: list[str] = []
        for domain in self.search:
            checked = validate_domain(str(domain))
            if checked not in search:
                search.append(checked)
        object.__setattr__(self, "dns", tuple(dns))
        object.__setattr__(self, "search", tuple(search))

    def to_netplan(self, index: int) -> dict[str, Any]:
        """This NIC's netplan v2 ``ethernets`` entry (without its id)."""
        entry: dict[str, Any] = {
            "match": {"macaddress": self.mac},
            "set-name": self.name or f"eth{index}",
            "dhcp4": self.dhcp4,
            "dhcp6": self.dhcp6,
        }
        addresses = [iface.with_prefixlen for iface in (self.ipv4, self.ipv6) if iface is not None]
        if addresses:
            entry["addresses"] = addresses
        routes = []
        if self.gateway4 is not None:
            routes.append({"to": DEFAULT_ROUTE4, "via": str(self.gateway4)})
        if self.gateway6 is not None:
            routes.append({"to": DEFAULT_ROUTE6, "via": str(self.gateway6)})
        if routes:
            entry["routes"] = routes
        if self.dns or self.search:
            nameservers: dict[str, list[str]] = {}
            if self.dns:
                nameservers["addresses"] = [str(server) for server in self.dns]
            if self.search:
                nameservers["search"] = list(self.search)
            entry["nameservers"] = nameservers
        return entry


def build_network_config(nics: Sequence[NicConfig]) -> dict[str, Any]:
    """Render NICs as a netplan v2 mapping: ``{"version": 2, "ethernets": {"nic0": ...}}``.

    Ids are ``nic<index>`` in the given order, so the same spec always renders the
    same document. Refuses (InvalidInputError) duplicate MACs, duplicate interface
    names, and more than one NIC with a default gateway per family: two default
    routes at the same metric make the guest's egress path a coin toss.
    """
    ethernets: dict[str, Any] = {}
    macs: set[str] = set()
    names: set[str] = set()
    gateways: dict[int, str] = {}
    for index, nic in enumerate(nics):
        if not isinstance(nic, NicConfig):
            raise InvalidInputError(f"nics[{index}] must be a NicConfig, got {type(nic).__name__}")
        entry = nic.to_netplan(index)
        if nic.mac in macs:
            raise InvalidInputError(f"mac {nic.mac} is given for more than one NIC")
        if entry["set-name"] in names:
            raise InvalidInputError(f"NIC name {entry['set-name']!r} is given for more than one NIC")
        for family, gateway in ((4, nic.gateway4), (6, nic.gateway6)):
            if gateway is not None:
                if family in gateways:
                    raise InvalidInputError(
                        f"gateway{family} {gateway} on NIC {nic.mac}: NIC {gateways[family]} already has the "
                        f"IPv{family} default gateway; only one NIC may have one"
                    )
                gateways[family] = nic.mac
        macs.add(nic.mac)
        names.add(entry["set-name"])
        ethernets[f"nic{index}"] = entry
    return {"version": 2, "ethernets": ethernets}
