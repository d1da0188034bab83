"""Benchmark ``ceso vm list`` on one simulated ESXi host with many VMs, against a naive pyVmomi loop.

What it measures, and why: listing VMs is what operators and agents run most, and the cost on a
real host is dominated by SOAP round trips. ceso reads every VM in one property-collector pass;
the naive way (``for vm in view.view: vm.name, vm.config...``) costs requests per VM. In the same
run, on the same simulator, it measures:

* whole-process wall time (median of ``--repeat`` runs, after one warm-up) of
  ``ceso --json vm list --host H`` and of a naive pyVmomi script (this file with ``--naive URL``:
  connect, loop, disconnect) reading the same fields by attribute access;
* HTTP requests each makes, counted by a byte-forwarding proxy in front of the simulator (login,
  version negotiation and logout included), and ceso's own SOAP count (``client.stats.total``
  of ``ceso.esxi.inventory.list_vms`` run in-process: the calls after login);
* the in-process time of the listing alone (ceso's ``list_vms`` vs the naive loop).

The naive loop reads ``vm.config`` once per VM (not once per field) and skips ``vm.snapshot``
(reading it unset kills the simulator's connection), so it is a conservative baseline.

Run: .venv/bin/python benchmarks/vm_list.py [--vms 1000] [--repeat 7] [--sim-delay-ms 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import (  # noqa: E402
    CESO,
    SIM_PASSWORD,
    RequestCountingProxy,
    ceso_env,
    exit_on_sigterm,
    log,
    median,
    print_table,
    register_host,
    run_timed,
)

TARGET_REQUEST_RATIO = 20.0
TARGET_TIME_RATIO = 10.0
TARGET_CESO_S = 1.0


def _pyvim_connect() -> Any:
    """pyVim.connect, typed as dynamic (its functions carry no annotations)."""
    from pyVim import connect

    return connect


def _connect(url: str) -> Any:
    parts = urlsplit(url)
    return _pyvim_connect().SmartConnect(
        protocol=parts.scheme, host=parts.hostname, port=parts.port, user="root", pwd=SIM_PASSWORD
    )


def naive_list(si: Any) -> list[dict[str, Any]]:
    """Read the fields ``vm list`` shows by plain attribute access (one request per access)."""
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    rows = []
    try:
        for vm in view.view:
            config = vm.config  # whole ConfigInfo in one request, reused for every config field
            devices = config.hardware.device
            rows.append(
                {
                    "name": vm.name,
                    "uuid": config.uuid,
                    "power_state": vm.runtime.powerState,
                    "cpus": config.hardware.numCPU,
                    "memory_mb": config.hardware.memoryMB,
                    "guest_id": config.guestId,
                    "template": config.template,
                    "vmx_path": config.files.vmPathName,
                    "disks": sum(isinstance(d, vim.vm.device.VirtualDisk) for d in devices),
                    "nics": sum(isinstance(d, vim.vm.device.VirtualEthernetCard) for d in devices),
                    "ips": [ip for nic in vm.guest.net or [] for ip in nic.ipAddress or []],
                }
            )
    finally:
        view.DestroyView()
    return rows


def naive_child(url: str) -> None:
    """``--naive URL``: the whole naive script as its own process; prints {"vms", "loop_s"}."""
    si = _connect(url)
    start = time.perf_counter()
    rows = naive_list(si)
    loop_s = time.perf_counter() - start
    _pyvim_connect().Disconnect(si)
    print(json.dumps({"vms": len(rows), "loop_s": loop_s}))


def seed(url: str, count: int, threads: int = 4) -> None:
    """Create ``count`` small Ubuntu-like VMs, ``threads`` sessions in parallel."""
    from tests.support.vms import vm_config_spec

    def make(names: list[str]) -> None:
        si = _connect(url)
        try:
            datacenter = si.RetrieveContent().rootFolder.childEntity[0]
            compute = datacenter.hostFolder.childEntity[0]
            pool, datastore = compute.resourcePool, compute.host[0].datastore[0].name
            for name in names:
                datacenter.vmFolder.CreateVM_Task(config=vm_config_spec(name, datastore), pool=pool)
        finally:
            _pyvim_connect().Disconnect(si)

    names = [f"ubuntu-{i:04d}" for i in range(count)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(make, [names[i::threads] for i in range(threads)]))


def ceso_in_process(url: str, repeat: int) -> tuple[float, float, dict[str, int]]:
    """Median seconds of ceso's list_vms (its reply parsed as XML), and of pyVmomi's reading of the
    same properties without ``config.hardware.device`` (diagnosis: what the device lists cost when
    pyVmomi builds them, and how close the XML read with them comes to a read without them), on one
    logged-in client; SOAP calls of one list_vms."""
    from ceso.esxi.client import EsxiClient
    from ceso.esxi.inventory import VM_PROPERTIES, list_vms
    from ceso.hosts.endpoint import parse_endpoint

    no_devices = [p for p in VM_PROPERTIES if p != "config.hardware.device"]

    client = EsxiClient(
        name="bench",
        endpoint=parse_endpoint(url),
        username="root",
        password=lambda: SIM_PASSWORD,
        thumbprint=None,
    ).connect()
    try:
        client.stats.calls.clear()
        list_vms(client)
        calls = dict(client.stats.calls)
        full, partial = [], []
        for _ in range(repeat):
            start = time.perf_counter()
            list_vms(client)
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            client.retrieve("VirtualMachine", no_devices)
            partial.append(time.perf_counter() - start)
    finally:
        client.logout()
    return median(full), median(partial), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--vms", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--sim-delay-ms", type=int, default=0, help="simulator delay per SOAP call (models a slower host)"
    )
    parser.add_argument("--naive", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        naive_child(args.naive)
        return

    exit_on_sigterm()
    from tests.support.simulator import SimulatorHost

    delay = ("-delay", f"*={args.sim_delay_ms}") if args.sim_delay_ms else ()
    with (
        tempfile.TemporaryDirectory(prefix="ceso-bench-") as tmp,
        SimulatorHost.start(extra_args=delay) as sim,
    ):
        log(f"simulator at {sim.url}; creating {args.vms} VMs")
        seed(sim.url, args.vms)
        log("VMs created; registering the host in a temporary ceso installation")
        env = ceso_env(Path(tmp))
        with RequestCountingProxy(sim.host, sim.port) as proxy:
            register_host(env, "bench", sim.url)
            register_host(env, "counted", proxy.url)  # same simulator, seen through the proxy
            ceso_cmd = [str(CESO), "--json", "vm", "list", "--host"]
            naive_cmd = [sys.executable, str(Path(__file__).resolve()), "--naive"]

            # Requests (one run each through the proxy; also warms the bytecode cache).
            log("counting requests through the proxy")
            proxy.reset()
            _, out = run_timed([*ceso_cmd, "counted"], env)
            ceso_vms, ceso_http = len(json.loads(out)), proxy.reset()
            _, out = run_timed([*naive_cmd, proxy.url], env)
            naive_vms, naive_http = json.loads(out)["vms"], proxy.reset()
            if not ceso_vms == naive_vms == args.vms:
                raise RuntimeError(f"expected {args.vms} VMs, ceso saw {ceso_vms}, naive saw {naive_vms}")

            # Whole-process wall time, interleaved so noise hits both alike.
            ceso_t: list[float] = []
            naive_t: list[float] = []
            naive_loop: list[float] = []
            for i in range(args.repeat):
                log(f"timing run {i + 1}/{args.repeat}")
                ceso_t.append(run_timed([*ceso_cmd, "bench"], env)[0])
                elapsed, out = run_timed([*naive_cmd, sim.url], env)
                naive_t.append(elapsed)
                naive_loop.append(json.loads(out)["loop_s"])

        log("in-process listing")
        ceso_loop, ceso_no_dev, ceso_soap = ceso_in_process(sim.url, args.repeat)
        log("stopping the simulator")

    log("done")
    c_wall, n_wall, n_loop = median(ceso_t), median(naive_t), median(naive_loop)
    soap = ", ".join(f"{k} {v}" for k, v in sorted(ceso_soap.items()))
    print_table(
        f"vm list, {args.vms} VMs on one simulated host, +{args.sim_delay_ms} ms per SOAP call "
        f"(median of {args.repeat})",
        ["measure", "ceso", "naive pyVmomi", "naive / ceso", "target"],
        [
            [
                "HTTP requests, whole process (proxy)",
                ceso_http,
                naive_http,
                f"{naive_http / ceso_http:.0f}x",
                f">= {TARGET_REQUEST_RATIO:.0f}x",
            ],
            [
                "SOAP calls of the listing (client.stats)",
                f"{sum(ceso_soap.values())} ({soap})",
                "-",
                "-",
                "-",
            ],
            [
                "whole-process wall time (s)",
                f"{c_wall:.3f}",
                f"{n_wall:.3f}",
                f"{n_wall / c_wall:.1f}x",
                f">= {TARGET_TIME_RATIO:.0f}x; ceso < {TARGET_CESO_S:.1f} s",
            ],
            [
                "listing only, in-process (s)",
                f"{ceso_loop:.3f}",
                f"{n_loop:.3f}",
                f"{n_loop / ceso_loop:.1f}x",
                "-",
            ],
            [
                "  pyVmomi read without config.hardware.device (s)",
                f"{ceso_no_dev:.3f}",
                "-",
                "-",
                "diagnosis",
            ],
        ],
    )
    print(f"\nceso runs (s): {' '.join(f'{t:.3f}' for t in ceso_t)}")
    print(f"naive runs (s): {' '.join(f'{t:.3f}' for t in naive_t)}")


if __name__ == "__main__":
    main()
