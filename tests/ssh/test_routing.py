"""Route choice from a host's record, and what counts as a free (read-only API) license."""

from __future__ import annotations

from typing import Any

import pytest

from ceso.backends.routes import choose_route
from ceso.db.models import Host
from ceso.hosts.probe import is_free_license
from ceso.ssh.target import ssh_configured, ssh_secret_key, ssh_target


@pytest.mark.parametrize(
    ("edition", "name", "free"),
    [
        ("esxBasic", "VMware vSphere 5 Hypervisor", True),
        ("esx.hypervisor.cpuPackageCoreLimited", "vSphere 7 Hypervisor", True),
        ("esx.hypervisor.cpuPackage", "vSphere 8 Hypervisor", True),
        ("eval", "Evaluation Mode", False),
        ("esx.enterprisePlus.cpuPackage", "vSphere 7 Enterprise Plus", False),
        ("esx.standard.cpuPackage", "vSphere 8 Standard", False),
    ],
)
def test_free_editions(edition: str, name: str, free: bool) -> None:
    assert is_free_license(edition, name) is free


def _host(**kw: Any) -> Host:
    return Host(name="h1", url="https://esxi-1.example.com/sdk", username="root", **kw)


@pytest.mark.parametrize(
    ("route", "capabilities", "chosen"),
    [
        ("auto", {}, "api"),  # never probed: try the API (a refusal then says api_read_only)
        ("auto", {"api_writes": True}, "api"),
        ("auto", {"api_writes": None}, "api"),
        ("auto", {"api_writes": False}, "ssh"),
        ("api", {"api_writes": False}, "api"),  # forced, even against the probe
        ("ssh", {"api_writes": True}, "ssh"),
    ],
)
def test_choose_route(route: str, capabilities: dict[str, Any], chosen: str) -> None:
    assert choose_route(_host(route=route, capabilities=capabilities)) == chosen


def test_ssh_target_from_the_row() -> None:
    assert not ssh_configured(_host())
    host = _host(ssh_username="root", ssh_port=2222, ssh_auth="key", ssh_host_key="SHA256:" + "a" * 43)
    target = ssh_target(host)
    assert (target.address, target.port, target.username, target.auth) == (
        "esxi-1.example.com",
        2222,
        "root",
        "key",
    )
    assert (
        ssh_secret_key("h1", "key") == "host:h1:ssh-key"
        and ssh_secret_key("h1", "password") == "host:h1:ssh-password"
    )
