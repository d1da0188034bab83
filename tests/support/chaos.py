"""Helpers of the delivery chaos cases: repointing an installation at a faulty service (cut it with
:class:`tests.support.proxy.FaultProxy`), and the checks of SQL and host reality after a fault."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.support.vms import vm_by_name, vm_names

TERMINAL = {"succeeded", "failed", "cancelled"}


def repoint(env: dict[str, str], **values: str) -> None:
    """Set ``CESO_*`` variables in ``env`` (the ``ceso_env`` dict workers and subprocesses get), in
    this process's environment, and forget the cached settings and runtime."""
    from ceso.runtime import get_runtime
    from ceso.settings import get_settings

    for key, value in values.items():
        env[key] = value
        os.environ[key] = value
    if get_runtime.cache_info().currsize:
        get_runtime().close()
    get_runtime.cache_clear()
    get_settings.cache_clear()


def children_of(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(b")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def job_rows(url: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The rows of jobs ``ids`` read straight from SQL (not through ceso)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT id, state, attempts, worker, error_code, result, current_step, steps FROM jobs"
                )
            ).mappings()
            return {str(r["id"]): dict(r) for r in rows if str(r["id"]) in ids}
    finally:
        engine.dispose()


def wait_terminal(url: str, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    """Wait until every job of ``ids`` is terminal in SQL; AssertionError naming the others."""
    deadline = time.monotonic() + timeout
    while True:
        rows = job_rows(url, ids)
        pending = {i: rows[i]["state"] for i in ids if rows[i]["state"] not in TERMINAL}
        if not pending:
            return rows
        assert time.monotonic() < deadline, f"not terminal after {timeout}s: {pending}"
        time.sleep(0.25)


def assert_vms_exactly_once(si: Any, datastore_dir: Path, names: list[str]) -> None:
    """Each VM of ``names`` exists once on the host, with its own directory on the datastore."""
    on_host = vm_names(si)
    for name in names:
        assert on_host.count(name) == 1, f"{name}: {on_host.count(name)} VMs on the host"
        assert (datastore_dir / name / f"{name}.vmx").exists(), f"{name}: no .vmx on the datastore"


def orphan_dirs(si: Any, datastore_dir: Path, prefix: str) -> list[str]:
    """Datastore directories starting with ``prefix`` that belong to no VM on the host."""
    on_host = set(vm_names(si))
    return sorted(
        p.name for p in datastore_dir.iterdir() if p.name.startswith(prefix) and p.name not in on_host
    )


def assert_record_matches_host(
    si: Any, datastore_dir: Path, rows: dict[str, dict[str, Any]], names: dict[str, str]
) -> None:
    """Every job of ``rows`` (``names``: job id → the VM it creates) ended, and the host agrees: a
    succeeded create's VM exists once with its files, carries the job's marker, and has the BIOS
    UUID, MACs and power state the job's result gives; a failed or cancelled one left no VM and no
    directory. The host is read with pyVmomi, not through ceso."""
    on_host = vm_names(si)
    for job_id, row in rows.items():
        name = names[job_id]
        assert row["state"] in TERMINAL, f"{name}: job still {row['state']}"
        if row["state"] == "succeeded":
            assert on_host.count(name) == 1, f"{name}: succeeded, {on_host.count(name)} VMs on the host"
            assert (datastore_dir / name / f"{name}.vmx").exists(), f"{name}: succeeded, no .vmx"
            assert host_facts(si, name) == result_facts(row), f"{name}: the record disagrees with the host"
        else:
            assert row["error_code"] != "internal_error", row
            assert name not in on_host, f"{name}: {row['state']} ({row['error_code']}) but the VM exists"
            assert not (datastore_dir / name).exists(), f"{name}: {row['state']} but its directory is left"


def result_facts(row: dict[str, Any]) -> dict[str, Any]:
    """The facts a succeeded create's or clone's result states about its VM (as :func:`host_facts`)."""
    result = row["result"]
    if isinstance(result, str):
        result = json.loads(result)
    return {
        "marker": str(row["id"]),
        "uuid": result.get("uuid"),
        "macs": result.get("macs"),
        "power_state": result.get("power_state"),
    }


def host_facts(si: Any, name: str) -> dict[str, Any]:
    """VM ``name``'s job marker, BIOS UUID, MACs and power state, read with pyVmomi."""
    from pyVmomi import vim

    vm = vm_by_name(si, name)
    assert vm is not None, f"{name}: not on the host"
    extra = {o.key: o.value for o in vm.config.extraConfig or []}
    return {
        "marker": extra.get("ceso.job-id"),
        "uuid": vm.config.uuid,
        "macs": [
            d.macAddress
            for d in vm.config.hardware.device
            if isinstance(d, vim.vm.device.VirtualEthernetCard)
        ],
        "power_state": str(vm.runtime.powerState),
    }


def backup_sets_of(url: str, job_id: str) -> list[dict[str, Any]]:
    """The catalog's sets of backup job ``job_id`` with their files, read straight from SQL."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            sets = [
                dict(r)
                for r in conn.execute(
                    sa.text("SELECT id, status, path FROM backup_sets WHERE job_id = :j"), {"j": job_id}
                ).mappings()
            ]
            for s in sets:
                s["files"] = [
                    dict(f)
                    for f in conn.execute(
                        sa.text("SELECT stored_name, stored_bytes FROM backup_files WHERE set_id = :s"),
                        {"s": s["id"]},
                    ).mappings()
                ]
    finally:
        engine.dispose()
    return sets


def target_files(store: Path, path: str) -> list[str]:
    """Files under ``path`` of a local target rooted at ``store``."""
    base = store / path
    if not base.exists():
        return []
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file())


def assert_backup_matches_target(url: str, store: Path, row: dict[str, Any]) -> None:
    """A backup job's record agrees with its catalog and its local target (``store``): succeeded,
    its one completed set has every file at the target with the catalogued size; failed, no
    completed set. Either way no set is left pending and no file of an uncompleted set remains."""
    job_id = str(row["id"])
    sets = backup_sets_of(url, job_id)
    assert [s for s in sets if s["status"] not in ("completed", "failed")] == [], f"set left pending: {sets}"
    done = [s for s in sets if s["status"] == "completed"]
    if row["state"] == "succeeded":
        result = row["result"] if isinstance(row["result"], dict) else json.loads(row["result"])
        assert [s["id"] for s in done] == [result["backup_id"]], sets
        for f in done[0]["files"]:
            stored = store / done[0]["path"] / f["stored_name"]
            assert stored.is_file(), f"{stored}: catalogued, not at the target"
            assert stored.stat().st_size == f["stored_bytes"], f"{stored}: not the catalogued size"
        assert done[0]["files"], done
    else:
        assert done == [], f"{row['state']}, yet a completed set: {sets}"
    for s in sets:
        if s["status"] != "completed":
            assert target_files(store, s["path"]) == [], f"partial point left at the target: {s}"
