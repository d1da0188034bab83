"""Backups that cost what changed: bytes read and time of CBT fulls and incrementals, and restores
of a chain, each beside a baseline measured in the same run.

    .venv/bin/python benchmarks/backup_cbt.py [--disk-gib 8] [--data-gib 1] [--chain 7]

On one simulated host (ops/simulator, with its CBT emulation), a running VM with a thin
``--disk-gib`` disk holding ``--data-gib`` of data (64 stretches spread over the disk, half random,
half text) is backed up by a real worker:

* full: ``ceso backup create --incremental`` (the first point is a full); bytes the worker received
  from the host (counted by a TCP proxy in front of the simulator: SOAP and ``/folder``) against
  the allocated bytes of the flat file (SEEK_DATA/SEEK_HOLE); time against ``curl -r`` of the same
  ranges piped through ``zstd -T0 -3 | sha256sum``, and against today's whole-file read
  (``curl`` of the whole file through the same pipeline);
* incremental: after 64 MiB of scattered 1 MiB writes, bytes received against the changed bytes,
  and stored bytes against ``zstd -3`` of the changed bytes;
* chain: ``--chain`` points in all (a full and incrementals of 8 MiB of changes each); restore of
  the newest against a restore of the full of the same disk;
* worker peak RSS of each job;
* synthetic full: ``backup verify`` of the newest point (the whole chain, range by range), then
  ``backup prune`` with ``keep_last: 1``, which merges the chain into a synthetic full standing for
  the newest point; its time against the restore of that same point (both read the whole chain),
  and a restore of the synthetic full against the restore of the full.

Needs the simulator toolchain, Redis (DB 14 unless CESO_BENCH_REDIS_URL), curl and zstd.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import (  # noqa: E402
    CESO,
    ceso_env,
    ceso_worker,
    exit_on_sigterm,
    log,
    print_table,
    register_host,
    run_timed,
)
from backup_throughput import reset_peak_rss, worker_peak_rss_mib  # noqa: E402

from tests.support.simulator import SimulatorHost  # noqa: E402
from tests.support.vms import create_vm  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30
SEEK_DATA, SEEK_HOLE = 3, 4


class ByteCountingProxy:
    """A TCP forwarder in front of the simulator counting the bytes it sends back to clients."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.down = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> int:
        with self._lock:
            count, self.down = self.down, 0
        return count

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while data := src.recv(1 << 20):
                if count:
                    with self._lock:
                        self.down += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def allocated(path: Path) -> list[tuple[int, int]]:
    """The data extents of a sparse file (SEEK_DATA/SEEK_HOLE)."""
    out = []
    fd = os.open(path, os.O_RDONLY)
    try:
        size, off = os.fstat(fd).st_size, 0
        while off < size:
            try:
                start = os.lseek(fd, off, SEEK_DATA)
            except OSError:
                break
            end = os.lseek(fd, start, SEEK_HOLE)
            out.append((start, end - start))
            off = end
    finally:
        os.close(fd)
    return out


def write_data(path: Path, disk: int, data: int) -> None:
    """``data`` bytes in 64 equal stretches spread over a ``disk``-byte sparse file; half random, half text."""
    text = b"".join(b"%08d the quick brown fox jumps over the lazy dog\n" % i for i in range(200_000))
    stretch = data // 64
    with path.open("r+b" if path.exists() else "wb") as fh:
        for i in range(64):
            fh.seek(i * (disk // 64))
            for j in range(0, stretch, 4 * MIB):
                n = min(4 * MIB, stretch - j)
                fh.write(os.urandom(n) if (j // (4 * MIB)) % 2 == 0 else text[:n])
        fh.truncate(disk)


def scatter(path: Path, disk: int, total: int, seed: int) -> bytes:
    """``total`` bytes of 1 MiB writes at distinct 1 MiB-aligned offsets; returns the bytes written."""
    rng = random.Random(seed)
    offsets = rng.sample(range(disk // MIB), total // MIB)
    written = []
    with path.open("r+b") as fh:
        for block in offsets:
            piece = os.urandom(MIB // 2) + bytes(rng.choice(b"abcdef") for _ in range(16)) * (MIB // 32)
            fh.seek(block * MIB)
            fh.write(piece)
            written.append(piece)
    return b"".join(written)


def shell(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def job_s(job: dict[str, Any]) -> float:
    return (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
    ).total_seconds()


def step_s(job: dict[str, Any], name: str) -> float:
    return float(sum(st.get("duration_s", 0.0) for st in job.get("steps", []) if st["name"] == name))


def steps(job: dict[str, Any]) -> str:
    return ", ".join(f"{st['name']} {st.get('duration_s', 0.0):.2f}" for st in job.get("steps", []))


def ceso_json(env: dict[str, str], *args: str) -> dict[str, Any]:
    _, out = run_timed([str(CESO), "--json", *args], env)
    body: dict[str, Any] = json.loads(out)
    assert body["state"] == "succeeded", body
    return body


def merge_rows(
    env: dict[str, str],
    sim: SimulatorHost,
    worker: Any,
    last: dict[str, Any],
    chain: int,
    restore: dict[str, tuple[float, float]],
    rows: list[list[object]],
    timings: list[list[object]],
) -> None:
    """Verify the chain, merge it into a synthetic full with ``backup prune``, restore that."""
    import resource

    point = last["result"]["backup_id"]
    log(f"verify of the newest point (the chain of {chain})")
    verify_s, _ = run_timed([str(CESO), "--json", "backup", "verify", point], env)
    rows.append(
        [f"verify: newest of a chain of {chain} (every range of every point)", f"{verify_s:.2f} s", ""]
    )
    log("prune with keep_last 1: merge the chain into a synthetic full")
    policy = {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}
    merge_s, out = run_timed(
        [str(CESO), "--json", "backup", "prune", "--vm", "cbt"],
        {**env, "CESO_BACKUPS__RETENTION": json.dumps(policy)},
    )
    (merge,) = json.loads(out)["merge"]
    assert merge["synthetic_id"] and len(merge["points"]) == chain, merge
    prune_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest finished child
    chain_r = next(t for label, (t, _) in restore.items() if label.startswith("point"))
    full_r = restore["full"][0]
    rows.append([f"synthetic full: prune merging a chain of {chain} / restore of its newest point",
                 f"{merge_s / chain_r:.2f}", f"{merge_s:.2f} s / {chain_r:.2f} s"])  # fmt: skip
    rows.append(["synthetic full: peak RSS of the prune process (largest finished ceso command)",
                 f"{prune_rss:.0f} MiB", ""])  # fmt: skip
    log("restore of the synthetic full")
    reset_peak_rss(worker.pid)
    job = ceso_json(env, "backup", "restore", merge["synthetic_id"], "--as", "rs", "--no-power-on")
    synth_r, synth_rss = job_s(job), worker_peak_rss_mib(worker.pid)
    timings.append(["restore of the synthetic full", steps(job)])
    shutil.rmtree(sim.datastore_dir() / "rs", ignore_errors=True)
    rows.append(["synthetic full: its restore / restore of the full", f"{synth_r / full_r:.2f}",
                 f"{synth_r:.2f} s / {full_r:.2f} s"])  # fmt: skip
    rows.append(["synthetic full: worker peak RSS of its restore", f"{synth_rss:.0f} MiB", ""])


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--disk-gib", type=int, default=8)
    parser.add_argument("--data-gib", type=float, default=1.0)
    parser.add_argument("--chain", type=int, default=7, help="points in the restored chain (full included)")
    args = parser.parse_args()
    if not (shutil.which("curl") and shutil.which("zstd")):
        raise SystemExit("curl and zstd are required (ops/dev/setup.sh installs them)")
    disk, data = args.disk_gib * GIB, int(args.data_gib * GIB)
    tmp = Path(tempfile.mkdtemp(prefix="ceso-bench-cbt-"))
    env = ceso_env(tmp)
    sim = SimulatorHost.start()
    rows: list[list[object]] = []
    timings: list[list[object]] = []
    try:
        host, port = sim.url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
        proxy = ByteCountingProxy((host, int(port)))
        register_host(env, "bench", f"http://127.0.0.1:{proxy.port}/sdk")
        store = tmp / "store"
        store.mkdir()
        run_timed([str(CESO), "target", "add", "local", "--type", "local", "--path", str(store)], env)
        si = sim.connect()
        vm = "cbt"
        create_vm(si, vm, disk_gb=args.disk_gib).PowerOnVM_Task()
        flat = sim.datastore_dir() / vm / f"{vm}-flat.vmdk"
        log(f"writing {args.data_gib} GiB into a thin {args.disk_gib} GiB disk")
        write_data(flat, disk, data)
        alloc = allocated(flat)
        alloc_bytes = sum(n for _, n in alloc)
        url = (
            f"{sim.url.removesuffix('/sdk')}/folder/{vm}/{vm}-flat.vmdk?dcPath=ha-datacenter&dsName=LocalDS_0"
        )
        ranges = tmp / "ranges"
        ranges.write_text("".join(f"{s}-{s + n - 1}\n" for s, n in alloc))
        with ceso_worker(env, "bench", tmp / "worker.log") as worker:
            run_timed([str(CESO), "host", "ping", "bench"], env)
            rows.append(["worker peak RSS before any backup (after a host.ping job)",
                         f"{worker_peak_rss_mib(worker.pid):.0f} MiB", ""])  # fmt: skip
            log("baseline: curl of the allocated ranges | zstd -T0 -3 | sha256sum")
            ranges_s = shell(
                f"while read r; do curl -s -r \"$r\" '{url}'; done < '{ranges}' | zstd -T0 -3 -q | sha256sum"
            )
            log("baseline: curl of the whole file | zstd -T0 -3 | sha256sum")
            whole_s = shell(f"curl -s '{url}' | zstd -T0 -3 -q | sha256sum")

            log("full")
            proxy.reset()
            reset_peak_rss(worker.pid)
            full = ceso_json(env, "backup", "create", vm, "--target", "local", "--incremental")
            full_down, full_rss = proxy.reset(), worker_peak_rss_mib(worker.pid)
            assert full["result"]["scope"] == "full", full["result"]
            rows.append(["full: bytes from host / allocated bytes", f"{full_down / alloc_bytes:.3f}",
                         f"{full_down / MIB:.0f} MiB / {alloc_bytes / MIB:.0f} MiB"])  # fmt: skip
            rows.append(["full: job time / curl ranges | zstd | sha256sum", f"{job_s(full) / ranges_s:.2f}",
                         f"{job_s(full):.2f} s / {ranges_s:.2f} s"])  # fmt: skip
            copy_s = step_s(full, f"copy {vm}-flat.vmdk")
            rows.append(["full: its flat file's copy step / curl ranges | zstd | sha256sum", f"{copy_s / ranges_s:.2f}",
                         f"{copy_s:.2f} s / {ranges_s:.2f} s"])  # fmt: skip
            rows.append(["full: job time / curl whole file | zstd | sha256sum (today's read)",
                         f"{job_s(full) / whole_s:.2f}", f"{job_s(full):.2f} s / {whole_s:.2f} s"])  # fmt: skip
            rows.append(["full: worker peak RSS", f"{full_rss:.0f} MiB", ""])
            timings.append(["full", steps(full)])

            log("incremental after 64 MiB of scattered 1 MiB writes")
            changed = scatter(flat, disk, 64 * MIB, seed=1)
            zfile = tmp / "changed"
            zfile.write_bytes(changed)
            compressed = int(subprocess.run(
                ["bash", "-c", f"zstd -3 -q -c '{zfile}' | wc -c"], capture_output=True, text=True, check=True
            ).stdout)  # fmt: skip
            reset_peak_rss(worker.pid)
            inc = ceso_json(env, "backup", "create", vm, "--target", "local", "--incremental")
            inc_down, inc_rss = proxy.reset(), worker_peak_rss_mib(worker.pid)
            assert inc["result"]["scope"] == "incremental", inc["result"]
            rows.append(["incremental: bytes from host / changed bytes", f"{inc_down / len(changed):.3f}",
                         f"{inc_down / MIB:.1f} MiB / {len(changed) / MIB:.0f} MiB"])  # fmt: skip
            inc_stored = inc["result"]["stored_bytes"]
            rows.append(["incremental: stored bytes / zstd -3 of the changed bytes",
                         f"{inc_stored / compressed:.3f}", f"{inc_stored / MIB:.1f} MiB / {compressed / MIB:.1f} MiB"])  # fmt: skip
            rows.append(["incremental: job time", f"{job_s(inc):.2f} s", ""])
            timings.append(["incremental", steps(inc)])
            rows.append(["incremental: worker peak RSS", f"{inc_rss:.0f} MiB", ""])

            for i in range(args.chain - 2):
                scatter(flat, disk, 8 * MIB, seed=10 + i)
                last = ceso_json(env, "backup", "create", vm, "--target", "local", "--incremental")
            last = last if args.chain > 2 else inc
            assert last["result"]["chain_length"] == args.chain, last["result"]
            restore = {}
            for label, point in (("full", full), (f"point {args.chain} of {args.chain}", last)):
                log(f"restore of the {label}")
                reset_peak_rss(worker.pid)
                job = ceso_json(env, "backup", "restore", point["result"]["backup_id"], "--as", f"r{len(restore)}",
                                "--no-power-on")  # fmt: skip
                restore[label] = (job_s(job), worker_peak_rss_mib(worker.pid))
                timings.append([f"restore of the {label}", steps(job)])
                shutil.rmtree(sim.datastore_dir() / f"r{len(restore) - 1}", ignore_errors=True)
            (full_r, full_r_rss), (chain_r, chain_r_rss) = restore.values()
            rows.append([f"restore: newest of a chain of {args.chain} / the full", f"{chain_r / full_r:.2f}",
                         f"{chain_r:.2f} s / {full_r:.2f} s"])  # fmt: skip
            rows.append(
                ["restore: worker peak RSS (full, chain)", f"{full_r_rss:.0f} / {chain_r_rss:.0f} MiB", ""]
            )
            merge_rows(env, sim, worker, last, args.chain, restore, rows, timings)
        proxy._server.close()
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print_table(
        f"CBT backups: thin {args.disk_gib} GiB disk, {args.data_gib} GiB of data (one run)",
        ["measure", "ratio / value", "figures"],
        rows,
    )
    print_table("Where each job's time went (step: seconds)", ["job", "steps"], timings)


if __name__ == "__main__":
    main()
