"""Shared plumbing of ceso's ESXi shell emulators (vim-cmd, vmkfstools, esxcli, sftp-server).

The emulators stand in for the tools of an ESXi host's shell, acting on a
simulated host (govmomi's simulator, see ops/simulator). They are test
fixtures, kept small and independent of ceso's own code (nothing from
``ceso`` is imported), so that a parsing or quoting mistake in ceso cannot
be mirrored and hidden by them.

Configuration: a JSON file named by ``$CESO_ESXI_SHELL_CONFIG`` (written by the
sshd fixture, re-read on every invocation so a test can change it)::

    {"sim_url": "http://127.0.0.1:PORT/sdk", "user": "root", "password": "x",
     "datastores": {"LocalDS_0": "/tmp/.../govcsim-...-LocalDS_0-1"},
     "log": "/tmp/.../esxi-shell.log", "state": "/tmp/.../esxi-shell-state.json",
     "faults": {"vim-cmd vmsvc/power.on": {"exit": 1, "stderr": "...", "stdout": "..."}},
     "hang": {"vim-cmd vmsvc/power.off": 30}, "fault_exit_status": 1,
     "ask_copied_question": false, "invalid_vms": [16], "no_message_exit_status": 1,
     "guest_reports": {"vm name": [["00:50:56:..", ["fe80::...", "192.0.2.5"]]]},
     "unnamed_volumes": ["6935c9b0-..."]}

What real hosts do, and the keys that make the emulators do it: ``invalid_vms``
(``Skipping invalid VM 'N'`` lines in getallvms), ``no_message_exit_status``
(``No message.`` exits 1 unless set to 0), ``guest_reports`` (what VMware Tools
report, link-local addresses first), ``unnamed_volumes`` (VMFS volumes with no
name), ``hang`` on a ``vim-cmd vmsvc/...`` command (hostd's task outlives a
killed vim-cmd), or on ``cat disk`` (reads of ``-flat.vmdk`` files start late). Always on: hostd's guestOS table, plain SFTP rename refused
for files (VMFS has no hard links), thin copies kept thin.

``/vmfs/volumes/<datastore>/...`` maps to the simulator's datastore directory.
Every invocation is appended to the log as one JSON line ``{"tool", "argv",
"pid"}`` before anything else happens, so tests can see exactly what ran.
The simulator is called with the header ``X-Ceso-Local-Shell``, which a
free-licensed simulator exempts from its license refusals — as a real free
ESXi lets its local vim-cmd do what its remote API refuses.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

VOLUMES = "/vmfs/volumes/"
CONFIG_ENV = "CESO_ESXI_SHELL_CONFIG"


def config() -> dict[str, Any]:
    with open(os.environ[CONFIG_ENV], encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


def log_invocation(tool: str, argv: list[str], **extra: Any) -> None:
    """Append one JSON line for this invocation to the shared log (locked, so lines never interleave)."""
    line = json.dumps({"tool": tool, "argv": argv, "pid": os.getpid(), "t": time.time(), **extra})
    with open(config()["log"], "a", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line + "\n")


def inject(key: str) -> None:
    """Apply a configured fault or hang for ``key`` (``"vim-cmd vmsvc/power.on"``), if any."""
    cfg = config()
    if key in cfg.get("hang", {}):
        time.sleep(float(cfg["hang"][key]))
    fault = cfg.get("faults", {}).get(key)
    if fault is not None:
        sys.stdout.write(fault.get("stdout", ""))
        sys.stderr.write(fault.get("stderr", ""))
        sys.exit(int(fault.get("exit", 1)))


def die(message: str, status: int = 1) -> NoReturn:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(status)


def host_path(path: str) -> Path:
    """The real file behind ``/vmfs/volumes/<ds>/rest``; exits 1 for any other path."""
    if not path.startswith(VOLUMES):
        die(f"{path}: not on a datastore (the emulator maps only {VOLUMES})")
    datastore, _, rest = path[len(VOLUMES) :].partition("/")
    stores = config()["datastores"]
    if datastore not in stores:
        die(f"{path}: no such datastore {datastore!r}")
    if ".." in rest.split("/"):
        die(f"{path}: refusing a path with ..")
    return Path(stores[datastore]) / rest


def datastore_path(path: str) -> str:
    """``/vmfs/volumes/ds/dir/f`` → ``[ds] dir/f``."""
    datastore, _, rest = path[len(VOLUMES) :].partition("/")
    return f"[{datastore}] {rest}"


@contextmanager
def state() -> Iterator[dict[str, Any]]:
    """The emulators' own small state (pending questions), read-modify-written under a lock."""
    path = Path(config()["state"])
    with open(path, "a+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read()
        data: dict[str, Any] = json.loads(text) if text.strip() else {}
        yield data
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(data))


def service_instance() -> Any:
    """A logged-in vim.ServiceInstance of the simulator, marked as the host's local shell."""
    from pyVmomi import SoapStubAdapter, vim

    cfg = config()
    stub = SoapStubAdapter(url=cfg["sim_url"], customHeaders={"X-Ceso-Local-Shell": "1"})
    si = vim.ServiceInstance("ServiceInstance", stub)
    si.content.sessionManager.Login(cfg["user"], cfg["password"])
    return si


def all_vms(si: Any) -> list[Any]:
    from pyVmomi import vim

    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    try:
        return list(view.view)
    finally:
        view.DestroyView()


def vmid_of(vm: Any) -> int:
    """The simulator's ``vm-12`` is ESXi's VM id 12."""
    return int("".join(c for c in vm._moId if c.isdigit()))


def fault_text(name: str, msg: str, kind: str = "vim") -> str:
    """A fault as vim-cmd prints it (inner quotes are not escaped, as on ESXi)."""
    return (
        f"({kind}.fault.{name}) {{\n"
        "   faultCause = (vmodl.MethodFault) null,\n"
        "   faultMessage = <unset>,\n"
        f'   msg = "{msg}"\n'
        "}\n"
    )


def print_fault(name: str, msg: str, kind: str = "vim") -> NoReturn:
    """Print a fault the way vim-cmd does and exit with the configured status (1 unless set)."""
    sys.stdout.write(fault_text(name, msg, kind))
    sys.exit(int(config().get("fault_exit_status", 1)))


def find_vm(si: Any, vmid: str) -> Any:
    for vm in all_vms(si):
        if vmid.isdigit() and vmid_of(vm) == int(vmid):
            return vm
    print_fault("NotFound", f'Unable to find a VM corresponding to "{vmid}"')


def props(obj: Any, paths: list[str]) -> dict[str, Any]:
    """Properties of one object through the property collector (unset ones are absent).

    Attribute access to an unset property (``vm.snapshot`` of a VM without one) breaks the
    simulator's response; the collector omits it instead.
    """
    from pyVmomi import vim, vmodl

    pc = vim.ServiceInstance("ServiceInstance", obj._stub).RetrieveContent().propertyCollector
    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=obj)],
        propSet=[vmodl.query.PropertyCollector.PropertySpec(type=type(obj), pathSet=paths)],
    )
    return {p.name: p.val for oc in pc.RetrieveContents([spec]) for p in oc.propSet or []}


def wait(task: Any) -> Any:
    """The simulator finishes tasks before answering; a failed one is printed as vim-cmd would.

    The task is read through the property collector: ``task.info`` breaks in pyVmomi for tasks on
    non-entities such as snapshots, at least against the simulator.
    """
    info = props(task, ["info.state", "info.error", "info.result"])
    if info.get("info.state") != "success":
        error = info.get("info.error")
        print_fault(type(error).__name__.rsplit(".", 1)[-1], getattr(error, "msg", "") or str(error))
    return info.get("info.result")
