"""Walks of a host's inventory from the root folder, for one-request property-collector reads.

A read through a container view costs three round trips (CreateContainerView,
RetrievePropertiesEx, DestroyView). A standalone host's inventory has a fixed
shape — root folder → datacenter → its VM, host and network folders → compute
resource → host → datastores — so a FilterSpec that walks it with
TraversalSpecs reaches the same objects in a single RetrievePropertiesEx,
leaving nothing on the host to clean up.

A walk is a tuple of :class:`Hop` s; every hop is offered at the top of the
selection and names the hops to follow from where it lands. The property
collector applies a hop only to objects of its ``type``, and reports only
objects whose type has a PropertySpec, so the folders passed through are not
in the reply. Each walk comes in two forms built from the same hops: pyVmomi
objects (:func:`filter_spec`, for :class:`ceso.esxi.client.EsxiClient`) and
the ``objectSet`` XML (:func:`object_set_xml`, for :mod:`ceso.esxi.propxml`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from ceso.backends.vmomi import vim, vmodl

__all__ = ["LAYOUT_WALK", "VM_WALK", "Hop", "filter_spec", "object_set_xml"]


@dataclass(frozen=True)
class Hop:
    """Follow property ``path`` of each ``type`` object reached, then the hops named in ``then``."""

    name: str
    type: str
    path: str
    then: tuple[str, ...] = ()


#: Every VM: folders (nested too) and each datacenter's VM folder.
VM_WALK: tuple[Hop, ...] = (
    Hop("folder", "Folder", "childEntity", ("folder", "dcVm")),
    Hop("dcVm", "Datacenter", "vmFolder", ("folder",)),
)

#: The datacenters, their compute resources, each host's datastores (``host.datastore``: a standalone
#: host's ``Datacenter.datastore`` can hold dead references) and the networks of the network folder.
LAYOUT_WALK: tuple[Hop, ...] = (
    Hop("folder", "Folder", "childEntity", ("folder", "dcHost", "dcNet", "crHost")),
    Hop("dcHost", "Datacenter", "hostFolder", ("folder",)),
    Hop("dcNet", "Datacenter", "networkFolder", ("folder",)),
    Hop("crHost", "ComputeResource", "host", ("hostDs",)),
    Hop("hostDs", "HostSystem", "datastore"),
)


def filter_spec(root: Any, walk: tuple[Hop, ...], props: dict[str, list[str]]) -> Any:
    """The FilterSpec reading ``props`` (type name → property paths) of the objects ``walk`` reaches from ``root``."""
    v, pc = vim(), vmodl().query.PropertyCollector
    hops = [
        pc.TraversalSpec(
            name=hop.name,
            type=getattr(v, hop.type),
            path=hop.path,
            skip=False,
            selectSet=[pc.SelectionSpec(name=n) for n in hop.then],
        )
        for hop in walk
    ]
    return pc.FilterSpec(
        objectSet=[pc.ObjectSpec(obj=root, skip=True, selectSet=hops)],
        propSet=[pc.PropertySpec(type=getattr(v, t), pathSet=paths) for t, paths in props.items()],
    )


def object_set_xml(root_type: str, root_moid: str, walk: tuple[Hop, ...]) -> str:
    """The ``<objectSet>`` element of :func:`filter_spec` (element order as the vim25 schema wants it)."""
    hops = "".join(
        '<selectSet xsi:type="TraversalSpec">'
        f"<name>{escape(hop.name)}</name><type>{escape(hop.type)}</type>"
        f"<path>{escape(hop.path)}</path><skip>false</skip>"
        + "".join(f"<selectSet><name>{escape(n)}</name></selectSet>" for n in hop.then)
        + "</selectSet>"
        for hop in walk
    )
    return (
        f'<objectSet><obj type="{escape(root_type)}">{escape(root_moid)}</obj>'
        f"<skip>true</skip>{hops}</objectSet>"
    )
