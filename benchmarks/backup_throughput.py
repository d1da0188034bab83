"""Backup and restore throughput: ceso's whole job beside a shell pipeline on the same file, peak
worker memory at two disk sizes, and compression ratio/throughput per codec.

    .venv/bin/python benchmarks/backup_throughput.py [--sizes 1,4] [--runs 2]

For each disk size (GiB; one third random, one third zeros, one third text), on one simulated host:

* shell: ``curl -s <folder URL> | zstd -T0 -3 | sha256sum`` (stdout to /dev/null);
* ceso: ``ceso backup create --compress zstd --level 3`` to a local target, submit to success, with
  a real worker (prefork, concurrency 1); peak RSS = the largest VmHWM of the worker's processes;
* restore: ``ceso backup restore`` (decompress, hash check, PUT over /folder, create the VM) beside
  ``zstd -dc <stored file> | curl -s -T - <folder URL>``, ``--runs`` times, alternating which goes first (each one's output deleted once timed);
* codecs (first size only): ``store_stream`` from the datastore over HTTP into /dev/null per codec.

With ``--via-cesod`` a ``cesod`` runs beside the worker, so the ``ceso`` commands go through its
operator socket (``ceso.cli.via_cesod``) instead of starting up, connecting and publishing themselves.

Needs the simulator toolchain, Redis (DB 14 unless CESO_BENCH_REDIS_URL), curl and zstd.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import CESO, ceso_env, exit_on_sigterm, log, print_table, register_host, run_timed  # noqa: E402

from tests.support.simulator import SimulatorHost  # noqa: E402
from tests.support.vms import create_vm  # noqa: E402

GIB = 1 << 30


def write_disk(path: Path, size: int) -> None:
    """1/3 random, 1/3 zeros, 1/3 text, written in 8 MiB pieces (flat memory here too)."""
    third = size // 3
    piece = 8 << 20
    text = b"".join(
        b"%08d the quick brown fox jumps over the lazy dog, again and again\n" % i for i in range(150_000)
    )
    with path.open("wb") as fh:
        for _ in range(0, third, piece):
            fh.write(os.urandom(piece))
        fh.seek(2 * third)  # the zero third stays a hole: a thin disk
        written = 0
        while written < size - 2 * third:
            chunk = text[: min(len(text), size - 2 * third - written)]
            fh.write(chunk)
            written += len(chunk)
        fh.truncate(size)


def worker_peak_rss_mib(pgid: int) -> float:
    peak = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if os.getpgid(int(pid)) != pgid:
                continue
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ProcessLookupError):
            continue
    return peak / 1024


def reset_peak_rss(pgid: int) -> None:
    """Reset the peak RSS (VmHWM) of every process in the group, so the next reading is one job's peak.

    Writing 5 to /proc/PID/clear_refs does that (Linux >= 4.0); without it the
    figure would be the high-water mark of the worker's whole life so far.
    """
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.getpgid(int(pid)) == pgid:
                    Path(f"/proc/{pid}/clear_refs").write_text("5")
            except (OSError, ProcessLookupError):
                continue


def shell(cmd: str) -> float:
    start = time.perf_counter()
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def ceso_json(env: dict[str, str], *args: str) -> dict:
    elapsed, out = run_timed([str(CESO), "--json", *args], env)
    body = json.loads(out)
    body["_wall_s"] = elapsed
    return body


def codec_table(sim: SimulatorHost, vm: str, size: int) -> list[list[object]]:
    from ceso.backup.datastore_http import DatastoreHttp
    from ceso.backup.pipeline import store_stream
    from ceso.esxi.client import EsxiClient
    from ceso.hosts.endpoint import parse_endpoint

    client = EsxiClient(
        name="b", endpoint=parse_endpoint(sim.url), username="root", password=lambda: "x", thumbprint=None
    )
    rows = []
    for codec, level in (("zstd", 1), ("zstd", 3), ("zstd", 9), ("gzip", 6), ("none", None)):
        remote = DatastoreHttp(client).open_read("LocalDS_0", f"{vm}/{vm}-flat.vmdk")
        with open(os.devnull, "wb") as null:
            start = time.perf_counter()
            digest = store_stream(remote, null, compression=codec, level=level)
            elapsed = time.perf_counter() - start
        remote.close()
        rows.append(
            [
                f"{codec} {level or ''}".strip(),
                f"{size / digest.stored_bytes:.2f}",
                f"{size / elapsed / 2**20:.0f}",
            ]
        )
    client.logout()
    return rows


def job_timing(job: dict[str, Any]) -> tuple[float, str]:
    """A finished job's ``created_at`` to ``finished_at`` in seconds, and its steps' durations as text."""
    job_s = (
        datetime.fromisoformat(job["finished_at"]) - datetime.fromisoformat(job["created_at"])
    ).total_seconds()
    steps = ", ".join(f"{st['name']} {st.get('duration_s', 0.0):.2f}" for st in job.get("steps", []))
    return job_s, steps


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,4", help="disk sizes in GiB, comma-separated")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--via-cesod",
        action="store_true",
        help="run a cesod: the ceso commands then go through its operator socket (ceso.cli.via_cesod)",
    )
    args = parser.parse_args()
    if not (shutil.which("curl") and shutil.which("zstd")):
        raise SystemExit("curl and zstd are required (ops/dev/setup.sh installs them)")
    tmp = Path(tempfile.mkdtemp(prefix="ceso-bench-backup-"))
    env = ceso_env(tmp)
    sim = SimulatorHost.start()
    worker = None
    daemon: Any = None
    rows, restore_rows, codecs = [], [], []
    step_rows: list[list[object]] = []
    baseline = 0.0
    try:
        register_host(env, "bench", sim.url)
        store = tmp / "store"
        store.mkdir()
        run_timed([str(CESO), "target", "add", "local", "--type", "local", "--path", str(store)], env)
        log_path = tmp / "worker.log"
        worker = subprocess.Popen(
            [str(CESO), "worker", "--host", "bench", "--concurrency", "1"],
            env=env,
            stdout=log_path.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        while " ready." not in log_path.read_text(errors="replace"):
            time.sleep(0.2)
        if args.via_cesod:
            from tests.support.cesod import Cesod

            access = tmp / "cesod-access.log"
            env_cesod = {**env, "CESO_METRICS__CESOD_PORT": "0", "CESO_CESOD__ACCESS_LOG": str(access)}
            daemon = Cesod(env_cesod, tmp / "cesod.log", access)
            if "serving the local operator on" not in daemon.output():
                raise RuntimeError(f"cesod has no operator socket:\n{daemon.output()[-2000:]}")
        run_timed([str(CESO), "host", "ping", "bench"], env)  # loads pyVmomi & co in the worker child
        baseline = worker_peak_rss_mib(worker.pid)
        log(f"worker peak RSS before any backup: {baseline:.0f} MiB")
        si = sim.connect()
        for gib in [int(s) for s in args.sizes.split(",")]:
            size = gib * GIB
            vm = f"disk{gib}g"
            create_vm(si, vm)
            flat = sim.datastore_dir() / vm / f"{vm}-flat.vmdk"
            log(f"writing a {gib} GiB disk")
            write_disk(flat, size)
            url = f"{sim.url.removesuffix('/sdk')}/folder/{vm}/{vm}-flat.vmdk?dcPath=ha-datacenter&dsName=LocalDS_0"
            for run in range(args.runs):
                log(f"{gib} GiB run {run + 1}: shell pipeline")
                pipe = shell(f"curl -s '{url}' | zstd -T0 -3 -q | sha256sum")
                log(f"{gib} GiB run {run + 1}: ceso backup create")
                reset_peak_rss(worker.pid)
                job = ceso_json(
                    env, "backup", "create", vm, "--target", "local", "--compress", "zstd", "--level", "3"
                )
                assert job["state"] == "succeeded", job
                stored = job["result"]["stored_bytes"]
                job_s, steps = job_timing(job)
                step_rows.append([f"{gib} GiB", run + 1, f"{job['_wall_s']:.2f}", f"{job_s:.2f}", steps])
                rows.append(
                    [
                        f"{gib} GiB",
                        run + 1,
                        f"{pipe:.2f}",
                        f"{job['_wall_s']:.2f}",
                        f"{job['_wall_s'] / pipe:.2f}",
                        f"{job_s:.2f}",
                        f"{job_s / pipe:.2f}",
                        f"{size / stored:.2f}",
                        f"{worker_peak_rss_mib(worker.pid):.0f}",
                    ]
                )
            backup_id = job["result"]["backup_id"]
            stored_flat = next(p for p in (store / vm / backup_id).iterdir() if "-flat" in p.name)
            for run in range(args.runs):
                put_url = url.replace(f"/folder/{vm}/", f"/folder/shell-{vm}-{run + 1}/")
                log(f"{gib} GiB run {run + 1}: restore beside zstd -d | curl -T")
                # Each side writes the whole disk into the page cache. Its output is deleted as soon as it
                # is timed, so its dirty pages are dropped rather than written back while the other side
                # runs; odd runs start with the shell, even runs with ceso.
                for side in ("shell", "ceso") if run % 2 == 0 else ("ceso", "shell"):
                    if side == "shell":
                        pipe = shell(f"zstd -dc -q '{stored_flat}' | curl -s -T - '{put_url}'")
                        written = f"shell-{vm}-{run + 1}"
                    else:
                        reset_peak_rss(worker.pid)
                        job = ceso_json(
                            env, "backup", "restore", backup_id, "--as", f"r-{vm}-{run + 1}", "--no-power-on"
                        )
                        assert job["state"] == "succeeded", job
                        peak = worker_peak_rss_mib(worker.pid)
                        written = f"r-{vm}-{run + 1}"
                    shutil.rmtree(sim.datastore_dir() / written, ignore_errors=True)
                job_s, steps = job_timing(job)
                step_rows.append(
                    [f"{gib} GiB restore", run + 1, f"{job['_wall_s']:.2f}", f"{job_s:.2f}", steps]
                )
                restore_rows.append(
                    [
                        f"{gib} GiB",
                        run + 1,
                        "shell" if run % 2 == 0 else "ceso",
                        f"{pipe:.2f}",
                        f"{job['_wall_s']:.2f}",
                        f"{job['_wall_s'] / pipe:.2f}",
                        f"{job_s:.2f}",
                        f"{job_s / pipe:.2f}",
                        f"{peak:.0f}",
                    ]
                )
            if not codecs:
                log("codec table")
                codecs = codec_table(sim, vm, size)
            flat.unlink()
    finally:
        if daemon is not None:
            forwarded = daemon.access_log.read_text().count('"backup.') if daemon.access_log.exists() else 0
            log(f"backup commands through cesod: {forwarded}")
            daemon.stop()
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\nWorker peak RSS before any backup (after a host.ping job): {baseline:.0f} MiB")
    print_table(
        "Backup: `curl | zstd -T0 -3 | sha256sum` vs `ceso backup create --compress zstd` (whole job, submit to success)",
        [
            "disk",
            "run",
            "shell s",
            "ceso command s",
            "command / shell",
            "ceso job s",
            "job / shell",
            "ratio",
            "worker peak RSS MiB (this job)",
        ],
        rows,
    )
    print_table(
        "Where a backup's time goes: whole command, created_at to finished_at, and each step (s)",
        ["disk", "run", "command", "job", "steps"],
        step_rows,
    )
    print_table(
        "Restore: `zstd -dc | curl -T` vs `ceso backup restore` (whole job: decompress, verify, PUT, create VM)",
        [
            "disk",
            "run",
            "first",
            "shell s",
            "ceso command s",
            "command / shell",
            "ceso job s",
            "job / shell",
            "worker peak RSS MiB (this job)",
        ],
        restore_rows,
    )
    print_table(
        "Codecs: store_stream from the datastore over HTTP into /dev/null",
        ["codec", "ratio", "MiB/s"],
        codecs,
    )


if __name__ == "__main__":
    main()
