"""Hostname rules, CloudInitSpec validation, and the package's public surface."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import ceso.cloudinit
from ceso.cloudinit import CloudInitSpec, hostname_for_vm, parse_nic, validate_hostname
from ceso.errors import InvalidInputError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("web01", "web01"),
        ("Web-01", "web-01"),
        ("db1.prod.example.com", "db1.prod.example.com"),
        ("a" * 63, "a" * 63),
        ("3com", "3com"),
        (".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 61),  # 253
    ],
)
def test_valid_hostnames(name: str, expected: str) -> None:
    assert validate_hostname(name) == expected


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("web_01", "label 'web_01'"),
        ("-web", "label '-web'"),
        ("web-", "label 'web-'"),
        ("a" * 64, "label"),
        ("web..example", "label ''"),
        ("web.example.", "label ''"),
        ("my vm", "label 'my vm'"),
        ("wéb", "label"),
        (".".join(["a" * 63] * 4), "at most 253"),
        ("192.0.2.10", "all-numeric label"),
        ("123", "all-numeric label"),
    ],
)
def test_bad_hostnames(name: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_hostname(name)
    assert fragment in info.value.message and "hostname" in info.value.message


def test_hostname_for_vm() -> None:
    assert hostname_for_vm("Web01") == "web01"
    assert hostname_for_vm("My VM_01", "web01") == "web01"
    with pytest.raises(InvalidInputError, match="give an explicit hostname"):
        hostname_for_vm("My VM_01")
    with pytest.raises(InvalidInputError, match="hostname 'bad_name'"):
        hostname_for_vm("web01", "bad_name")


def _spec(**overrides: Any) -> CloudInitSpec:
    values: dict[str, Any] = {"hostname": "web01", "nics": (parse_nic("00:50:56:00:00:01"),)}
    values.update(overrides)
    return CloudInitSpec(**values)


def test_spec_normalizes() -> None:
    spec = _spec(hostname="WEB01", nics=[parse_nic("00:50:56:00:00:01")], packages=["vim"])
    assert spec.hostname == "web01"
    assert isinstance(spec.nics, tuple) and spec.packages == ("vim",)
    with pytest.raises(AttributeError):
        spec.hostname = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"hostname": "bad_host"}, "hostname 'bad_host'"),
        ({"instance_id": "i/../../etc"}, "instance-id 'i/../../etc' is invalid"),
        ({"instance_id": ""}, "instance-id '' is invalid"),
        ({"user": "root"}, "must not be 'root'"),
        ({"ssh_keys": ("ssh-ed25519 AAAA",)}, "ssh_keys[0]"),
        ({"ssh_keys": "ssh-ed25519 AAAA"}, "ssh_keys must be a list"),
        ({"packages": ("Bad Package",)}, "package 'Bad Package'"),
        ({"extra_userdata": "- not a mapping"}, "must be a YAML mapping"),
        ({"nics": (parse_nic("00:50:56:00:00:01"), parse_nic("00:50:56:00:00:01"))}, "more than one NIC"),
    ],
)
def test_spec_rejects(overrides: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        _spec(**overrides)
    assert fragment in info.value.message


def test_public_names_match_all() -> None:
    assert sorted(ceso.cloudinit.__all__) == sorted(set(ceso.cloudinit.__all__))
    for name in ceso.cloudinit.__all__:
        assert hasattr(ceso.cloudinit, name), name


def test_import_is_light() -> None:
    code = (
        "import sys, ceso.cloudinit\n"
        "heavy = {'celery', 'sqlmodel', 'sqlalchemy', 'pyVmomi', 'paramiko', 'cryptography', 'redis'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
