"""Benchmark ``vm create`` from a template: ceso end to end against the bare pyVmomi calls, SOAP calls
per create, and creates/s across many hosts.

What it measures, and why: creating a VM from a template is ceso's main job. On a standalone host
it is four vSphere calls (MakeDirectory, CopyVirtualDisk_Task, CreateVM_Task, PowerOnVM_Task);
everything else ceso does around them (CLI, checks, SQL, queue, worker, locks, audit) is overhead.
In one run, on the same simulators:

* latency (``--creates`` times, interleaved): ``ceso --json vm create NAME --template T --ip ...
  --gateway ... --timeout 120`` as a subprocess, from just before the process is started to the
  moment its JSON outcome has been printed (and to its exit), beside this file with
  ``--bare URL``: a plain pyVmomi script (no ceso import) that logs in, reads the template once,
  then makes the same four calls with an equivalent ConfigSpec (same devices, new BIOS UUID,
  manual MAC, gzip+base64 cloud-init guestinfo in extraConfig), reading each task's state
  through the property collector as ceso does. The bare calls are written directly, not with
  ceso's spec builder. ceso's overhead = ceso end to end - the bare script's four calls (same
  iteration); ceso's time is split with the job row's timestamps into start-up + submit
  (created_at - process start), queue wait (started_at - created_at), run (finished_at -
  started_at) and the rest (finished_at to outcome printed: the CLI's polling). This part runs
  with ``CESO_NO_CESOD=1``: the CLI doing everything in its own process;
* latency of the CLI through a local cesod (``--creates`` times, interleaved with the bare script
  again): the same command while a ``cesod`` serves the operator socket of the same
  configuration, so the CLI hands it the request (``ceso.cli.via_cesod``); checked in cesod's
  access log. Split the same way;
* latency through cesod (``--creates`` times, interleaved with the bare script again): one JSON-RPC
  ``vm.create`` call with ``wait: true`` to a running ``cesod`` as an agent in standard mode, from
  sending the request to reading the answer. This is the long-running client agents use: no
  process start or imports per create. Split with the job row as above;
* profile: one more CLI create under cProfile (imports, host check, submit, wait);
* SOAP calls per create: a host registered through a request-counting proxy and without a
  worker; the CLI's own requests (``--no-wait``), then the job run in this process with
  ``ceso.jobs.runner.run_job`` (cold: after a logout; warm: pooled session), counted by
  ``client.stats`` and by the proxy; the bare script through the same proxy;
* throughput: ``--jobs`` creates submitted in this process with ``submit_job`` (requests built by
  ``ceso.vm.requests.create_request`` with ``check_host=False``), round robin over ``--hosts``
  simulated hosts, one ``ceso worker --host H --concurrency 1 --metrics-port 0`` per host; waited
  for by polling SQL; creates/s = jobs / (last finished_at - first created_at). Baseline: the same
  number of bare creates, one bare script process per host in parallel.

Isolation: a temporary directory (CESO_DATA_DIR, HOME, SQLite file, bytecode cache),
CESO_SECRET_STORE=file, Redis DB 5 (``CESO_BENCH_REDIS_URL`` overrides; only keys holding this
run's token are deleted), metrics on port 0; ``--database postgresql`` uses a temporary database
on postgres@127.0.0.1:5432, dropped at the end. Simulators and workers are stopped on exit, on
error and on SIGTERM.

Run: .venv/bin/python benchmarks/vm_create.py [--creates 20] [--jobs 200] [--hosts 8] [--database sqlite]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import pstats
import selectors
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

os.environ.setdefault("CESO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import (  # noqa: E402
    CESO,
    REDIS_URL,
    SIM_PASSWORD,
    RequestCountingProxy,
    ceso_env,
    ceso_worker,
    delete_redis_keys,
    exit_on_sigterm,
    log,
    median,
    percentile,
    pg_database,
    print_table,
    register_host,
)

TARGET_OVERHEAD_MS = 100.0
TEMPLATE_PAYLOAD = b"ubuntu golden image\n" * 4096
MS = 1000.0


# -- the bare pyVmomi script (``--bare``): no ceso import ------------------------------------------


def _guestinfo(name: str, mac: str, ip: str, gateway: str) -> dict[str, str]:
    """cloud-init metadata (netplan v2 matched by MAC) and userdata, gzip+base64, as guestinfo keys."""
    metadata = (
        f"instance-id: i-{uuid.uuid4().hex}\nlocal-hostname: {name}\nnetwork:\n  version: 2\n"
        f"  ethernets:\n    nic0:\n      match:\n        macaddress: '{mac}'\n      set-name: eth0\n"
        f"      addresses:\n      - {ip}\n      routes:\n      - to: default\n        via: {gateway}\n"
    )
    userdata = "#cloud-config\nusers:\n- name: ubuntu\n  sudo: ALL=(ALL) NOPASSWD:ALL\n  shell: /bin/bash\n"

    def enc(text: str) -> str:
        return base64.b64encode(gzip.compress(text.encode())).decode()

    return {
        "guestinfo.metadata": enc(metadata),
        "guestinfo.metadata.encoding": "gzip+base64",
        "guestinfo.userdata": enc(userdata),
        "guestinfo.userdata.encoding": "gzip+base64",
        "guestinfo.vendordata": "",
        "guestinfo.vendordata.encoding": "",
    }


def bare_child(url: str, template: str, names: list[str]) -> None:
    """``--bare URL --template T --names a,b``: log in, read the template, then per name the four
    calls of a create; prints JSON {"runs": [{"name", "calls_s", "soap", "start", "end"}], "setup_soap"}."""
    import random

    from pyVim import connect as pyvim_connect
    from pyVmomi import vim, vmodl

    connect: Any = pyvim_connect
    parts = urlsplit(url)
    si = connect.SmartConnect(
        protocol=parts.scheme, host=parts.hostname, port=parts.port, user="root", pwd=SIM_PASSWORD
    )
    stub = si._stub
    calls = 0
    original = stub.InvokeMethod

    def counted(*a: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*a)

    stub.InvokeMethod = counted
    content = si.RetrieveContent()
    pc = content.propertyCollector
    PC = vmodl.query.PropertyCollector  # noqa: N806  (pyVmomi's own name)

    def read(obj: Any, props: list[str]) -> dict[str, Any]:
        spec = PC.FilterSpec(
            objectSet=[PC.ObjectSpec(obj=obj, skip=False)],
            propSet=[PC.PropertySpec(type=type(obj), pathSet=props)],
        )
        result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
        return {p.name: p.val for oc in (result.objects if result else []) for p in oc.propSet or []}

    def wait(task: Any) -> Any:
        while True:
            info = read(task, ["info.state", "info.error", "info.result"])
            if info.get("info.state") == "success":
                return info.get("info.result")
            if info.get("info.state") == "error":
                raise info["info.error"]
            time.sleep(0.01)

    # Setup, not timed as "calls": where to create, and the template's hardware.
    dc = content.rootFolder.childEntity[0]
    pool, vm_folder = dc.hostFolder.childEntity[0].resourcePool, dc.vmFolder
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[PC.TraversalSpec(name="v", path="view", skip=False, type=vim.view.ContainerView)],
            )
        ],
        propSet=[
            PC.PropertySpec(
                type=vim.VirtualMachine,
                pathSet=["name", "config.hardware.device", "config.hardware.numCPU", "config.hardware.memoryMB",
                         "config.guestId", "summary.config.vmPathName"],
            )
        ],
    )  # fmt: skip
    result = pc.RetrievePropertiesEx([spec], PC.RetrieveOptions())
    view.DestroyView()
    src = next(
        {p.name: p.val for p in oc.propSet}
        for oc in result.objects
        if any(p.name == "name" and p.val == template for p in oc.propSet)
    )
    datastore = src["summary.config.vmPathName"].split("]", 1)[0] + "]"
    devices = src["config.hardware.device"]
    controller = next(d for d in devices if isinstance(d, vim.vm.device.VirtualSCSIController))
    disk = next(d for d in devices if isinstance(d, vim.vm.device.VirtualDisk))
    nic = next(d for d in devices if isinstance(d, vim.vm.device.VirtualEthernetCard))
    setup_soap = calls
    fm, vdm = content.fileManager, content.virtualDiskManager
    runs = []
    for i, name in enumerate(names):
        n0, start, wall_start = calls, time.perf_counter(), time.time()
        fm.MakeDirectory(name=f"{datastore} {name}", datacenter=dc, createParentDirectories=False)
        dest = f"{datastore} {name}/{name}.vmdk"
        wait(
            vdm.CopyVirtualDisk_Task(
                sourceName=disk.backing.fileName,
                sourceDatacenter=dc,
                destName=dest,
                destDatacenter=dc,
                destSpec=vim.VirtualDiskManager.VirtualDiskSpec(diskType="thin", adapterType="lsiLogic"),
                force=False,
            )
        )
        mac = "00:50:56:" + ":".join(
            f"{b:02x}" for b in (random.randrange(0x40), random.randrange(256), random.randrange(256))
        )
        dev = vim.vm.device
        config = vim.vm.ConfigSpec(
            name=name,
            guestId=src["config.guestId"],
            numCPUs=src["config.hardware.numCPU"],
            memoryMB=src["config.hardware.memoryMB"],
            uuid=str(uuid.uuid4()),
            files=vim.vm.FileInfo(vmPathName=f"{datastore} {name}/{name}.vmx"),
            deviceChange=[
                dev.VirtualDeviceSpec(
                    operation="add", device=type(controller)(key=-100, busNumber=0, sharedBus="noSharing")
                ),
                dev.VirtualDeviceSpec(
                    operation="add",
                    device=dev.VirtualDisk(
                        key=-200,
                        controllerKey=-100,
                        unitNumber=disk.unitNumber,
                        capacityInKB=disk.capacityInKB,
                        backing=dev.VirtualDisk.FlatVer2BackingInfo(
                            fileName=dest, diskMode="persistent", thinProvisioned=True
                        ),
                    ),
                ),
                dev.VirtualDeviceSpec(
                    operation="add",
                    device=type(nic)(
                        key=-300,
                        addressType="manual",
                        macAddress=mac,
                        backing=dev.VirtualEthernetCard.NetworkBackingInfo(deviceName=nic.backing.deviceName),
                        connectable=dev.VirtualDevice.ConnectInfo(startConnected=True, connected=True),
                    ),
                ),
            ],
            extraConfig=[
                vim.option.OptionValue(key=k, value=v)
                for k, v in _guestinfo(name, mac, f"192.0.2.{10 + i % 200}/24", "192.0.2.1").items()
            ],
        )
        vm = wait(vm_folder.CreateVM_Task(config=config, pool=pool))
        wait(vm.PowerOnVM_Task())
        runs.append(
            {"name": name, "calls_s": time.perf_counter() - start, "soap": calls - n0,
             "start": wall_start, "end": time.time()}
        )  # fmt: skip
    connect.Disconnect(si)
    print(json.dumps({"runs": runs, "setup_soap": setup_soap}))


def bare_cmd(url: str, template: str, names: list[str]) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--bare", url, "--template", template,
            "--names", ",".join(names)]  # fmt: skip


# -- ceso through the CLI -------------------------------------------------------------------------


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).astimezone(UTC).timestamp()


def ceso_create(env: dict[str, str], cmd: list[str]) -> dict[str, Any]:
    """Run one ``ceso --json vm create`` and time it: start (wall clock), outcome printed, exit."""
    t0_wall, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    buf, printed = b"", None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            if not sel.select(180):
                proc.kill()
                raise RuntimeError(f"{' '.join(cmd)}: no output in 180 s")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buf += chunk
            if printed is None:
                with contextlib.suppress(ValueError):
                    json.loads(buf)
                    printed = time.perf_counter()
    stderr = proc.stderr.read() if proc.stderr else b""
    proc.wait()
    exited = time.perf_counter()
    if proc.returncode != 0 or printed is None:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {(buf + stderr).decode()[-2000:]}")
    job = json.loads(buf)
    if job.get("state") != "succeeded":
        raise RuntimeError(f"job did not succeed: {json.dumps(job)[:2000]}")
    created, started, finished = (_ts(job[k]) for k in ("created_at", "started_at", "finished_at"))
    return {
        "e2e": printed - t0,
        "exit": exited - t0,
        "startup_submit": created - t0_wall,
        "queued": started - created,
        "run": finished - started,
        "rest": (printed - t0) - (finished - t0_wall),
        "steps": {s["name"]: s.get("duration_s", 0.0) for s in job.get("steps", [])},
        "id": job["id"],
    }


def cli_create_cmd(name: str, template: str, host: str, ip: str, *extra: str) -> list[str]:
    return [str(CESO), "--json", "vm", "create", name, "--template", template, "--host", host,
            "--ip", ip, "--gateway", "192.0.2.1", *extra]  # fmt: skip


def run_bare(env: dict[str, str], url: str, template: str, names: list[str]) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    proc = subprocess.run(bare_cmd(url, template, names), env=env, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"bare script failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return elapsed, json.loads(proc.stdout)


def profile_cli(env: dict[str, str], cmd: list[str], out: Path) -> list[tuple[str, float]]:
    """One CLI create under cProfile; the cumulative seconds of the parts that matter."""
    prof = out / "create.prof"
    argv = [sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "ceso", *cmd[1:]]
    subprocess.run(argv, env=env, capture_output=True, timeout=300, check=True)
    stats: Any = pstats.Stats(str(prof))
    total = stats.total_tt
    wanted = {
        ("<frozen importlib._bootstrap>", "_find_and_load"): "imports (all, cumulative)",
        ("requests.py", "create_request"): "create_request (validate, SQL, template, host check)",
        ("requests.py", "_check_free"): "  of which _check_free (login + find VM on the host)",
        ("client.py", "connect"): "    of which EsxiClient.connect (login)",
        ("submit.py", "submit_job"): "submit_job (insert, audit, publish)",
        ("wait.py", "wait_for_job"): "wait_for_job (polling the row)",
        ("~", "<built-in method time.sleep>"): "  of which time.sleep",
        ("runtime.py", "close"): "runtime.close at exit (logout)",
    }
    found: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for (suffix, name), label in wanted.items():
            if func == name and filename.endswith(suffix):
                found[label] = max(found.get(label, 0.0), ct)
    return [
        ("whole process (cProfile)", total),
        *[(label, found.get(label, 0.0)) for label in wanted.values()],
    ]


def import_times(env: dict[str, str], cmd: list[str]) -> list[tuple[str, float]]:
    """One CLI create with ``-X importtime``: total import seconds, and per package the cumulative time
    of its outermost imports (those not made by the same package), biggest first."""
    argv = [sys.executable, "-X", "importtime", "-m", "ceso", *cmd[1:]]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=True)
    entries = []
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _self, cumulative, name = line[len("import time:") :].split("|", 2)
            level = (len(name) - len(name.lstrip(" ")) - 1) // 2
            entries.append((level, name.strip().split(".")[0], int(cumulative) / 1e6))
    total, by_package = 0.0, {}
    stack: list[tuple[int, str]] = []  # (level, package) of the ancestors; parents print after children
    for level, package, cumulative in reversed(entries):
        while stack and stack[-1][0] >= level:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if parent is None:
            total += cumulative
        if package != parent:
            by_package[package] = by_package.get(package, 0.0) + cumulative
        stack.append((level, package))
    ranked = sorted(((k, v) for k, v in by_package.items() if k != "ceso"), key=lambda kv: -kv[1])
    return [("all imports", total), *ranked[:9]]


# -- SQL polling ----------------------------------------------------------------------------------


def wait_rows(engine: Any, ids: list[str], timeout: float = 900) -> list[Any]:
    """Poll the job rows every 0.1 s until all have ended; raise if one did not succeed."""
    from sqlmodel import Session, col, select

    from ceso.db.models import TERMINAL_STATES, Job

    deadline = time.monotonic() + timeout
    while True:
        with Session(engine) as session:
            found = list(session.exec(select(Job).where(col(Job.id).in_(ids))).all())
        if len(found) == len(ids) and all(j.state in TERMINAL_STATES for j in found):
            bad = [
                f"{j.id} {j.state} {j.error_code}: {j.error_message}" for j in found if j.state != "succeeded"
            ]
            if bad:
                raise RuntimeError("jobs did not succeed:\n" + "\n".join(bad[:10]))
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"jobs not finished after {timeout}s")
        time.sleep(0.1)


def create_req(runtime: Any, name: str, template: str, host: str, ip: str) -> Any:
    from ceso.vm.requests import create_request
    from ceso.vm.specs import CreateVm

    spec = CreateVm.parse(
        {"name": name, "template": template, "host": host, "ip": ip, "gateway": "192.0.2.1"}
    )
    request, _ = create_request(runtime, spec, idempotency_key=None, check_host=False)
    return request


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--creates", type=int, default=20, help="latency: creates through the CLI")
    parser.add_argument("--jobs", type=int, default=200, help="throughput: creates over all hosts")
    parser.add_argument("--hosts", type=int, default=8, help="throughput: simulated hosts, one worker each")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--skip", default="", help="comma-separated parts to skip: latency,cli-cesod,cesod,soap,throughput"
    )
    parser.add_argument("--bare", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--template", help=argparse.SUPPRESS)
    parser.add_argument("--names", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_child(args.bare, args.template, args.names.split(","))
        return
    skip = {s for s in args.skip.split(",") if s}
    exit_on_sigterm()
    log(f"start: {uptime()}")

    from tests.support.simulator import start_hosts
    from tests.support.vms import make_template

    token = uuid.uuid4().hex[:6]
    hosts = [f"vc-{token}-{i}" for i in range(args.hosts)]
    counted = f"vc-{token}-counted"  # hosts[0]'s simulator through the counting proxy, no worker
    template = f"golden-{token}"
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ceso-bench-")))
        env = ceso_env(tmp)
        env["CESO_METRICS__WORKER_PORT"] = "0"
        if args.database == "postgresql":
            env["CESO_DATABASE_URL"] = stack.enter_context(pg_database(f"ceso_bench_{token}"))
        stack.callback(delete_redis_keys, REDIS_URL, token)
        sims = start_hosts(args.hosts)
        for sim in sims:
            stack.callback(sim.stop)
        proxy = stack.enter_context(RequestCountingProxy(sims[0].host, sims[0].port))
        log(f"{args.hosts} simulators up; templates and hosts ({args.database})")
        for sim in sims:
            si = sim.connect()
            make_template(si, sim.datastore_dir(), template, TEMPLATE_PAYLOAD)
            si.content.sessionManager.Logout()
        for name, sim in zip(hosts, sims, strict=True):
            register_host(env, name, sim.url)
        register_host(env, counted, proxy.url)

        os.environ.update({k: v for k, v in env.items() if k.startswith("CESO_") or k == "HOME"})
        from ceso.runtime import get_runtime
        from ceso.vm.templates import add_template

        runtime = get_runtime()
        stack.callback(runtime.close)
        for host in [*hosts, counted]:
            status = add_template(runtime, template, host).status
            if status != "passed":
                raise RuntimeError(f"template on {host}: {status}")
        runtime.close()

        workers = {hosts[0]: stack.enter_context(ceso_worker(env, hosts[0], tmp / "worker-0.log"))}
        url0 = sims[0].url
        seq = iter(range(10**6))

        def ip() -> str:
            return f"192.0.2.{10 + next(seq) % 240}/24"

        own_env = {**env, "CESO_NO_CESOD": "1"}  # the CLI doing all the work in its own process
        if "latency" not in skip:
            log("latency: warm-up (one CLI create, one bare script)")
            ceso_create(
                own_env, cli_create_cmd(f"warm-{token}", template, hosts[0], ip(), "--timeout", "120")
            )
            run_bare(env, url0, template, [f"bwarm-{token}"])
            results["latency"] = cli_latency(
                own_env, runtime, args.creates, template, hosts[0], url0, f"c-{token}", ip
            )
            log("profile: one CLI create under cProfile")
            results["profile"] = profile_cli(
                own_env, cli_create_cmd(f"prof-{token}", template, hosts[0], ip(), "--timeout", "120"), tmp
            )
            results["imports"] = import_times(
                own_env, cli_create_cmd(f"imp-{token}", template, hosts[0], ip(), "--timeout", "120")
            )

        if "cli-cesod" not in skip:
            from tests.support.cesod import Cesod

            log("latency through a local cesod: starting cesod (operator socket)")
            daemon = Cesod(
                {
                    **env,
                    "CESO_METRICS__CESOD_PORT": "0",
                    "CESO_CESOD__ACCESS_LOG": str(tmp / "cesod-op-access.log"),
                },
                tmp / "cesod-op.log",
                tmp / "cesod-op-access.log",
            )
            try:
                if "serving the local operator on" not in daemon.output():
                    raise RuntimeError(f"cesod has no operator socket:\n{daemon.output()[-2000:]}")
                ceso_create(
                    env, cli_create_cmd(f"owarm-{token}", template, hosts[0], ip(), "--timeout", "120")
                )
                results["cli_cesod"] = cli_latency(
                    env, runtime, args.creates, template, hosts[0], url0, f"o-{token}", ip
                )
                results["imports_cesod"] = import_times(
                    env, cli_create_cmd(f"oimp-{token}", template, hosts[0], ip(), "--timeout", "120")
                )
                forwarded = daemon.access_log.read_text().count('"vm.create"')
                if forwarded < args.creates + 1:
                    raise RuntimeError(f"only {forwarded} creates went through cesod")
            finally:
                daemon.stop()

        if "cesod" not in skip:
            results["cesod"] = cesod_latency(env, tmp, args.creates, template, hosts[0], url0, token, ip)

        if "soap" not in skip:
            results["soap"] = soap_counts(env, runtime, proxy, counted, template, token, ip)

        if "throughput" not in skip:
            log(f"throughput: starting {args.hosts - 1} more workers")
            for i, host in enumerate(hosts[1:], 1):
                workers[host] = stack.enter_context(ceso_worker(env, host, tmp / f"worker-{i}.log"))
            log("throughput: warm-up, one create per host")
            from ceso.jobs.submit import submit_job

            ids = [submit_job(runtime, create_req(runtime, f"tw{i}-{token}", template, h, ip()))[0].id
                   for i, h in enumerate(hosts)]  # fmt: skip
            wait_rows(runtime.engine, ids)
            load_before = uptime()
            log(f"throughput: {args.jobs} creates over {args.hosts} hosts ({load_before})")
            start = time.perf_counter()
            ids = [
                submit_job(
                    runtime, create_req(runtime, f"t{i}-{token}", template, hosts[i % args.hosts], ip())
                )[0].id
                for i in range(args.jobs)
            ]
            submit_s = time.perf_counter() - start
            done = wait_rows(runtime.engine, ids)
            wall_s = time.perf_counter() - start
            span = (max(j.finished_at for j in done) - min(j.created_at for j in done)).total_seconds()
            runs = sorted((j.finished_at - j.started_at).total_seconds() for j in done)
            queued = sorted((j.started_at - j.created_at).total_seconds() for j in done)
            load_after = uptime()
            log(f"throughput: bare baseline, {args.hosts} bare scripts in parallel ({load_after})")
            per = max(1, args.jobs // args.hosts)
            start = time.perf_counter()
            procs = [
                subprocess.Popen(bare_cmd(sim.url, template, [f"tb{i}-{h}-{token}" for i in range(per)]),
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for h, sim in enumerate(sims)
            ]  # fmt: skip
            outs = [p.communicate(timeout=900) for p in procs]
            bare_wall = time.perf_counter() - start
            if any(p.returncode for p in procs):
                raise RuntimeError(f"bare scripts failed: {[o[1][-500:] for o in outs]}")
            bare_runs = [r for o in outs for r in json.loads(o[0])["runs"]]
            bare_span = max(r["end"] for r in bare_runs) - min(r["start"] for r in bare_runs)
            results["throughput"] = {
                "span": span, "submit_s": submit_s, "wall_s": wall_s, "run": runs, "queued": queued,
                "bare_n": len(bare_runs), "bare_span": bare_span, "bare_wall": bare_wall,
                "load": (load_before, load_after),
            }  # fmt: skip
        log(f"stopping workers and simulators ({uptime()})")

    report(args, results)


def cli_latency(
    env: dict[str, str], runtime: Any, creates: int, template: str, host: str, url: str, prefix: str, ip: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``creates`` CLI creates interleaved with bare runs; samples carry the job's publish timings."""
    samples, bare = [], []
    for i in range(creates):
        log(f"latency {prefix}: create {i + 1}/{creates} ({uptime().split('load average: ')[-1]})")
        samples.append(
            ceso_create(env, cli_create_cmd(f"{prefix}{i}", template, host, ip(), "--timeout", "120"))
        )
        wall, out = run_bare(env, url, template, [f"b{prefix}{i}"])
        bare.append({"wall": wall, **out["runs"][0]})
    published = {j.id: j for j in wait_rows(runtime.engine, [x["id"] for x in samples])}
    for x in samples:
        j = published[x["id"]]
        x["to_published"] = (j.published_at - j.created_at).total_seconds()
        x["published_to_start"] = (j.started_at - j.published_at).total_seconds()
    return samples, bare


def cesod_latency(
    env: dict[str, str], tmp: Path, creates: int, template: str, host: str, url: str, token: str, ip: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Creates through one running cesod (JSON-RPC ``vm.create`` with ``wait``), interleaved with bare runs."""
    from tests.support.cesod import Cesod

    added = subprocess.run([str(CESO), "--json", "agent", "add", f"bench-{token}", "--mode", "standard"],
                           env=env, capture_output=True, text=True, check=True)  # fmt: skip
    agent_token = json.loads(added.stdout)["token"]
    daemon = Cesod({**env, "CESO_METRICS__CESOD_PORT": "0"}, tmp / "cesod.log", tmp / "cesod-access.log")
    try:

        def create(name: str) -> dict[str, Any]:
            params = {"name": name, "template": template, "host": host, "ip": ip(), "gateway": "192.0.2.1",
                      "wait": True, "timeout": 120}  # fmt: skip
            t0_wall, t0 = time.time(), time.perf_counter()
            answer = daemon.call(agent_token, "vm.create", params)
            e2e = time.perf_counter() - t0
            job = answer.get("result")
            if not job or job.get("state") != "succeeded":
                raise RuntimeError(f"cesod create failed: {json.dumps(answer)[:2000]}")
            created, started, finished = (_ts(job[k]) for k in ("created_at", "started_at", "finished_at"))
            return {
                "e2e": e2e,
                "startup_submit": created - t0_wall,
                "queued": started - created,
                "run": finished - started,
                "rest": e2e - (finished - t0_wall),
                "steps": {s["name"]: s.get("duration_s", 0.0) for s in job.get("steps", [])},
            }

        log("cesod: warm-up (one create)")
        create(f"dwarm-{token}")
        samples, bare = [], []
        for i in range(creates):
            log(f"cesod: create {i + 1}/{creates}")
            samples.append(create(f"d{i}-{token}"))
            wall, out = run_bare(env, url, template, [f"db{i}-{token}"])
            bare.append({"wall": wall, **out["runs"][0]})
        return samples, bare
    finally:
        daemon.stop()


def soap_counts(
    env: dict[str, str],
    runtime: Any,
    proxy: RequestCountingProxy,
    counted: str,
    template: str,
    token: str,
    ip: Any,
) -> dict[str, Any]:
    """SOAP/HTTP requests of one create: the CLI process, the job (cold and warm), the bare script."""
    from ceso.hosts.registry import client_for
    from ceso.jobs.runner import run_job
    from ceso.jobs.submit import submit_job

    log("soap: CLI create --no-wait through the counting proxy (host without worker)")
    proxy.reset()
    cmd = cli_create_cmd(f"s0-{token}", template, counted, ip(), "--no-wait")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
    cli_http = proxy.reset()
    job_id = json.loads(proc.stdout)["id"]
    out: dict[str, Any] = {"cli_http": cli_http}
    runtime.close()  # cold: this process logs in again, as a fresh worker child would
    for label, first in [("cold", job_id), ("warm", None)]:
        jid = first
        if jid is None:
            jid = submit_job(runtime, create_req(runtime, f"s1-{token}", template, counted, ip()))[0].id
            client_for(runtime, counted).stats.calls.clear()
            proxy.reset()
        run_job(runtime, jid)
        (row,) = wait_rows(runtime.engine, [jid], timeout=5)
        stats = client_for(runtime, counted).stats
        out[label] = {"http": proxy.reset(), "soap": stats.total, "by_method": dict(stats.calls)}
        log(f"soap: {label} job {row.id}: {out[label]['soap']} SOAP calls")
    _, bare = run_bare(env, proxy.url, template, [f"s2-{token}"])
    out["bare_http"] = proxy.reset()
    out["bare_calls"] = bare["runs"][0]["soap"]
    out["bare_setup"] = bare["setup_soap"]
    return out


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    def row(label: str, values: list[float], digits: int = 1) -> list[str]:
        return [label, f"{median(values) * MS:.{digits}f}", f"{percentile(values, 95) * MS:.{digits}f}",
                f"{min(values) * MS:.{digits}f}", f"{max(values) * MS:.{digits}f}"]  # fmt: skip

    for key, how in (
        ("latency", "the CLI alone (CESO_NO_CESOD=1)"),
        ("cli_cesod", "the CLI through a local cesod"),
    ):
        if key not in results:
            continue
        samples, bare = results[key]
        n = len(samples)
        e2e = [s["e2e"] for s in samples]
        calls = [b["calls_s"] for b in bare]
        overhead = [s["e2e"] - b["calls_s"] for s, b in zip(samples, bare, strict=True)]
        overhead_whole = [s["e2e"] - b["wall"] for s, b in zip(samples, bare, strict=True)]
        print_table(
            f"vm create from a template, {how}, {n} creates, one idle worker (concurrency 1), {args.database} (ms)",
            ["measure", "p50", "p95", "min", "max"],
            [
                row("ceso: CLI start to outcome printed", e2e),
                row("ceso: CLI start to process exit", [s["exit"] for s in samples]),
                row(
                    "  start-up + submit (created_at - process start)", [s["startup_submit"] for s in samples]
                ),
                row("  queue wait (started_at - created_at)", [s["queued"] for s in samples]),
                row("    created_at to published_at", [s["to_published"] for s in samples]),
                row(
                    "    published_at to started_at (delivery, claim)",
                    [s["published_to_start"] for s in samples],
                ),
                row("  job run (finished_at - started_at)", [s["run"] for s in samples]),
                row("  rest (finished_at to outcome printed)", [s["rest"] for s in samples]),
                row("bare pyVmomi: the four calls (in its process)", calls),
                row("bare pyVmomi: whole script process", [b["wall"] for b in bare]),
                row("ceso overhead = ceso e2e - bare four calls", overhead),
                row("ceso e2e - bare whole process", overhead_whole),
            ],
        )
        print(
            f"\n{how}: ceso overhead p50 {median(overhead) * MS:.0f} ms (target < {TARGET_OVERHEAD_MS:.0f} ms); "
            f"ceso e2e / bare calls p50 = {median(e2e) / median(calls):.0f}x"
        )
        steps: dict[str, list[float]] = {}
        for s in samples:
            for k, v in s["steps"].items():
                steps.setdefault(k, []).append(v)
        print_table(
            f"job steps, from the job row, {how} (ms)",
            ["step", "p50", "p95", "min", "max"],
            [row(k, v) for k, v in steps.items()]
            + [
                row("sum of steps", [sum(x["steps"].values()) for x in samples]),
                row("job run - sum of steps (claim, step records, audit, result)",
                    [x["run"] - sum(x["steps"].values()) for x in samples]),
            ],
        )  # fmt: skip
    if "cesod" in results:
        samples, bare = results["cesod"]
        overhead = [s["e2e"] - b["calls_s"] for s, b in zip(samples, bare, strict=True)]
        print_table(
            f"vm create through cesod (JSON-RPC vm.create with wait), {len(samples)} creates, {args.database} (ms)",
            ["measure", "p50", "p95", "min", "max"],
            [
                row("cesod: request sent to answer read", [s["e2e"] for s in samples]),
                row("  request to created_at (auth, checks, insert)", [s["startup_submit"] for s in samples]),
                row("  queue wait (started_at - created_at)", [s["queued"] for s in samples]),
                row("  job run (finished_at - started_at)", [s["run"] for s in samples]),
                row("  rest (finished_at to answer read)", [s["rest"] for s in samples]),
                row("bare pyVmomi: the four calls", [b["calls_s"] for b in bare]),
                row("ceso overhead through cesod = e2e - bare four calls", overhead),
            ],
        )
        print(
            f"\nceso overhead through cesod p50 {median(overhead) * MS:.0f} ms (target < {TARGET_OVERHEAD_MS:.0f} ms)"
        )
    if "profile" in results:
        print_table(
            "one CLI create under cProfile (cumulative s; cProfile slows Python code)",
            ["part", "s"],
            [[k, f"{v:.3f}"] for k, v in results["profile"]],
        )
    for key, how in (("imports", "alone"), ("imports_cesod", "through a local cesod")):
        if key in results:
            print_table(
                f"one CLI create {how} with -X importtime (s; per package, outermost imports, cumulative: they nest)",
                ["import", "s"],
                [[k, f"{v:.3f}"] for k, v in results[key]],
            )
    if "soap" in results:
        s = results["soap"]
        warm = ", ".join(f"{k} {v}" for k, v in sorted(s["warm"]["by_method"].items()))
        print_table(
            "requests per create",
            ["who", "SOAP calls (client.stats)", "HTTP requests (proxy)"],
            [
                ["ceso CLI process (validate, check name on host, submit; --no-wait)", "-", s["cli_http"]],
                ["ceso job, cold (login first, as a fresh worker child)", s["cold"]["soap"], s["cold"]["http"]],
                ["ceso job, warm (pooled session)", s["warm"]["soap"], s["warm"]["http"]],
                ["bare script: the four calls", s["bare_calls"], "-"],
                ["bare script: whole process (login, template read, calls, logout)",
                 s["bare_setup"] + s["bare_calls"], s["bare_http"]],
            ],
        )  # fmt: skip
        print(f"\nwarm job SOAP calls by method: {warm}")
        print(f"ratio warm job / bare calls: {s['warm']['soap'] / s['bare_calls']:.1f}x")
    if "throughput" in results:
        t = results["throughput"]
        rate, bare_rate = args.jobs / t["span"], t["bare_n"] / t["bare_span"]
        print_table(
            f"throughput, {args.jobs} creates over {args.hosts} hosts, one worker each (concurrency 1), {args.database}",
            ["path", "creates/s", "ms per create", "vs bare", "notes"],
            [
                ["bare pyVmomi, one script per host in parallel", f"{bare_rate:.1f}", f"{MS / bare_rate:.1f}", "1x",
                 f"{t['bare_n']} creates, {t['bare_wall']:.1f} s wall incl. start-up"],
                [f"ceso, submit_job + {args.hosts} workers", f"{rate:.1f}", f"{MS / rate:.1f}", f"{bare_rate / rate:.1f}x slower",
                 f"submit_job alone {args.jobs / t['submit_s']:.0f}/s; job run p50 {median(t['run']) * MS:.0f} ms, "
                 f"queue wait p50 {median(t['queued']) * MS:.0f} ms"],
            ],
        )  # fmt: skip
        print(f"\nload: {t['load'][0]} -> {t['load'][1]}")


if __name__ == "__main__":
    main()
