"""``template.import``: an OVA, an OVF with its disks, or a stream-optimized VMDK as a new template.

1. *read package* (only reads): the source's head is read and the package refused if ceso
   cannot import it (:mod:`ceso.images.ovf`), before anything is made; datastore and port
   group are checked.
2. Under the name's lock and a datastore slot, the VM is made by the host's route:
   on the API, ``CreateImportSpec`` → ``ImportVApp`` → each disk uploaded through the
   ``HttpNfcLease`` → lease completed (:mod:`ceso.images.api_import`); over SSH, each disk
   converted on the worker and written thin over SFTP, then the ``.vmx`` written and
   registered (:mod:`ceso.images.ssh_import`). Disks stream from the source as they are
   uploaded; each is checked against the manifest (and the source against ``--sha256``)
   before the VM is kept.
3. *register template*: the VM is registered as a ceso template and validated.

Whatever stops the job after step 2 began (a digest that differs, a host fault, a cancel) aborts
the lease and removes the VM, its directory and a template row already written: a failed import
leaves nothing behind.

A worker killed mid-import cleans up nothing; the template's record follows the host on the next
attempt (:func:`import_leftovers`). If an earlier attempt reached *register template* (the VM was
complete and checked by then) and the VM carrying this job's marker is on the host, the attempt
adopts it: no download, the row is written (or the one written validated again). Otherwise the
marked VM, its directory and any row the earlier attempt wrote are removed and the import starts
over; a job out of attempts removes them the same way (:mod:`ceso.jobs.leftovers`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session

from ceso.backends.paths import datastore_path
from ceso.backends.protocol import AnyBackend
from ceso.backends.routes import route_of
from ceso.backends.vmomi import vim
from ceso.db.models import Template
from ceso.errors import ConflictError, NotFoundError
from ceso.images.package import Package, open_package
from ceso.images.specs import ImportTemplate
from ceso.jobs.cleanup import undo
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.jobs.task_progress import byte_details
from ceso.operations.leftovers import JOB_MARKER, marked_vm, remove_vm_leftovers
from ceso.plans import ImportSteps
from ceso.vm.templates import (
    IMAGE_TOOLS_KEY,
    add_template,
    get_template,
    remove_template,
    template_to_dict,
    validate_template,
)

__all__ = ["import_leftovers", "run_template_import"]

_PROGRESS_EVERY_S = 2.0


class _Meter:
    """Bytes read from the source → the job's progress (between ``low`` and ``high`` percent)."""

    def __init__(self, ctx: JobContext, total: int | None, low: int, high: int) -> None:
        self.ctx, self.total, self.low, self.high = ctx, total, low, high
        self.done, self.started = 0, time.monotonic()
        self.last = self.started  # the first report after a few seconds, not for the descriptor

    def percent(self) -> int:
        """How much of the source was read, 0-100 (0 while its size is unknown)."""
        return min(100, 100 * self.done // self.total) if self.total else 0

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last < _PROGRESS_EVERY_S:
            return
        self.last = now
        share = min(1.0, self.done / self.total) if self.total else 0.0
        details = byte_details(self.done, self.total, now - self.started)  # a backup's shape too
        self.ctx.set_progress(self.low + int((self.high - self.low) * share), **details)


def run_template_import(ctx: JobContext) -> dict[str, Any]:
    spec = ImportTemplate.from_job(ctx.params)
    name = spec.name
    meter = _Meter(ctx, None, 15, 90)
    # Every step names the route the job takes, the package's read too; the host's session is
    # opened (and its login retried) in "check host".
    ctx.take_route(route_of(ctx.runtime, ctx.job.host))
    with ctx.step(
        ImportSteps.read_package, progress=5, changes_host=False, details={"source": spec.from_}
    ) as rec:
        package = open_package(spec.from_, sha256=spec.sha256, progress=meter)
        rec.update(
            kind=package.kind,
            vm=package.image.name,
            disks=[{"file": d.href, "capacity_bytes": d.capacity_bytes} for d in package.image.disks],
            dropped_properties=package.image.dropped_properties,
        )
    try:
        with ctx.step(ImportSteps.check_host, progress=8, changes_host=False):

            def check_host(_try: int) -> tuple[AnyBackend, str, str | None]:  # the login and reads
                ops = ctx.backend()  # the route the host's record declares (ceso.backends.routes)
                datastore = ops.datastore(spec.datastore)
                return (
                    ops,
                    datastore,
                    ops.network(spec.network) if spec.network else next(iter(ops.networks()), None),
                )

            ops, datastore, network = retry_host(ctx, ImportSteps.check_host, check_host)
            if network is None:
                raise NotFoundError(f"host {ctx.job.host} has no port group for the template's NICs")
        meter.total = package.upload_bytes or package.source_size
        with ctx.locks(ImportSteps.lock, vms=[name], datastores=[datastore]):
            with ctx.step(ImportSteps.check_name, progress=10, changes_host=ctx.attempt > 1) as rec:
                adopt = ctx.attempt > 1 and _adoptable(ctx, ops, name)
                if adopt:
                    rec["adopted"] = name  # a complete VM an earlier attempt made: kept
                else:
                    if ctx.attempt > 1:
                        import_leftovers(ctx, ops, name=name)  # what an earlier attempt made (its marker)
                    _refuse_taken(ctx, ops, name, datastore)
            with _cleanup_on_failure(ctx, ops, name, datastore):
                if adopt:
                    pass
                elif ops.route == "ssh":
                    _import_over_ssh(ctx, ops, package, spec, datastore=datastore, network=network)
                else:
                    _import_over_api(
                        ctx, ops, package, spec, datastore=datastore, network=network, meter=meter
                    )
                with ctx.step(ImportSteps.register_template, progress=95):
                    template = _register(ctx, name)
    finally:
        package.close()
    return {
        "name": name,
        "host": ctx.job.host,
        "datastore": datastore,
        "network": network,
        "source": spec.from_,
        "disks": [{"file": d.href, "capacity_bytes": d.capacity_bytes} for d in package.image.disks],
        "dropped_properties": package.image.dropped_properties,
        "template": template_to_dict(template),
    }


def _refuse_taken(ctx: JobContext, ops: AnyBackend, name: str, datastore: str) -> None:
    """ConflictError if the name is a VM, a datastore folder or a template of the host already."""
    if ops.exists(name):
        raise ConflictError(f"a VM named {name!r} already exists on host {ctx.job.host}")
    if ops.path_exists(datastore_path(datastore, name)):
        raise ConflictError(f"datastore folder [{datastore}] {name} already exists on host {ctx.job.host}")
    if _row(ctx, name) is not None:
        raise ConflictError(f"template {name!r} is already registered on host {ctx.job.host}")


def _row(ctx: JobContext, name: str) -> Template | None:
    """The template row ``name`` of the job's host, if there is one."""
    with Session(ctx.runtime.engine) as session:
        try:
            return get_template(session, name, ctx.job.host)
        except NotFoundError:
            return None


def _adoptable(ctx: JobContext, ops: AnyBackend, name: str) -> bool:
    """True if an earlier attempt reached *register template* (so its VM was complete and checked)
    and the VM carrying this job's marker is on the host."""
    return ImportSteps.register_template.ran_in(ctx.earlier_steps) and marked_vm(ctx, ops, name) is not None


def _register(ctx: JobContext, name: str) -> Template:
    """Write the template row and validate it; a row an earlier attempt wrote is validated again."""
    if ctx.attempt > 1 and _row(ctx, name) is not None:
        return validate_template(ctx.runtime, name, ctx.job.host)
    return add_template(ctx.runtime, name, ctx.job.host)


def import_leftovers(ctx: JobContext, ops: AnyBackend, *, name: str) -> None:
    """Remove what earlier attempts of this import made: the VM with this job's marker (or the folder
    an attempt recorded making), then the template row if an attempt reached *register template*
    and no VM of the name is left for it to name. Raises the backend's CesoErrors."""
    remove_vm_leftovers(ctx, ops, name=name)
    if ImportSteps.register_template.ran_in(ctx.steps) and not ops.exists(name):
        _forget(ctx, name)


def _forget(ctx: JobContext, name: str) -> None:
    if _row(ctx, name) is not None:
        remove_template(ctx.runtime, name, ctx.job.host)


@contextmanager
def _cleanup_on_failure(ctx: JobContext, ops: AnyBackend, name: str, datastore: str) -> Iterator[None]:
    """On any stop: remove the VM and its folder (the API route has aborted its lease already)."""
    try:
        yield
    except BaseException as exc:
        undo(
            ctx,
            ImportSteps.clean_up,
            lambda: _remove(ctx, ops, name, datastore_path(datastore, name)),
            cause=exc,
        )
        raise


def _remove(ctx: JobContext, ops: AnyBackend, name: str, directory: str) -> None:
    """The VM ``name`` (held under this job's lock), folder ``directory`` and the template row an
    attempt of this job wrote, if there."""
    if ops.exists(name):
        vm = ops.find(name)
        if ops.power_state(vm) != "poweredOff":
            ops.power_off(vm)
        ops.destroy(vm)
    if ops.path_exists(directory):
        ops.delete_path(directory)
    if ImportSteps.register_template.ran_in(ctx.steps):
        _forget(ctx, name)


def _import_over_api(
    ctx: JobContext,
    ops: AnyBackend,
    package: Package,
    spec: ImportTemplate,
    *,
    datastore: str,
    network: str,
    meter: _Meter,
) -> None:
    from ceso.backends.api import ApiVmBackend
    from ceso.images.api_import import LeaseImport
    from ceso.images.ovf import import_descriptor

    assert isinstance(ops, ApiVmBackend), ops.route
    lease = LeaseImport(
        ops, name=spec.name, datastore=datastore, network=network, marks={JOB_MARKER: ctx.job.id}
    )
    try:
        with ctx.step(
            ImportSteps.import_vm,
            progress=12,
            details={"calls": ["OvfManager.CreateImportSpec", "ResourcePool.ImportVApp"]},
        ):
            lease.create(import_descriptor(package.descriptor), package.image)
        count = len(package.image.disks)
        tools = 0
        for i, disk in enumerate(package.disks()):
            with ctx.step(
                ImportSteps.upload_disk,
                item=f"{i + 1}/{count}",
                progress=15 + int(75 * i / count),
                details={"file": disk.disk.href},
            ) as rec:
                rec["bytes"] = lease.upload(disk, percent=meter.percent)
            tools = max(tools, disk.tools_version)
        package.finish()
        with ctx.step(ImportSteps.complete_import, progress=92):
            lease.complete()
        if tools:
            with ctx.step(ImportSteps.record_tools, progress=93, details={IMAGE_TOOLS_KEY: tools}):
                v = vim()
                ops.reconfigure(
                    ops.find(spec.name),
                    v.vm.ConfigSpec(
                        extraConfig=[v.option.OptionValue(key=IMAGE_TOOLS_KEY, value=str(tools))]
                    ),
                    what="record the image's VMware Tools",
                )
    except BaseException as exc:
        undo(ctx, ImportSteps.abort_import, lease.abort, cause=exc)
        raise


def _import_over_ssh(
    ctx: JobContext, ops: AnyBackend, package: Package, spec: ImportTemplate, *, datastore: str, network: str
) -> None:
    from ceso.backends.ssh import SshVmBackend
    from ceso.images.ssh_import import config_spec, disk_paths, mac_source, upload_thin

    assert isinstance(ops, SshVmBackend), ops.route
    name = spec.name
    with ctx.step(ImportSteps.make_directory, progress=12, details={"path": datastore_path(datastore, name)}):
        ops.make_directory(datastore_path(datastore, name))
    image = package.image
    paths = disk_paths(datastore, name, len(image.disks))
    tools = 0
    for i, disk in enumerate(package.disks()):
        with ctx.step(
            ImportSteps.convert_upload,
            item=f"{i + 1}/{len(paths)}",
            progress=15 + int(75 * i / len(paths)),
            details={"file": disk.disk.href, "dest": paths[i]},
        ) as rec:
            rec["allocated_bytes"] = upload_thin(ops, disk, paths[i], adapter=image.scsi)
        tools = max(tools, disk.tools_version)
    package.finish()
    with ctx.step(ImportSteps.create_vm, progress=92):
        ops.create_vm(
            config_spec(
                image,
                name=name,
                datastore=datastore,
                network=network,
                paths=paths,
                macs=mac_source(ops),
                extra={JOB_MARKER: ctx.job.id, **({IMAGE_TOOLS_KEY: str(tools)} if tools else {})},
            )
        )
