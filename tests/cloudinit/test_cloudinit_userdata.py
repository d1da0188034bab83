"""The #cloud-config userdata and the merge of operator-supplied cloud-config."""

from __future__ import annotations

import base64
import os
import struct
from typing import Any

import pytest
import yaml

from ceso.cloudinit import build_userdata, merge_cloud_config, parse_extra_userdata
from ceso.errors import InvalidInputError


def _key(comment: str) -> str:
    blob = b"".join(struct.pack(">I", len(f)) + f for f in (b"ssh-ed25519", os.urandom(32)))
    return f"ssh-ed25519 {base64.b64encode(blob).decode()} {comment}"


KEY_A = _key("a@ceso")
KEY_B = _key("b@extra")


def _load(text: str) -> dict[str, Any]:
    assert text.startswith("#cloud-config\n")
    loaded = yaml.safe_load(text)
    assert isinstance(loaded, dict)
    return loaded


def test_default_user_document() -> None:
    doc = _load(build_userdata(ssh_keys=[KEY_A, KEY_A], packages=["qemu-guest-agent", "vim=2:9.0"]))
    assert doc["users"] == [
        {
            "name": "ubuntu",
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "shell": "/bin/bash",
            "lock_passwd": True,
            "ssh_authorized_keys": [KEY_A],
        }
    ]
    assert doc["packages"] == ["qemu-guest-agent", "vim=2:9.0"]


def test_custom_user_and_no_keys() -> None:
    doc = _load(build_userdata(user="ops"))
    assert doc == {
        "users": [
            {"name": "ops", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash", "lock_passwd": True}
        ]
    }


def test_long_key_stays_on_one_line() -> None:
    text = build_userdata(ssh_keys=[KEY_A])
    assert f"  - {KEY_A}\n" in text


def test_merge_keeps_ceso_keys_and_adds_users_and_keys() -> None:
    extra = f"""#cloud-config
users:
  - default
  - name: ubuntu
    groups: [docker]
    lock_passwd: false
    ssh_authorized_keys: ["{KEY_B}", "{KEY_A}"]
  - name: alice
    ssh_authorized_keys: ["{KEY_B}"]
packages: [htop]
runcmd:
  - [touch, /tmp/done]
"""
    doc = _load(build_userdata(ssh_keys=[KEY_A], packages=["vim"], extra=extra))
    own, *others = doc["users"]
    assert own["name"] == "ubuntu"
    assert own["ssh_authorized_keys"] == [KEY_A, KEY_B]  # ceso's first, no duplicate
    assert (
        own["groups"] == ["docker"]
        and own["lock_passwd"] is False
        and own["sudo"] == "ALL=(ALL) NOPASSWD:ALL"
    )
    assert others == ["default", {"name": "alice", "ssh_authorized_keys": [KEY_B]}]
    assert doc["packages"] == ["vim", "htop"]
    assert doc["runcmd"] == [["touch", "/tmp/done"]]
    assert list(doc) == ["users", "packages", "runcmd"]


def test_merge_cannot_remove_ceso_keys() -> None:
    extra = "users:\n  - name: ubuntu\n    ssh_authorized_keys: []\n"
    doc = _load(build_userdata(ssh_keys=[KEY_A], extra=extra))
    assert doc["users"][0]["ssh_authorized_keys"] == [KEY_A]
    with pytest.raises(InvalidInputError, match="must be a list of SSH public keys"):
        build_userdata(ssh_keys=[KEY_A], extra="users:\n  - name: ubuntu\n    ssh_authorized_keys: null\n")
    with pytest.raises(InvalidInputError, match="users must be a list"):
        build_userdata(ssh_keys=[KEY_A], extra="users: null\n")
    with pytest.raises(InvalidInputError, match="packages must be a list to merge"):
        build_userdata(packages=["vim"], extra="packages: htop\n")


def test_merge_hyphenated_spellings_cannot_replace_keys() -> None:
    extra = f"users:\n  - name: ubuntu\n    lock-passwd: false\n    ssh-authorized-keys: ['{KEY_B}']\n"
    own = _load(build_userdata(ssh_keys=[KEY_A], extra=extra))["users"][0]
    assert own["ssh_authorized_keys"] == [KEY_A, KEY_B]
    assert own["lock_passwd"] is False
    assert "ssh-authorized-keys" not in own and "lock-passwd" not in own


def test_merge_rule_recursive_mapping_and_scalars() -> None:
    base: dict[str, Any] = {
        "users": [{"name": "ubuntu"}],
        "apt": {"sources": {"a": {"source": "x"}}, "conf": "c"},
    }
    extra: dict[str, Any] = {"apt": {"sources": {"b": {"source": "y"}}, "conf": "d"}, "ssh_pwauth": False}
    merged = merge_cloud_config(base, extra, "ubuntu")
    assert merged["apt"] == {"sources": {"a": {"source": "x"}, "b": {"source": "y"}}, "conf": "d"}
    assert merged["ssh_pwauth"] is False
    assert base["apt"]["sources"] == {"a": {"source": "x"}}  # inputs untouched
    with pytest.raises(InvalidInputError, match=r"apt.sources must be a mapping"):
        merge_cloud_config(base, {"apt": {"sources": ["x"]}}, "ubuntu")


def test_extra_header_is_optional_and_empty_is_fine() -> None:
    assert parse_extra_userdata("runcmd: [ls]") == {"runcmd": ["ls"]}
    assert parse_extra_userdata("#cloud-config\nruncmd: [ls]\n") == {"runcmd": ["ls"]}
    assert parse_extra_userdata("") == {}
    assert parse_extra_userdata("# just a comment\n") == {}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        ("- a\n- b\n", "must be a YAML mapping (cloud-config), got a list"),
        ("just text", "must be a YAML mapping (cloud-config), got a str"),
        ("a: [1\n", "is not valid YAML"),
        ("#!/bin/bash\necho hi\n", "only #cloud-config YAML can be merged"),
        ("#include\nhttps://example.com/x\n", "only #cloud-config YAML can be merged"),
        ("## template: jinja\n#cloud-config\n", "only #cloud-config YAML can be merged"),
        ("1: x\n", "must be a string"),
        ("users:\n  - groups: [x]\n", "users[0] must be a user name or a mapping with a 'name'"),
        (
            "users:\n  - name: bob\n    ssh_authorized_keys: ['ssh-ed25519 AAAA']\n",
            "users[0].ssh_authorized_keys",
        ),
    ],
)
def test_bad_extra_userdata(extra: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        build_userdata(ssh_keys=[KEY_A], extra=extra)
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"user": "root"}, "must not be 'root'"),
        ({"user": "Bad User"}, "user 'Bad User' is not a valid user name"),
        ({"ssh_keys": ["ssh-ed25519 AAAA"]}, "ssh_keys[0]"),
        ({"packages": ["vim; rm -rf /"]}, "package 'vim; rm -rf /'"),
    ],
)
def test_bad_userdata_inputs(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        build_userdata(**kwargs)
    assert fragment in info.value.message
