"""Handing a parsed command to the local cesod when one serves this configuration.

A ``ceso`` process pays for its imports, a database connection, an ESXi
login for the name check and a queue connection on every command; a running
cesod holds all of them. For the commands in :data:`FORWARDED`, the CLI
sends the same request to cesod's operator socket (:mod:`ceso.cesod.local`)
and prints the answer exactly as it would have printed its own outcome:
same validation and messages (cesod runs the same request builders), same
``--json`` objects, same exit codes. cesod acts as the local operator; audit
records name the source ``cli``.

The command runs in this process as before when there is no such cesod,
with ``--dry-run``, for an agent (``CESO_AGENT_TOKEN``), or with
``CESO_NO_CESOD=1``. What only this process can do happens here first:
reading ``--ssh-key`` files and ``--userdata``/``--vendordata`` files (cesod
never reads a file a caller names), and, on a terminal, following the job with
a progress bar.

One way in: click parses the command, then :func:`via_local_cesod` (a decorator of its
own, stacked above the sandbox check of :func:`ceso.cli.application.pass_app`) hands it
to cesod, which authorizes and audits it there; only if cesod does not take it does the
command's body run here, after the sandbox check.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ceso.cli.application import Application
from ceso.errors import CesoError, TimeoutExpiredError
from ceso.security.operations import operation_for_command

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["FORWARDED", "forward", "via_local_cesod"]

_TERMINAL = ("succeeded", "failed", "cancelled")
_DEFAULT_WAIT_S = 30.0  # what cesod waits at most when asked to wait without a timeout
_ANSWER_MARGIN_S = 30.0  # on top of the wait: cesod's own work before and after it


def _guest(p: dict[str, Any]) -> dict[str, Any]:
    """The identity options, with key files and documents read here."""
    from ceso.vm.documents import read_guest_files

    keys, userdata, vendordata = read_guest_files(p["ssh_keys"], p["userdata_file"], p["vendordata_file"])
    return {
        "hostname": p["hostname"],
        "ip": p["ip"],
        "gateway": p["gateway"],
        "ip6": p["ip6"],
        "gateway6": p["gateway6"],
        "dns": list(p["dns"]),
        "search": list(p["search"]),
        "user": p["user"],
        "ssh_key": keys,
        "package": list(p["packages"]),
        "userdata": userdata,
        "vendordata": vendordata,
    }


def _hardware(p: dict[str, Any]) -> dict[str, Any]:
    return {
        key: p[key]
        for key in (
            "cpus",
            "memory",
            "disk",
            "datastore",
            "network",
            "no_power_on",
            "wait_ip",
            "wait_ip_timeout",
        )
    }


def _create(p: dict[str, Any]) -> dict[str, Any]:
    return {"name": p["name"], "template": p["template"], "host": p["host"], "force": p["force"],
            **_hardware(p), **_guest(p)}  # fmt: skip


def _clone(p: dict[str, Any]) -> dict[str, Any]:
    return {"source": p["source"], "name": p["name"], "host": p["host"], "hot": p["hot"],
            "shutdown_source": p["shutdown_source"], **_hardware(p), **_guest(p)}  # fmt: skip


def _power(p: dict[str, Any]) -> dict[str, Any]:
    return {key: p[key] for key in ("action", "name", "host", "force", "timeout_guest")}


def _delete(p: dict[str, Any]) -> dict[str, Any] | None:
    if not p["yes"]:
        return None  # the confirmation is asked here, before anything is sent: the in-process path
    return {key: p[key] for key in ("name", "host", "force")}


def _backup(p: dict[str, Any]) -> dict[str, Any]:
    return {"vm": p["vm"], "host": p["host"], "target": p["target"], "compress": p["compression"],
            "level": p["level"], "hot": p["hot"], "encrypt": p["encrypt"]}  # fmt: skip


def _restore(p: dict[str, Any]) -> dict[str, Any] | None:
    if p["in_place"]:
        return None  # the confirmation is asked here, before anything is sent: the in-process path
    return {"backup_id": p["backup_id"], "as": p["name"], "host": p["host"], "datastore": p["datastore"],
            "network": p["network"], "no_power_on": p["no_power_on"], **_guest(p)}  # fmt: skip


def _reconfigure(p: dict[str, Any]) -> dict[str, Any] | None:
    # cesod takes each --disk-grow DISK SIZE as "DISK=SIZE" (split at the last "=": a size has none).
    if any(not disk.strip() or not size.strip() for disk, size in p["disk_grow"]):
        return None  # refused here with the CLI's own message (cesod words a blank side its own way)
    return {**{key: p[key] for key in ("name", "host", "cpus", "memory", "network", "nic", "iso", "eject_iso")},
            "disk_grow": [f"{disk}={size}" for disk, size in p["disk_grow"]]}  # fmt: skip


def _snapshot(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda p: {key: p[key] for key in ("name", "snapshot", "host", *keys)}


#: Operation → its cesod params from the command's click params (job options excluded), or None
#: when this invocation must run in this process.
FORWARDED: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "vm.create": _create,
    "vm.clone": _clone,
    "vm.power": _power,
    "vm.delete": _delete,
    "vm.reconfigure": _reconfigure,
    "vm.snapshot.create": _snapshot("description", "memory", "quiesce"),
    "vm.snapshot.revert": _snapshot(),
    "vm.snapshot.delete": _snapshot("children"),
    "backup.create": _backup,
    "backup.restore": _restore,
}


def via_local_cesod(fn: F) -> F:
    """Run the command through the local cesod if one takes it (:func:`forward`), else ``fn``.

    Stacked between the command's options and :func:`ceso.cli.application.pass_app`, so a
    command cesod took is authorized and audited by cesod, and one it did not take by the
    sandbox check here, never both.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        app = ctx.find_object(Application)
        operation = operation_for_command(ctx.command_path.split()[1:]).name
        if app is not None and forward(app, operation, dict(ctx.params)):
            return None
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def forward(app: Application, operation: str, params: dict[str, Any]) -> bool:
    """Run command ``operation`` (click ``params``) through the local cesod and report it;
    False if it must run in this process instead (nothing has been sent then)."""
    if app.dry_run or operation not in FORWARDED:
        return False
    from ceso.cesod.local import connect

    request = FORWARDED[operation](params)  # reads files: bad input fails here, nothing sent
    if request is None:
        return False
    sock = connect(app.config)
    if sock is None:
        return False
    wait, timeout, key = params["wait"], params["timeout"], params["idempotency_key"]
    follow_here = wait and app.interactive  # the progress bar is drawn by this process
    ask_wait = wait and not follow_here
    request.update(idempotency_key=key, wait=ask_wait)
    if ask_wait and timeout is not None:
        request["timeout"] = timeout
    sent_at = time.time()
    started = time.monotonic()
    job = _call(sock, operation, request, ask_wait, timeout, key)
    if job is None:  # the connection broke; the idempotency key makes doing it here safe
        return False
    if key is not None and _created_before(job, sent_at):
        app.info(f"idempotency key already used: following job {job['id']}")
    if not wait:
        app.emit(job, lambda: click.echo(job["id"]))
    elif follow_here:
        app.follow(job["id"], timeout=timeout)
    else:
        _follow(app, job, timeout, started)
    return True


def _follow(app: Application, job: dict[str, Any], timeout: float | None, started: float) -> None:
    """Wait on cesod until the job ends (or here, if cesod goes away), then report it."""
    while job["state"] not in _TERMINAL:
        left = None if timeout is None else timeout - (time.monotonic() - started)
        if left is not None and left <= 0:
            raise TimeoutExpiredError(
                f"job {job['id']} still {job['state']} after {timeout:g}s (it goes on running)"
            )
        job_id = job["id"]
        answer = _wait_more(app, job_id, left)
        if answer is None:  # cesod went away while the job runs: wait for it here
            app.follow(job_id, timeout=left)
            return
        job = answer
    app.report_outcome(job)


def _call(sock: Any, method: str, request: dict[str, Any], wait: bool, timeout: float | None,
          key: str | None) -> dict[str, Any] | None:  # fmt: skip
    """cesod's answer; None if the connection broke and ``key`` makes a retry here safe."""
    from ceso.cesod.local import call

    limit = (_DEFAULT_WAIT_S if timeout is None else min(timeout, 600.0)) if wait else 0.0
    try:
        result: dict[str, Any] = call(sock, method, request, timeout=limit + _ANSWER_MARGIN_S)
    except (OSError, ValueError) as exc:
        if key is not None:
            return None
        raise CesoError(
            f"lost the connection to the local cesod before its answer ({exc}); the job may have been "
            "submitted: see `ceso job list`, or run the command again with an --idempotency-key",
            code="cesod_connection_lost",
        ) from exc
    return result


def _wait_more(app: Application, job_id: str, left: float | None) -> dict[str, Any] | None:
    """The job after one more ``job.wait`` on cesod; None if cesod is no longer there."""
    from ceso.cesod.local import call, connect

    sock = connect(app.config)
    if sock is None:
        return None
    wait_s = _DEFAULT_WAIT_S if left is None else min(left, 600.0)
    try:
        result: dict[str, Any] = call(sock, "job.wait", {"id": job_id, "timeout": wait_s},
                                      timeout=wait_s + _ANSWER_MARGIN_S)  # fmt: skip
    except (OSError, ValueError):
        return None
    return result


def _created_before(job: dict[str, Any], moment: float) -> bool:
    """True if the job existed before ``moment`` (an idempotency key answered with an older job)."""
    from datetime import UTC, datetime  # only with an idempotency key: spared on the usual path

    created = datetime.fromisoformat(str(job["created_at"]))
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # ceso stores UTC
    return created.timestamp() < moment - 1.0
