"""Guard rails: limits beyond the mode, configured per mode under ``security.rails``.

Checked on a job's kind, host, target and (non-secret) params, at submit and
again when the worker claims the job, so a rail tightened while a job waited
applies to it. Rules:

* ``hosts`` — the job's host must be listed;
* for jobs that make a VM (``vm.create``, ``vm.clone``, ``backup.restore``):
  ``datastores``/``networks`` — the one named must be listed, and naming one
  is then required (the template's default could be anywhere); ``ip_ranges``
  — static ``ip``/``ip6`` addresses must fall inside (DHCP is allowed);
  ``max_cpus``/``max_memory_mb``/``max_disk_gb`` — explicit sizes must fit
  (a size left to the template is the template's, which operators curate);
* ``backup.drill`` with ``--network``: that port group must be listed in ``networks`` (a drill
  without one connects nothing, and removes its VM);
* ``delete_only_own`` (agents only) — ``vm.delete`` only of a VM whose latest
  successful create or clone on that host was this agent's job.

A broken rail raises NotPermittedError with code ``guard_rail`` naming the rule.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlmodel import Session, col, select

from ceso.db.models import Job
from ceso.errors import NotPermittedError
from ceso.security.config import GuardRails
from ceso.security.principals import Principal
from ceso.vm.sizes import parse_disk_bytes, parse_memory_mb

__all__ = ["MAKES_VM", "check_rails"]

MAKES_VM = frozenset({"vm.create", "vm.clone", "backup.restore"})
DELETES_VM = frozenset({"vm.delete"})


def _refuse(principal: Principal, rule: str) -> NotPermittedError:
    who = f"{principal.kind} {principal.name}"
    return NotPermittedError(f"{who} (mode {principal.mode}): {rule}", code="guard_rail")


def _in_list(principal: Principal, allowed: list[str], value: Any, what: str, option: str) -> None:
    if not allowed:
        return
    if value is None:
        raise _refuse(principal, f"{option} is required (allowed {what}: {', '.join(allowed)})")
    if value not in allowed:
        raise _refuse(principal, f"{what} {value!r} is not allowed (allowed: {', '.join(allowed)})")


def _address(principal: Principal, rails: GuardRails, value: Any, option: str) -> None:
    if not rails.ip_ranges or not value or str(value).lower() == "dhcp":
        return
    try:
        address = ipaddress.ip_interface(str(value)).ip
    except ValueError:
        return  # malformed addresses are refused by input validation, with a better message
    networks = [ipaddress.ip_network(r, strict=False) for r in rails.ip_ranges]
    if not any(address.version == n.version and address in n for n in networks):
        raise _refuse(
            principal, f"{option} {value} is outside the allowed ranges ({', '.join(rails.ip_ranges)})"
        )


def _sizes(principal: Principal, rails: GuardRails, params: dict[str, Any]) -> None:
    # The params are the spec's fields (ceso.vm.specs.NewVm): sizes as the caller wrote them.
    cpus = params.get("cpus")
    memory = parse_memory_mb(params["memory"]) if params.get("memory") else None
    disk = parse_disk_bytes(params["disk"]) if params.get("disk") else None
    if rails.max_cpus is not None and cpus is not None and int(cpus) > rails.max_cpus:
        raise _refuse(principal, f"--cpus {cpus} is above the limit of {rails.max_cpus}")
    if rails.max_memory_mb is not None and memory is not None and int(memory) > rails.max_memory_mb:
        raise _refuse(principal, f"--memory {memory} MiB is above the limit of {rails.max_memory_mb} MiB")
    if rails.max_disk_gb is not None and disk is not None and int(disk) > rails.max_disk_gb * 2**30:
        raise _refuse(principal, f"--disk {int(disk) // 2**30}G is above the limit of {rails.max_disk_gb}G")


def _created_by(session: Session, *, host: str, vm: str) -> str | None:
    """The actor of the latest successful job that made VM ``vm`` on ``host``."""
    job = session.exec(
        select(Job)
        .where(Job.host == host, Job.target == vm, col(Job.kind).in_(MAKES_VM), Job.state == "succeeded")
        .order_by(col(Job.finished_at).desc())
    ).first()
    return job.actor if job else None


def check_rails(
    engine: Any,
    rails: GuardRails,
    principal: Principal,
    *,
    kind: str,
    host: str,
    target: str | None,
    params: dict[str, Any],
) -> None:
    """Raise NotPermittedError (code ``guard_rail``) if the job breaks one of ``rails``."""
    _in_list(principal, rails.hosts, host, "host", "the host")
    if kind in MAKES_VM:
        _in_list(principal, rails.datastores, params.get("datastore"), "datastore", "--datastore")
        _in_list(principal, rails.networks, params.get("network"), "network", "--network")
        _address(principal, rails, params.get("ip"), "--ip")
        _address(principal, rails, params.get("ip6"), "--ip6")
        _sizes(principal, rails, params)
    if kind == "backup.drill" and params.get("network") is not None:  # without one nothing connects
        _in_list(principal, rails.networks, params["network"], "network", "--network")
    if kind in DELETES_VM and principal.is_agent and rails.delete_only_own and target:
        with Session(engine) as session:
            maker = _created_by(session, host=host, vm=target)
        if maker != principal.actor:
            raise _refuse(
                principal, f"may delete only VMs it created; {target!r} on {host} was not made by it"
            )
