"""The one table of operation names, shared by the CLI, cesod, the workers, metrics labels and audit.

An operation is a dotted name (``vm.create``, ``job.status``, ``agent.approve``)
with the least sandbox mode allowed to perform it and what it is:

* ``read``    — reads state, changes nothing (successful reads are not audited);
* ``job``     — submits a job; the mode comes from :data:`ceso.jobs.kinds.JOB_KINDS`,
  so a job kind and its operation can never disagree;
* ``change``  — changes state directly, without a job (host add, agent add); audited;
* ``service`` — a long-running process (worker, cesod, metrics server).

An ``operator_only`` operation is refused to every agent, whatever its mode or
promotion (exporting the backup encryption key).

CLI command paths map onto the table (``ceso agent request-promotion`` →
``agent.request_promotion``); a path that is not in the table resolves to its
longest known prefix, and failing that to an unknown operation that only
``admin`` may perform, so a command added without an entry fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceso.security.modes import ADMIN, READ_ONLY, STANDARD

__all__ = ["Operation", "all_operations", "get_operation", "operation_for_command"]


@dataclass(frozen=True)
class Operation:
    """One thing an actor can ask for; ``mode`` is the least mode allowed to do it."""

    name: str
    mode: str
    kind: str  # read | job | change | service
    summary: str
    self_audited: bool = False  # the core function writes its own, richer audit record
    known: bool = True
    # Refused to agents whatever their mode or promotion: the local operator only.
    operator_only: bool = False


_STATIC: tuple[Operation, ...] = (
    # reads: read-only
    Operation("vm.list", READ_ONLY, "read", "list VMs"),
    Operation("vm.info", READ_ONLY, "read", "show one VM"),
    Operation("job.status", READ_ONLY, "read", "show one job"),
    Operation("job.list", READ_ONLY, "read", "list jobs"),
    Operation("job.wait", READ_ONLY, "read", "wait for a job to end"),
    Operation("host.list", READ_ONLY, "read", "list hosts"),
    Operation("template.list", READ_ONLY, "read", "list templates"),
    Operation("datastore.ls", READ_ONLY, "read", "list files of a datastore"),
    Operation("completion", READ_ONLY, "read", "print the shell completion code"),
    Operation("backup.list", READ_ONLY, "read", "list backups"),
    Operation("backup.show", READ_ONLY, "read", "show one backup"),
    Operation("cloudinit.render", READ_ONLY, "read", "render cloud-init documents locally"),
    Operation("system.describe", READ_ONLY, "read", "the caller's identity, mode and methods"),
    Operation("agent.whoami", READ_ONLY, "read", "the caller's identity and mode"),
    Operation(
        "agent.request_promotion", READ_ONLY, "change", "ask an operator for a higher mode", self_audited=True
    ),
    # standard: changes that create or run things
    Operation("job.cancel", STANDARD, "change", "cancel a job", self_audited=True),
    Operation("vm.power", STANDARD, "job", "power a VM on, off, reset, shut down"),
    Operation("vm.reconfigure", STANDARD, "job", "change CPUs, memory, disk, NIC, ISO"),
    Operation("vm.snapshot", STANDARD, "job", "create, revert or remove snapshots"),
    Operation("vm.snapshot.list", READ_ONLY, "read", "list a VM's snapshots"),
    Operation("backup.create", STANDARD, "job", "back up a VM"),
    Operation("backup.restore", STANDARD, "job", "restore a backup as a new VM"),
    Operation("backup.drill", STANDARD, "job", "restore a backup as a throwaway VM and boot it"),
    Operation("backup.verify", STANDARD, "change", "verify a backup (runs in the caller, marks it)"),
    Operation("datastore.download", STANDARD, "read", "copy a datastore file to the caller"),
    Operation("datastore.upload", STANDARD, "change", "copy a file onto a datastore"),
    # admin: deletion, hosts, targets, agents, audit, services
    Operation("vm.delete", ADMIN, "job", "delete a VM and its disks"),
    Operation("vm.protect", ADMIN, "change", "protect a VM from deletion"),
    Operation("vm.unprotect", ADMIN, "change", "remove a VM's protection"),
    Operation("datastore.rm", ADMIN, "change", "delete a datastore file or folder"),
    Operation("backup.restore_in_place", ADMIN, "job", "restore a backup over the original VM"),
    Operation("backup.delete", ADMIN, "change", "delete a backup"),
    Operation("backup.prune", ADMIN, "change", "prune backups by retention"),
    Operation("target.list", READ_ONLY, "read", "list backup targets"),
    Operation("target.add", ADMIN, "change", "register a backup target"),
    Operation("target.check", ADMIN, "change", "probe a backup target"),
    Operation("target.remove", ADMIN, "change", "unregister a backup target"),
    Operation("backup.schedule", ADMIN, "change", "manage backup schedules"),
    Operation("backup.import", ADMIN, "change", "import backups found on a target into the catalog"),
    # The encryption key opens every encrypted backup: no agent may take it out or replace it.
    Operation(
        "backup.key.export",
        ADMIN,
        "change",
        "export the backup encryption key",
        self_audited=True,
        operator_only=True,
    ),
    Operation(
        "backup.key.import",
        ADMIN,
        "change",
        "import the backup encryption key",
        self_audited=True,
        operator_only=True,
    ),
    Operation("backup.key.show_fingerprint", READ_ONLY, "read", "show the backup key's public id"),
    Operation("host.add", ADMIN, "change", "register a host"),
    Operation("host.remove", ADMIN, "change", "unregister a host"),
    Operation("host.check", ADMIN, "change", "probe a host and record its capabilities"),
    Operation("host.info", READ_ONLY, "read", "show one host"),
    Operation("template.add", ADMIN, "change", "register a template"),
    Operation("template.validate", ADMIN, "change", "validate a template again"),
    Operation("template.remove", ADMIN, "change", "unregister a template"),
    Operation("agent.add", ADMIN, "change", "register an agent", self_audited=True),
    Operation("agent.list", ADMIN, "read", "list agents"),
    Operation("agent.revoke", ADMIN, "change", "revoke an agent's token", self_audited=True),
    Operation("agent.requests", ADMIN, "read", "list promotion requests"),
    Operation("agent.approve", ADMIN, "change", "approve a promotion", self_audited=True),
    Operation("agent.deny", ADMIN, "change", "deny a promotion", self_audited=True),
    Operation("agent.revoke_promotion", ADMIN, "change", "end a promotion early", self_audited=True),
    Operation("audit.list", ADMIN, "read", "list audit records"),
    Operation("audit.show", ADMIN, "read", "show one audit record"),
    Operation("audit.verify", ADMIN, "read", "verify the audit hash chain"),
    Operation("audit.export", ADMIN, "read", "export audit records"),
    Operation("db.upgrade", ADMIN, "change", "upgrade the database schema"),
    Operation("worker", ADMIN, "service", "run a worker"),
    Operation("cesod", ADMIN, "service", "serve JSON-RPC"),
    Operation("metrics.serve", ADMIN, "service", "serve metrics"),
    Operation("beat", ADMIN, "service", "run the backup scheduler"),
    Operation("schedule.list", READ_ONLY, "read", "list schedules and their last and next firing"),
    # The master key opens every credential: no agent may make, check or rotate it.
    Operation("secrets.init", ADMIN, "change", "make the installation's master key", operator_only=True),
    Operation(
        "secrets.check", ADMIN, "read", "check the master key against the stored secrets", operator_only=True
    ),
    Operation(
        "secrets.rotate",
        ADMIN,
        "change",
        "re-encrypt the secrets under the new master key",
        operator_only=True,
    ),
    Operation(
        "secrets.import", ADMIN, "change", "copy this machine's local secrets into SQL", operator_only=True
    ),
)


def all_operations() -> dict[str, Operation]:
    """Every known operation by name; job kinds come from ``JOB_KINDS`` (their mode wins)."""
    from ceso.jobs.kinds import JOB_KINDS

    table = {op.name: op for op in _STATIC}
    for kind in JOB_KINDS.values():
        table[kind.name] = Operation(kind.name, kind.mode, "job", kind.summary)
    return table


def get_operation(name: str) -> Operation:
    """The operation ``name``; an unknown name is an admin-only operation (fail closed)."""
    found = all_operations().get(name)
    if found is not None:
        return found
    return Operation(name, ADMIN, "change", "an operation missing from the table", known=False)


def operation_for_command(words: list[str]) -> Operation:
    """The operation of a CLI command path such as ``["agent", "request-promotion"]``.

    The longest known prefix wins (``vm power on`` → ``vm.power``).
    """
    names = [w.replace("-", "_") for w in words]
    table = all_operations()
    for end in range(len(names), 0, -1):
        op = table.get(".".join(names[:end]))
        if op is not None:
            return op
    return get_operation(".".join(names) or "ceso")
