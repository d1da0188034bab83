"""``ceso datastore ls|upload|download|rm`` on both routes, read back from the datastore's directory.

The API route runs against the simulator (``/folder`` HTTP, the datastore browser, FileManager);
the SSH route against the free-licensed simulator behind a real sshd with the ESXi SFTP
emulator. Each check is what an operator would look at: the bytes of the file on the datastore's
disk, what is left in its folder, the exit code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, unique
from tests.security.helpers import audit_rows
from tests.ssh.conftest import add_ssh_host, local_si, make_ssh_template
from tests.support.simulator import SimulatorHost
from tests.support.sshd import SshServer
from tests.support.vms import make_template

DATASTORE = "LocalDS_0"


@dataclass
class Route:
    """A registered host on one route, its datastore directory, and a way to make a VM on it."""

    host: str
    directory: Path
    make_vm: Callable[[str], None]
    drop_vm: Callable[[str], None]


@pytest.fixture(params=["api", "ssh"])
def route(
    request: pytest.FixtureRequest,
    cli: Cli,
    tmp_path: Path,
    sim: SimulatorHost,
    free_sim: SimulatorHost,
    shell: SshServer,
) -> Route:
    # The session's simulators are named here, not looked up below: they start before ceso_env
    # points HOME at a test directory (the simulator's build cache lives under HOME).
    if request.param == "api":
        host = request.getfixturevalue("registered_host")
        si = sim.connect()
        return Route(
            host,
            sim.datastore_dir(),
            lambda name: make_template(si, sim.datastore_dir(), name, b"vm bytes"),
            lambda name: _unregister(si, name),
        )
    free = free_sim
    key_file = tmp_path / "esxi_key"
    key_file.write_text(shell.client_key)
    key_file.chmod(0o600)
    added = add_ssh_host(cli, free, shell, key_file, "--ssh-host-key", shell.host_key_fingerprint())
    assert added.exit_code == 0, added.stdout + added.stderr
    assert added.json()["capabilities"]["api_writes"] is False  # so the SSH route is the one taken

    def make_vm(name: str) -> None:
        mac = f"00:50:56:3d:{os.urandom(1).hex()}:{os.urandom(1).hex()}"
        make_ssh_template(shell, free, name, b"vm bytes", mac=mac)

    return Route(
        added.json()["name"], free.datastore_dir(), make_vm, lambda name: _unregister(local_si(free), name)
    )


def _unregister(si: Any, name: str) -> None:
    """Unregister VM ``name``, leaving its files (as `vim-cmd vmsvc/unregister` does)."""
    next(v for v in _all_vms(si) if v.name == name).UnregisterVM()


def _all_vms(si: Any) -> list[Any]:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.Destroy()


def test_upload_list_download_and_remove(cli: Cli, route: Route, tmp_path: Path, database_url: str) -> None:
    where = f"{route.host}:[{DATASTORE}]"
    folder = unique("iso")
    payload = os.urandom(3 * 2**20 + 12345)  # several chunks and a short last one
    local = tmp_path / "seed.iso"
    local.write_bytes(payload)

    missing = cli("--json", "datastore", "upload", str(local), where, f"{folder}/seed.iso")
    assert missing.exit_code == 4, missing.stdout + missing.stderr  # the folder must exist
    (route.directory / folder).mkdir()

    planned = cli("datastore", "upload", str(local), where, f"{folder}/", "--dry-run", "--json")
    assert planned.exit_code == 0 and planned.json()["dry_run"] is True, planned.stdout + planned.stderr
    assert os.listdir(route.directory / folder) == []  # checked, nothing sent

    sent = cli("datastore", "upload", str(local), where, f"{folder}/", "--json", "--progress")
    assert sent.exit_code == 0, sent.stdout + sent.stderr
    assert sent.json() == {"host": route.host, "datastore": DATASTORE, "path": f"{folder}/seed.iso",
                           "bytes": len(payload), "dry_run": False}  # fmt: skip
    assert "(100%)" in sent.stderr  # --progress without a terminal: a line at the end at least
    assert (route.directory / folder / "seed.iso").read_bytes() == payload
    assert os.listdir(route.directory / folder) == ["seed.iso"]  # the part file was renamed, not left

    again = cli("--json", "datastore", "upload", str(local), where, f"{folder}/seed.iso")
    assert again.exit_code == 5 and again.json()["error"]["code"] == "conflict", again.stdout
    newer = os.urandom(1000)
    local.write_bytes(newer)
    assert cli("datastore", "upload", str(local), where, f"{folder}/seed.iso", "--force").exit_code == 0
    assert (route.directory / folder / "seed.iso").read_bytes() == newer

    listed = cli("--json", "datastore", "ls", where, folder)
    assert listed.exit_code == 0, listed.stdout + listed.stderr
    assert [(e["path"], e["folder"], e["size"]) for e in listed.json()] == [
        (f"{folder}/seed.iso", False, 1000)
    ]
    root = cli("--json", "datastore", "ls", where)
    assert (folder, True) in [(e["path"], e["folder"]) for e in root.json()]

    got = cli("--json", "datastore", "download", where, f"{folder}/seed.iso", str(tmp_path / "back.iso"))
    assert got.exit_code == 0, got.stdout + got.stderr
    assert (tmp_path / "back.iso").read_bytes() == newer
    assert not (tmp_path / "back.iso.ceso-part").exists()
    kept = cli("datastore", "download", where, f"{folder}/seed.iso", str(tmp_path / "back.iso"))
    assert kept.exit_code == 5  # an existing local file is replaced only with --force

    assert cli("datastore", "rm", where, f"{folder}/seed.iso", "--dry-run").exit_code == 0
    assert (route.directory / folder / "seed.iso").exists()
    assert cli("datastore", "rm", where, f"{folder}/seed.iso", "--yes").exit_code == 0
    assert os.listdir(route.directory / folder) == []
    assert cli("datastore", "rm", where, folder, "--yes").exit_code == 0
    assert not (route.directory / folder).exists()
    gone = cli("--json", "datastore", "rm", where, folder, "--yes")
    assert gone.exit_code == 4, gone.stdout

    # Each change is audited with the host it changed, as every other host-changing record is.
    records = audit_rows(database_url, "operation IN ('datastore.upload', 'datastore.rm')")
    assert [(r["operation"], r["outcome"]) for r in records] == [
        ("datastore.upload", "failed"),  # the folder was missing
        ("datastore.upload", "ok"),
        ("datastore.upload", "failed"),  # the conflict
        ("datastore.upload", "ok"),
        ("datastore.rm", "ok"),
        ("datastore.rm", "ok"),
        ("datastore.rm", "failed"),  # already gone
    ], records
    assert {r["host"] for r in records} == {route.host}


def test_paths_outside_the_datastore_are_refused(cli: Cli, registered_host: str, tmp_path: Path) -> None:
    local = tmp_path / "x"
    local.write_bytes(b"x")
    where = f"{registered_host}:[{DATASTORE}]"
    for path in ("../escape.iso", "/etc/escape.iso", "a/../../escape.iso", "./escape.iso", "a//escape.iso"):
        for args in (
            ("upload", str(local), where, path),
            ("rm", where, path, "--yes"),
            ("download", where, path),
        ):
            done = cli("--json", "datastore", *args)
            assert done.exit_code == 2, (args, done.stdout, done.stderr)
            assert done.json()["error"]["code"] == "invalid_input"
    assert cli("--json", "datastore", "rm", where, "", "--yes").exit_code == 2  # nor its root
    assert not (tmp_path.parent / "escape.iso").exists()


def test_rm_refuses_the_files_of_a_registered_vm(cli: Cli, route: Route) -> None:
    where = f"{route.host}:[{DATASTORE}]"
    name = unique("owned")
    route.make_vm(name)
    try:
        for path in (name, f"{name}/{name}.vmx", f"{name}/{name}-flat.vmdk"):
            refused = cli("--json", "datastore", "rm", where, path, "--yes")
            assert refused.exit_code == 5, refused.stdout + refused.stderr
            error = refused.json()["error"]
            assert error["code"] == "path_of_vm" and name in error["message"]
        assert (route.directory / name / f"{name}.vmx").exists()
    finally:
        route.drop_vm(name)
    # Once the VM is no longer registered its folder is just files.
    assert cli("datastore", "rm", where, name, "--yes").exit_code == 0
    assert not (route.directory / name).exists()
