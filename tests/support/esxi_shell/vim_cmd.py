"""``vim-cmd`` of an emulated ESXi host (see emulator.py): VM inventory, power, snapshots, registration.

Output follows ESXi's (docs/ssh-route.md lists the sources): getallvms'
columns, ``Retrieved runtime info`` / ``Powered on``, the snapshot tree with
its "Desciption" spelling, faults printed as ``(vim.fault.X) {...}``.
``solo/registervm`` reads the .vmx itself (the simulator's RegisterVM_Task
does not) and creates the VM it describes over the disks already in place.
Differences: ``power.reboot`` resets (the simulator has no RebootGuest).
"""

from __future__ import annotations

import sys
import time
from typing import Any

import emulator as emu
import vmxfile


def getallvms(si: Any) -> None:
    """The inventory as hostd prints it: each column as wide as its widest value or title, three
    spaces apart, values left-aligned, titles centred (rounded down), the annotation last and
    unpadded, a multi-line annotation on several lines. A registration the host cannot read
    (``invalid_vms`` in the configuration) is a ``Skipping invalid VM 'N'`` line, printed before
    the header and after the rows as real hosts do (captures in tests/ssh/fixtures)."""
    invalid = [str(v) for v in emu.config().get("invalid_vms", [])]
    for vmid in invalid[: len(invalid) // 2 + len(invalid) % 2]:
        print(f"Skipping invalid VM '{vmid}'")
    vms = sorted(emu.all_vms(si), key=emu.vmid_of)
    rows = [
        (
            str(emu.vmid_of(vm)),
            vm.name,
            vm.config.files.vmPathName,
            vm.config.guestId or "",
            vm.config.version,
        )
        for vm in vms
    ]
    titles = ("Vmid", "Name", "File", "Guest OS", "Version")
    widths = [max([len(t)] + [len(r[i]) for r in rows]) for i, t in enumerate(titles)]
    header = [(" " * ((w - len(t)) // 2) + t).ljust(w) for t, w in zip(titles, widths, strict=True)]
    print("   ".join(header) + "   Annotation")
    for vm, row in zip(vms, rows, strict=True):
        cells = [v.ljust(w) for v, w in zip(row, widths, strict=True)]
        print("   ".join([*cells, vm.config.annotation or ""]).rstrip())
    for vmid in invalid[len(invalid) // 2 + len(invalid) % 2 :]:
        print(f"Skipping invalid VM '{vmid}'")


def power(si: Any, action: str, vmid: str) -> None:
    vm = emu.find_vm(si, vmid)
    if action == "getstate":
        state = {"poweredOn": "Powered on", "poweredOff": "Powered off", "suspended": "Suspended"}
        print("Retrieved runtime info")
        print(state[str(vm.runtime.powerState)])
        return
    if action == "on":
        print("Powering on VM:")
        sys.stdout.flush()
        ask_copied_question(vmid)
        emu.wait(vm.PowerOnVM_Task())
    elif action == "off":
        print("Powering off VM:")
        emu.wait(vm.PowerOffVM_Task())
    elif action in ("reset", "reboot"):
        print("Reset VM:")
        emu.wait(vm.ResetVM_Task())
    elif action == "shutdown":
        vm.ShutdownGuest()
    else:
        emu.die(f"Unknown command: 'power.{action}'")


def ask_copied_question(vmid: str) -> None:
    """With ``ask_copied_question`` set, block as ESXi does until ``vmsvc/message`` answers it."""
    if not emu.config().get("ask_copied_question"):
        return
    with emu.state() as st:
        st.setdefault("questions", {})[vmid] = {"id": "_vmx1", "answer": None}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with emu.state() as st:
            answer = st["questions"].get(vmid, {}).get("answer")
            if answer is not None:
                del st["questions"][vmid]
                if answer == "0":
                    emu.print_fault("InvalidState", "The operation is not allowed in the current state.")
                return
        time.sleep(0.1)
    emu.die("question not answered")


def message(vmid: str, args: list[str]) -> None:
    with emu.state() as st:
        pending = st.get("questions", {}).get(vmid)
        if not args:
            if pending is None or pending["answer"] is not None:
                # What hosts print with no pending question; the exit status is not 0 on all of
                # them, so the emulator takes the strict side unless told otherwise.
                print("No message.")
                sys.stdout.flush()
                sys.exit(int(emu.config().get("no_message_exit_status", 1)))
            print(f"Virtual machine message {pending['id']}:")
            print("msg.uuid.altered:This virtual machine might have been moved or copied.")
            print(
                "In order to configure certain management and networking features, VMware ESX needs to know if this virtual machine was moved or copied."
            )
            print()
            print('If you don\'t know, answer "I _copied it".')
            print("   0. Cancel (Cancel)")
            print("   1. I _moved it (I _moved it)")
            print("   2. I _copied it (I _copied it) [default]")
            print("Answer the question with one of the choices above:")
            return
        if pending is None or pending["id"] != args[0] or args[1] not in ("0", "1", "2"):
            emu.print_fault("InvalidArgument", "A specified parameter was not correct: questionId")
        pending["answer"] = args[1]


def snapshot_tree(tree: list[Any], depth: int = 1) -> list[str]:
    lines = []
    for node in tree:
        dashes = "--" * depth
        created = node.createTime
        lines += [
            f"{dashes}Snapshot Name        : {node.name}",
            f"{dashes}Snapshot Id        : {node.id}",
            f"{dashes}Snapshot Desciption  : {node.description}",
            f"{dashes}Snapshot Created On  : {created.month}/{created.day}/{created.year} {created.hour}:{created.minute}:{created.second}",
            f"{dashes}Snapshot State       : {'powered on' if node.state == 'poweredOn' else 'powered off'}",
        ]
        if node.childSnapshotList:
            lines.append(f"{dashes}|-CHILD")
            lines += snapshot_tree(node.childSnapshotList, depth + 1)
    return lines


def print_snapshots(title: str, vm: Any) -> None:
    print(f"{title}:")
    snap = emu.props(vm, ["snapshot"]).get("snapshot")
    if snap is not None and snap.rootSnapshotList:
        print("|-ROOT")
        print("\n".join(snapshot_tree(snap.rootSnapshotList)))


def find_snapshot(tree: list[Any], snap_id: int) -> Any:
    for node in tree:
        if node.id == snap_id:
            return node.snapshot
        found = find_snapshot(node.childSnapshotList or [], snap_id)
        if found is not None:
            return found
    return None


SNAPSHOT_USAGE = {
    "get": "snapshot.get vmid",
    "create": "snapshot.create vmid [snapshotName] [snapshotDescription] [includeMemory] [quiesced]",
    "revert": "snapshot.revert vmid snapshotId suppressPowerOn",
    "remove": "snapshot.remove vmid snapshotId [removeChildren]",
    "removeall": "snapshot.removeall vmid",
}
#: How many arguments after the VM id each verb takes (at least, at most), as ESXi 6.x and later.
SNAPSHOT_ARITY = {"get": (0, 0), "create": (0, 4), "revert": (2, 2), "remove": (1, 2), "removeall": (0, 0)}
FLAGS = {"0": False, "1": True, "false": False, "true": True}


def snapshot_usage(action: str) -> None:
    """vim-cmd's answer to arguments it does not take: its usage line, exit 1 (strict, as the host)."""
    emu.die(f"Usage: {SNAPSHOT_USAGE[action]}")


def snapshot(si: Any, action: str, vmid: str, args: list[str]) -> None:
    """``snapshot.get|create|revert|remove|removeall`` with ESXi's arguments and output (the
    usage and outputs of docs/ssh-route.md's sources); anything else is refused with the usage."""
    if action not in SNAPSHOT_ARITY:
        emu.die(f"Unknown command: 'snapshot.{action}'")
    low, high = SNAPSHOT_ARITY[action]
    flags = {"create": args[2:4], "revert": args[1:2], "remove": args[1:2]}.get(action, [])
    ids = args[:1] if action in ("revert", "remove") else []
    if (
        not vmid.isdigit()
        or not low <= len(args) <= high
        or any(f.lower() not in FLAGS for f in flags)
        or not all(i.isdigit() for i in ids)
    ):
        snapshot_usage(action)
    vm = emu.find_vm(si, vmid)
    if action == "get":
        print_snapshots("Get Snapshot", vm)
    elif action == "create":
        defaults = ["", "", "0", "0"]  # snapshot.create vmid [name] [description] [includeMemory] [quiesced]
        name, desc, memory, quiesce = [*args, *defaults[len(args) :]]
        emu.wait(
            vm.CreateSnapshot_Task(
                name=name, description=desc, memory=FLAGS[memory.lower()], quiesce=FLAGS[quiesce.lower()]
            )
        )
        print("Create Snapshot:")
    elif action == "revert":
        tree = emu.props(vm, ["snapshot"]).get("snapshot") or None
        target = find_snapshot(tree.rootSnapshotList, int(args[0])) if tree else None
        if target is None:
            emu.print_fault("NotFound", "The object or item referred to could not be found.")
        emu.wait(target.RevertToSnapshot_Task(suppressPowerOn=FLAGS[args[1].lower()]))
        print_snapshots("Revert Snapshot", vm)
    elif action == "remove":
        snap = emu.props(vm, ["snapshot"]).get("snapshot")
        tree = snap.rootSnapshotList if snap is not None else []
        target = find_snapshot(tree, int(args[0]))
        if target is None:
            emu.print_fault("NotFound", "The object or item referred to could not be found.")
        children = len(args) == 2 and FLAGS[args[1].lower()]
        emu.wait(target.RemoveSnapshot_Task(removeChildren=children))
        print_snapshots("Remove Snapshot", vm)
    else:
        emu.wait(vm.RemoveAllSnapshots_Task())
        print_snapshots("Remove All Snapshots", vm)


def registervm(si: Any, path: str, name: str | None) -> None:
    real = emu.host_path(path)
    if not real.is_file():
        emu.print_fault("NotFound", f'Unable to find a VM corresponding to "{path}"')
    ds_path = emu.datastore_path(path)
    for vm in emu.all_vms(si):
        if vm.config.files.vmPathName == ds_path:
            emu.print_fault(
                "AlreadyExists", f'The specified key, name, or identifier "{emu.vmid_of(vm)}" already exists.'
            )
    text = real.read_text(encoding="utf-8")
    spec = vmxfile.config_spec(text, path, name)
    # The simulator's CreateVM_Task refuses an existing .vmx or .nvram; hostd reads them instead.
    # So keep them aside while the simulator creates the VM, then put the very same bytes back.
    kept = [p for p in (real, real.with_suffix(".nvram")) if p.is_file()]
    for path in kept:
        path.rename(path.with_name(path.name + ".emulator-aside"))
    try:
        content = si.RetrieveContent()
        datacenter = content.rootFolder.childEntity[0]
        compute = datacenter.hostFolder.childEntity[0]
        task = datacenter.vmFolder.CreateVM_Task(config=spec, pool=compute.resourcePool)
    finally:
        for path in kept:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".emulator-aside").rename(path)
    vm = emu.wait(task)
    print(emu.vmid_of(vm))


TASK_METHODS = {
    "power.on": "powerOn", "power.off": "powerOff", "power.reset": "reset", "power.shutdown": "shutdownGuest",
    "snapshot.create": "createSnapshot", "snapshot.remove": "removeSnapshot", "snapshot.revert": "revertToSnapshot",
    "destroy": "destroy",
}  # fmt: skip


def start_task(command: str, args: list[str]) -> str | None:
    """hostd's task for a VM command that takes time (here: one with a hang configured).

    It outlives this process: killed, vim-cmd leaves it running on the "host" for the
    hang's length, as hostd goes on with the work; ``vimsvc/task_cancel`` ends it.
    """
    hang = emu.config().get("hang", {}).get(f"vim-cmd {command}")
    verb = command.removeprefix("vmsvc/")
    if hang is None or verb not in TASK_METHODS or not args or not args[0].isdigit():
        return None
    with emu.state() as st:
        n = st.get("task_seq", 1000) + 1
        st["task_seq"] = n
        task_id = f"haTask-{args[0]}-vim.VirtualMachine.{TASK_METHODS[verb]}-{n}"
        st.setdefault("tasks", {})[task_id] = {"state": "running", "ends": time.time() + float(hang)}
    return task_id


def finish_task(task_id: str | None) -> None:
    if task_id is not None:
        with emu.state() as st:
            st["tasks"][task_id]["state"] = "success"


def task_state(task: dict[str, Any]) -> str:
    return "success" if task["state"] == "running" and time.time() >= task["ends"] else str(task["state"])


def tasks(verb: str, args: list[str]) -> None:
    """``vimsvc/task_list``, ``task_info TASK`` and ``task_cancel TASK`` over the emulated tasks."""
    with emu.state() as st:
        known = st.setdefault("tasks", {})
        if verb == "task_list":
            print("(ManagedObjectReference) [")
            for task_id in known:
                print(f"   'vim.Task:{task_id}',")
            print("]")
        elif verb in ("task_info", "task_cancel") and args and args[0] in known:
            task = known[args[0]]
            if verb == "task_cancel":
                if task_state(task) != "running":
                    emu.print_fault("InvalidState", "The operation is not allowed in the current state.")
                task["state"] = "error"
                return
            print("(vim.TaskInfo) {")
            print(f'   key = "{args[0]}",')
            print(f"   task = 'vim.Task:{args[0]}',")
            print(f'   state = "{task_state(task)}",')
            print("   cancelable = true,")
            print("}")
        elif verb in ("task_info", "task_cancel"):
            emu.print_fault(
                "ManagedObjectNotFound",
                f"The object 'vim.Task:{args[0] if args else ''}' has already been deleted or has not been completely created",
            )
        else:
            emu.die(f"Unknown command: 'vimsvc/{verb}'")


def main(argv: list[str]) -> None:
    emu.log_invocation("vim-cmd", argv)
    if not argv:
        emu.die("Usage: vim-cmd <command> [args]")
    command, args = argv[0], argv[1:]
    service, _, verb = command.partition("/")
    if service == "vimsvc":
        tasks(verb, args)
        return
    task = start_task(command, args)
    emu.inject(f"vim-cmd {command}")
    finish_task(task)
    si = emu.service_instance()
    if command == "vmsvc/getallvms":
        getallvms(si)
    elif command == "solo/registervm" and args:
        registervm(si, args[0], args[1] if len(args) > 1 else None)
    elif service == "vmsvc" and verb.startswith("power.") and args:
        power(si, verb.removeprefix("power."), args[0])
    elif service == "vmsvc" and verb.startswith("snapshot."):
        if not args:
            emu.die("Insufficient arguments.")
        snapshot(si, verb.removeprefix("snapshot."), args[0], args[1:])
    elif command == "vmsvc/get.guest" and args:
        print("Guest information:\n")
        vm = emu.find_vm(si, args[0])
        print(vmxfile.guest_dump(vm.guest, emu.config().get("guest_reports", {}).get(vm.name)))
    elif command == "vmsvc/message" and args:
        emu.find_vm(si, args[0])
        message(args[0], args[1:])
    elif command == "vmsvc/unregister" and args:
        emu.find_vm(si, args[0]).UnregisterVM()
    elif command == "vmsvc/destroy" and args:
        emu.wait(emu.find_vm(si, args[0]).Destroy_Task())
    else:
        emu.die(f"Unknown command or missing argument: {' '.join(argv)!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
