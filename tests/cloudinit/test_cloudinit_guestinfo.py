"""build_guestinfo -> decode round trips, fresh instance ids, the 64 KiB limit, vendordata."""

from __future__ import annotations

import base64
import gzip
import os
import secrets
import struct
from typing import Any

import pytest
import yaml

from ceso.cloudinit import (
    GUESTINFO_MAX_BYTES,
    CloudInitSpec,
    build_guestinfo,
    decode_guestinfo,
    encode_document,
    parse_nic,
    render_documents,
)
from ceso.errors import InvalidInputError


def _key(comment: str = "me@host") -> str:
    blob = b"".join(struct.pack(">I", len(f)) + f for f in (b"ssh-ed25519", os.urandom(32)))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


KEY = _key()
MAC = "00:50:56:12:34:56"


def _spec(**overrides: Any) -> CloudInitSpec:
    values: dict[str, Any] = {
        "hostname": "web01",
        "nics": (
            parse_nic(MAC, ip="192.0.2.10/24", gateway="192.0.2.1", dns="1.1.1.1", search="example.com"),
        ),
        "ssh_keys": (KEY,),
    }
    values.update(overrides)
    return CloudInitSpec(**values)


def _decode_yaml(extra_config: dict[str, str], document: str) -> Any:
    """Decode by hand, independent of decode_guestinfo: base64, gunzip, YAML."""
    assert extra_config[f"guestinfo.{document}.encoding"] == "gzip+base64"
    text = gzip.decompress(base64.b64decode(extra_config[f"guestinfo.{document}"])).decode()
    return text, yaml.safe_load(text)


def _walk_keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return {str(k) for k in node} | set().union(*(_walk_keys(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_walk_keys(v) for v in node))
    return set()


def test_keys_and_encodings() -> None:
    extra_config = build_guestinfo(_spec())
    assert set(extra_config) == {
        "guestinfo.metadata",
        "guestinfo.metadata.encoding",
        "guestinfo.userdata",
        "guestinfo.userdata.encoding",
    }
    assert all(isinstance(value, str) for value in extra_config.values())


def test_metadata_round_trip() -> None:
    _, metadata = _decode_yaml(build_guestinfo(_spec()), "metadata")
    assert metadata["instance-id"].startswith("i-") and len(metadata["instance-id"]) == 34
    assert metadata["local-hostname"] == "web01"
    network = metadata["network"]
    assert next(iter(network)) == "version" and network["version"] == 2  # netplan v2, as cloud-init expects
    nic0 = network["ethernets"]["nic0"]
    assert nic0["match"] == {"macaddress": MAC}
    assert nic0["set-name"] == "eth0"
    assert nic0["addresses"] == ["192.0.2.10/24"]
    assert nic0["routes"] == [{"to": "0.0.0.0/0", "via": "192.0.2.1"}]
    assert nic0["nameservers"] == {"addresses": ["1.1.1.1"], "search": ["example.com"]}
    assert not {"gateway4", "gateway6"} & _walk_keys(metadata)


def test_userdata_round_trip() -> None:
    text, userdata = _decode_yaml(build_guestinfo(_spec()), "userdata")
    assert text.splitlines()[0] == "#cloud-config"
    assert userdata["users"][0]["ssh_authorized_keys"] == [KEY]


def test_dual_stack_multi_nic_round_trip() -> None:
    nics = (
        parse_nic(
            "00:50:56:00:00:01",
            ip="192.0.2.10/24",
            gateway="192.0.2.1",
            ip6="2001:db8::10/64",
            gateway6="2001:db8::1",
            dns="2606:4700::1111",
        ),
        parse_nic("00:50:56:00:00:02"),
        parse_nic("00:50:56:00:00:03", ip6="2001:db8:1::5/64"),
    )
    _, metadata = _decode_yaml(build_guestinfo(_spec(nics=nics)), "metadata")
    ethernets = metadata["network"]["ethernets"]
    assert ethernets["nic0"]["routes"] == [
        {"to": "0.0.0.0/0", "via": "192.0.2.1"},
        {"to": "::/0", "via": "2001:db8::1"},
    ]
    assert ethernets["nic1"]["dhcp4"] is True
    assert ethernets["nic2"]["addresses"] == ["2001:db8:1::5/64"] and ethernets["nic2"]["dhcp4"] is False


def test_fresh_instance_id_each_build_unless_given() -> None:
    spec = _spec()
    ids = {_decode_yaml(build_guestinfo(spec), "metadata")[1]["instance-id"] for _ in range(5)}
    assert len(ids) == 5
    fixed = _spec(instance_id="i-restore-0001")
    first, second = build_guestinfo(fixed), build_guestinfo(fixed)
    assert first == second  # deterministic: gzip mtime 0, ordered YAML
    assert _decode_yaml(first, "metadata")[1]["instance-id"] == "i-restore-0001"


def test_no_nics_leaves_network_to_cloud_init_fallback() -> None:
    _, metadata = _decode_yaml(build_guestinfo(_spec(nics=())), "metadata")
    assert "network" not in metadata


def test_decode_guestinfo_and_render_documents() -> None:
    spec = _spec(instance_id="i-1")
    documents = decode_guestinfo(build_guestinfo(spec))
    assert list(documents) == ["metadata", "userdata"]
    assert render_documents(spec) == documents
    assert documents["metadata"].startswith(
        "instance-id: i-1\nlocal-hostname: web01\nnetwork:\n  version: 2\n"
    )
    plain = {
        "guestinfo.userdata": "#cloud-config\n{}\n",
        "guestinfo.metadata": base64.b64encode(b"a: 1").decode(),
        "guestinfo.metadata.encoding": "base64",
        "guestinfo.vendordata": "   ",
        "other": "x",
    }
    assert decode_guestinfo(plain) == {"metadata": "a: 1", "userdata": "#cloud-config\n{}\n"}


@pytest.mark.parametrize(
    ("extra_config", "fragment"),
    [
        ({"guestinfo.metadata": "***", "guestinfo.metadata.encoding": "base64"}, "not valid base64"),
        (
            {
                "guestinfo.metadata": base64.b64encode(b"x").decode(),
                "guestinfo.metadata.encoding": "gzip+base64",
            },
            "not a complete gzip stream",
        ),
        (
            {
                "guestinfo.metadata": base64.b64encode(b"plain text, not gzip").decode(),
                "guestinfo.metadata.encoding": "gz+b64",
            },
            r"not valid gz\+b64 data",
        ),
        (
            {"guestinfo.metadata": "eA==", "guestinfo.metadata.encoding": "rot13"},
            "encoding 'rot13' is unknown",
        ),
    ],
)
def test_decode_errors(extra_config: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        decode_guestinfo(extra_config)


def test_oversized_userdata_is_refused_with_document_and_size() -> None:
    noise = secrets.token_urlsafe(70_000)  # random text: gzip cannot bring it under 64 KiB
    extra = f"write_files:\n  - path: /etc/noise\n    content: {noise}\n"
    spec = _spec(extra_userdata=extra)  # valid input; only the encoded size is wrong
    with pytest.raises(InvalidInputError) as info:
        build_guestinfo(spec)
    message = info.value.message
    assert "guestinfo.userdata is " in message and "65536" in message
    encoded = info.value.details["encoded_bytes"]
    assert encoded > GUESTINFO_MAX_BYTES and str(encoded) in message
    with pytest.raises(InvalidInputError, match=r"guestinfo\.userdata"):
        render_documents(spec)


def test_encode_limit_is_on_encoded_bytes() -> None:
    small = "a" * 200_000  # compresses far below the limit: allowed
    assert len(encode_document("userdata", small)) < GUESTINFO_MAX_BYTES
    with pytest.raises(InvalidInputError, match=r"guestinfo\.vendordata is"):
        encode_document("vendordata", secrets.token_hex(60_000))


def test_vendordata_passthrough_and_clear() -> None:
    vendordata = "#cloud-config\nntp:\n  enabled: true\n"
    extra_config = build_guestinfo(_spec(vendordata=vendordata))
    assert extra_config["guestinfo.vendordata.encoding"] == "gzip+base64"
    assert decode_guestinfo(extra_config)["vendordata"] == vendordata
    script = "#!/bin/sh\necho vendor\n"
    assert decode_guestinfo(build_guestinfo(_spec(vendordata=script)))["vendordata"] == script
    cleared = build_guestinfo(_spec(), clear_absent=True)
    assert cleared["guestinfo.vendordata"] == "" and cleared["guestinfo.vendordata.encoding"] == ""
    assert "vendordata" not in decode_guestinfo(cleared)


@pytest.mark.parametrize(
    ("vendordata", "fragment"),
    [
        ("#cloud-config\nnetwork:\n  version: 2\n", "must not hold 'network'"),
        ("#cloud-config\n- a\n", "not a YAML mapping"),
        ("#cloud-config\na: [\n", "not valid YAML"),
        ("  ", "vendordata is empty"),
    ],
)
def test_bad_vendordata(vendordata: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        _spec(vendordata=vendordata)
