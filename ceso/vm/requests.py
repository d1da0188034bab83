"""Turning a create or clone spec into a validated job request (shared by the CLI and cesod).

The spec (:mod:`ceso.vm.specs`) has checked names, sizes and keys already; here is checked
what needs SQL or the host — the template's validation, the source's host, the guest's
addresses and cloud-init size, whether the name is free on the host — so bad input is
refused with nothing written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlmodel import Session

from ceso.errors import ConflictError, NotFoundError
from ceso.esxi.inventory import find_vm
from ceso.hosts.registry import client_for, get_host
from ceso.inventory import find_vm_host
from ceso.jobs.request import JobRequest
from ceso.jobs.store import find_by_idempotency_key
from ceso.runtime import Runtime
from ceso.vm.specs import CloneVm, CreateVm
from ceso.vm.templates import get_template, require_usable

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = ["clone_request", "create_request"]


def _check_free(runtime: Runtime, client: EsxiClient, name: str, idempotency_key: str | None) -> None:
    """ConflictError if ``name`` is taken on ``client``'s host — unless this is a resubmission of a known key,
    whose first job may well have made that VM (submit then returns that job)."""
    if idempotency_key is not None and find_by_idempotency_key(runtime.engine, idempotency_key) is not None:
        return
    try:
        find_vm(client, name)
    except NotFoundError:
        return
    except ConflictError:
        pass
    raise ConflictError(f"a VM named {name!r} already exists on host {client.name}")


def create_request(
    runtime: Runtime, spec: CreateVm, *, idempotency_key: str | None, check_host: bool = True
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``vm.create`` request and the decoded cloud-init documents (for previews).

    Checks what the spec alone cannot: the host and template exist and the template is usable
    (NotFoundError, ConflictError; a blank VM: its host exists), the guest's addresses and documents (InvalidInputError),
    and, with ``check_host``, that the name is free on the host (ConflictError).
    """
    with Session(runtime.engine) as session:
        named = get_host(session, spec.host) if spec.host is not None else None  # unknown: said first
        tmpl = None if spec.template is None else get_template(session, spec.template, spec.host)
        row = named if named is not None or tmpl is None else get_host(session, tmpl.host)
    # A blank VM's spec requires its host (``row`` then is ``named``).
    assert row is not None, "a spec names its host or a template"
    host = row.name
    if tmpl is not None:
        require_usable(tmpl, force=spec.force)
    else:  # a blank VM: its host must take the API route
        from ceso.backends.routes import route_of
        from ceso.operations.vm_blank import refuse_over_ssh

        refuse_over_ssh(route_of(runtime, host))
    documents = {} if spec.blank else spec.guest.check(spec.name)
    if check_host:
        _check_free(runtime, runtime.client(row), spec.name, idempotency_key)
    return JobRequest(
        kind=spec.kind,
        host=host,
        target=spec.name,
        params=spec.job_params(),
        idempotency_key=idempotency_key,
    ), documents


def clone_request(
    runtime: Runtime, spec: CloneVm, *, idempotency_key: str | None, check_host: bool = True
) -> tuple[JobRequest, dict[str, str]]:
    """A validated ``vm.clone`` request and the decoded cloud-init documents.

    NotFoundError if the source is on no (or not on the given) host; otherwise as
    :func:`create_request`.
    """
    owner = find_vm_host(runtime, spec.source, spec.host)
    documents = spec.guest.check(spec.name)
    if check_host:
        _check_free(runtime, client_for(runtime, owner), spec.name, idempotency_key)
    return JobRequest(
        kind=spec.kind,
        host=owner,
        target=spec.name,
        params=spec.job_params(),
        idempotency_key=idempotency_key,
    ), documents
