"""NicConfig validation, CLI-style parsing and the netplan v2 rendering."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any

import pytest

from ceso.cloudinit import NicConfig, build_network_config, parse_nic
from ceso.errors import InvalidInputError

MAC = "00:50:56:aa:bb:cc"


def _all_keys(node: Any) -> set[str]:
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            keys.add(str(key))
            keys |= _all_keys(value)
    elif isinstance(node, list):
        for item in node:
            keys |= _all_keys(item)
    return keys


def test_static_ipv4_renders_routes_not_gateway4() -> None:
    nic = parse_nic(MAC, ip="192.0.2.10/24", gateway="192.0.2.1", dns="1.1.1.1", search="example.com")
    net = build_network_config([nic])
    assert net["version"] == 2
    entry = net["ethernets"]["nic0"]
    assert entry["match"] == {"macaddress": MAC}
    assert entry["set-name"] == "eth0"
    assert entry["dhcp4"] is False
    assert entry["addresses"] == ["192.0.2.10/24"]
    assert entry["routes"] == [{"to": "0.0.0.0/0", "via": "192.0.2.1"}]
    assert entry["nameservers"] == {"addresses": ["1.1.1.1"], "search": ["example.com"]}
    assert not {"gateway4", "gateway6"} & _all_keys(net)


def test_ipv6_only() -> None:
    nic = parse_nic(MAC, ip6="2001:db8::10/64", gateway6="2001:db8::1", dns="2606:4700::1111")
    entry = build_network_config([nic])["ethernets"]["nic0"]
    assert entry["dhcp4"] is False and entry["dhcp6"] is False
    assert entry["addresses"] == ["2001:db8::10/64"]
    assert entry["routes"] == [{"to": "::/0", "via": "2001:db8::1"}]
    assert entry["nameservers"] == {"addresses": ["2606:4700::1111"]}


def test_dual_stack() -> None:
    nic = parse_nic(
        MAC,
        ip="192.0.2.10/24",
        gateway="192.0.2.1",
        ip6="2001:db8::10/64",
        gateway6="2001:db8::1",
        dns="1.1.1.1,2606:4700::1111",
    )
    entry = build_network_config([nic])["ethernets"]["nic0"]
    assert entry["addresses"] == ["192.0.2.10/24", "2001:db8::10/64"]
    assert entry["routes"] == [{"to": "0.0.0.0/0", "via": "192.0.2.1"}, {"to": "::/0", "via": "2001:db8::1"}]
    assert entry["nameservers"]["addresses"] == ["1.1.1.1", "2606:4700::1111"]


def test_no_address_means_dhcp4() -> None:
    nic = parse_nic(MAC)
    assert nic.dhcp4 and not nic.dhcp6 and nic.ipv4 is None and nic.ipv6 is None
    entry = build_network_config([nic])["ethernets"]["nic0"]
    assert entry["dhcp4"] is True and "addresses" not in entry and "routes" not in entry


def test_dhcp_keywords_and_static_ipv6_with_dhcp4() -> None:
    nic = parse_nic(MAC, ip="dhcp", ip6="2001:db8::10/64")
    assert nic.dhcp4 and nic.ipv6 == IPv6Interface("2001:db8::10/64")
    both = parse_nic(MAC, ip="DHCP", ip6="dhcp")
    assert both.dhcp4 and both.dhcp6
    only6 = parse_nic(MAC, ip6="dhcp")
    assert only6.dhcp6 and not only6.dhcp4


def test_ipv6_link_local_gateway_is_accepted() -> None:
    nic = parse_nic(MAC, ip6="2001:db8::10/64", gateway6="fe80::1")
    assert nic.gateway6 == IPv6Address("fe80::1")


def test_multiple_nics_keep_order_and_match_by_mac() -> None:
    nics = [
        parse_nic("00:50:56:00:00:01", ip="192.0.2.10/24", gateway="192.0.2.1"),
        parse_nic("00-50-56-00-00-02", ip="198.51.100.10/24"),
        parse_nic("00:50:56:00:00:03", name="backup0"),
    ]
    ethernets = build_network_config(nics)["ethernets"]
    assert list(ethernets) == ["nic0", "nic1", "nic2"]
    assert [e["match"]["macaddress"] for e in ethernets.values()] == [
        "00:50:56:00:00:01",
        "00:50:56:00:00:02",
        "00:50:56:00:00:03",
    ]
    assert [e["set-name"] for e in ethernets.values()] == ["eth0", "eth1", "backup0"]
    assert "routes" not in ethernets["nic1"]


def test_typed_construction_normalizes() -> None:
    nic = NicConfig(
        mac="00:50:56:AA:BB:CC",
        ipv4=IPv4Interface("192.0.2.10/24"),
        gateway4=IPv4Address("192.0.2.1"),
        dns=(IPv4Address("1.1.1.1"), IPv4Address("1.1.1.1")),
        search=("Example.COM", "example.com"),
    )
    assert nic.mac == MAC and nic.dns == (IPv4Address("1.1.1.1"),) and nic.search == ("example.com",)


def test_dns_lists_split_and_repeat() -> None:
    nic = parse_nic(MAC, dns=["1.1.1.1, 8.8.8.8", "2606:4700::1111"], search="a.example,b.example")
    assert [str(s) for s in nic.dns] == ["1.1.1.1", "8.8.8.8", "2606:4700::1111"]
    assert nic.search == ("a.example", "b.example")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"ip": "192.0.2.300/24"}, "'192.0.2.300' is not an IP address"),
        ({"ip": "192.0.2.10"}, "needs a prefix length"),
        ({"ip": "192.0.2.10/33"}, "prefix /33 is out of range 1-32"),
        ({"ip": "192.0.2.10/0"}, "prefix /0 is out of range 1-32"),
        ({"ip": "192.0.2.10/abc"}, "not a valid prefix or netmask"),
        ({"ip6": "2001:db8::10/129"}, "prefix /129 is out of range 1-128"),
        ({"ip6": "2001:db8::zz/64"}, "is not an IP address"),
        ({"ip": "2001:db8::10/64"}, "use --ip6"),
        ({"ip6": "192.0.2.10/24"}, "use --ip for it"),
        ({"ip": "192.0.2.0/24"}, "network address of 192.0.2.0/24"),
        ({"ip": "192.0.2.255/24"}, "broadcast address of 192.0.2.0/24"),
        ({"ip": "127.0.0.5/8"}, "not a usable host address"),
        ({"ip6": "2001:db8::/64"}, "network address"),
        ({"ip": "192.0.2.10/24", "gateway": "198.51.100.1"}, "outside the subnet 192.0.2.0/24"),
        ({"ip": "192.0.2.10/24", "gateway": "192.0.2.255"}, "broadcast address"),
        ({"ip": "192.0.2.10/24", "gateway": "192.0.2.10"}, "own address"),
        ({"ip": "192.0.2.10/24", "gateway": "2001:db8::1"}, "IPv4 address is required"),
        ({"ip": "192.0.2.10/32", "gateway": "192.0.2.1"}, "outside the subnet"),
        ({"ip6": "2001:db8::10/64", "gateway6": "2001:db9::1"}, "outside the subnet 2001:db8::/64"),
        ({"gateway": "192.0.2.1"}, "--gateway '192.0.2.1' needs a static --ip"),
        ({"ip": "dhcp", "gateway": "192.0.2.1"}, "needs a static --ip"),
        ({"gateway6": "2001:db8::1"}, "needs a static --ip6"),
        ({"ip6": "2001:db8::10/64", "dhcp6": True}, "exclusive"),
        ({"dns": "1.1.1"}, "--dns '1.1.1' is not an IP address"),
        ({"dns": "0.0.0.0"}, "not a usable address"),
        ({"search": "bad_domain.example"}, "search domain 'bad_domain.example'"),
        ({"search": "-x.example"}, "not a valid RFC 1123 name"),
        ({"name": "a/b"}, "NIC name 'a/b'"),
    ],
)
def test_parse_nic_rejects(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_nic(MAC, **kwargs)
    assert fragment in info.value.message
    assert info.value.exit_code == 2


def test_ipv4_31_and_32_allow_edge_addresses() -> None:
    assert parse_nic(MAC, ip="192.0.2.0/31", gateway="192.0.2.1").gateway4 == IPv4Address("192.0.2.1")
    assert parse_nic(MAC, ip="192.0.2.7/32").ipv4 == IPv4Interface("192.0.2.7/32")
    assert parse_nic(MAC, ip="192.0.2.10/255.255.255.0").ipv4 == IPv4Interface("192.0.2.10/24")


@pytest.mark.parametrize(
    "mac",
    [
        "00:50:56:aa:bb",
        "00:50:56:aa:bb:cc:dd",
        "00:50:56:aa:bb:gg",
        "0050.56aa.bbcc",
        "00:50-56:aa:bb:cc",
        "01:00:5e:00:00:01",
        "ff:ff:ff:ff:ff:ff",
        "00:00:00:00:00:00",
        "",
    ],
)
def test_bad_mac(mac: str) -> None:
    with pytest.raises(InvalidInputError, match="mac"):
        parse_nic(mac)


def test_typed_fields_reject_wrong_types() -> None:
    with pytest.raises(InvalidInputError, match="ipv4 must be an IPv4Interface"):
        NicConfig(mac=MAC, ipv4="192.0.2.10/24")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="dns must be a tuple"):
        NicConfig(mac=MAC, dhcp4=True, dns="1.1.1.1")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="no address"):
        NicConfig(mac=MAC)
    with pytest.raises(InvalidInputError, match="exclusive"):
        NicConfig(mac=MAC, ipv4=IPv4Interface("192.0.2.10/24"), dhcp4=True)


def test_nic_set_rules() -> None:
    a = parse_nic("00:50:56:00:00:01", ip="192.0.2.10/24", gateway="192.0.2.1")
    with pytest.raises(InvalidInputError, match="more than one NIC"):
        build_network_config([a, parse_nic("00:50:56:00:00:01")])
    with pytest.raises(InvalidInputError, match="only one NIC may have one"):
        build_network_config(
            [a, parse_nic("00:50:56:00:00:02", ip="198.51.100.10/24", gateway="198.51.100.1")]
        )
    with pytest.raises(InvalidInputError, match="NIC name 'eth1' is given for more than one NIC"):
        build_network_config([a, parse_nic("00:50:56:00:00:02"), parse_nic("00:50:56:00:00:03", name="eth1")])
    with pytest.raises(InvalidInputError, match="must be a NicConfig"):
        build_network_config(["00:50:56:00:00:01"])  # type: ignore[list-item]
