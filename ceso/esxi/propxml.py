"""Bulk property-collector reads parsed straight from the SOAP reply.

pyVmomi turns every element of a reply into a Python data object in
pure-Python parser callbacks. For a listing of a whole host that is most of
the time: a thousand VMs' ``config.hardware.device`` are over a hundred
thousand elements, and building objects for them costs far more than the
round trip (docs/benchmarks.md, benchmark 1). This module sends the same
``RetrievePropertiesEx`` / ``ContinueRetrievePropertiesEx`` requests over the
session's own pooled (and pinned) connection and hands each ``objects``
element of the reply, as it arrives, to the caller as an ElementTree element:
the C parser builds the tree and the caller reads only what it shows. Where
even that is too much and the answer is a set of plain values,
:func:`scan_walk_xml` finds them in the reply's bytes without parsing it.

Contract: the same objects and properties as :meth:`EsxiClient.retrieve`
(container view over the root folder, every page) — for
:func:`retrieve_walk_xml` and :func:`scan_walk_xml`, as
:meth:`EsxiClient.retrieve_walk`; for :func:`retrieve_object_xml`, as
:meth:`EsxiClient.retrieve_object` — the same error translation and session
re-login, and every request counted in the client's ``stats``. Use it where
a read is large and its consumer is known; use ``retrieve`` for everything
else.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from xml.sax.saxutils import escape

from ceso.errors import OperationError
from ceso.esxi.traversal import Hop, object_set_xml

if TYPE_CHECKING:
    from ceso.esxi.client import EsxiClient

__all__ = [
    "VIM",
    "XSI_TYPE",
    "ObjectXml",
    "SoapFault",
    "iter_children",
    "retrieve_object_xml",
    "retrieve_walk_xml",
    "retrieve_xml",
    "scan_walk_xml",
    "text_of",
]

T = TypeVar("T")

VIM = "{urn:vim25}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_SOAP_ENV = "{http://schemas.xmlsoap.org/soap/envelope/}"
_READ_CHUNK = 256 * 1024
_TOKEN = re.compile(rb"<(?:[\w.-]+:)?token>([^<]+)<")


class SoapFault(Exception):  # noqa: N818 - subclasses are named after the vSphere fault
    """A SOAP fault answered to a raw request; subclassed per fault so ``fault_name`` sees the vSphere name."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.msg = msg


def _fault(name: str, message: str) -> SoapFault:
    cls: type[SoapFault] = type(name or "SoapFault", (SoapFault,), {})
    return cls(message or name)


@dataclass(frozen=True)
class ObjectXml:
    """One object of a reply: its managed-object id and the ``val`` element of each property that is set."""

    moid: str
    props: dict[str, ET.Element]


def text_of(element: ET.Element | None, path: str, default: str | None = None) -> str | None:
    """The text of the child at ``path`` (names without namespace, ``/``-separated), or ``default``."""
    if element is None:
        return default
    found = element.find("/".join(VIM + part for part in path.split("/")))
    return found.text if found is not None and found.text is not None else default


def _envelope(body: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
        f"<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"
    ).encode()


def _moref(tag: str, type_name: str, moid: str) -> str:
    return f'<{tag} type="{escape(type_name)}">{escape(moid)}</{tag}>'


def _view_object_set(view: str) -> str:
    """Every object of a container view (the view itself skipped)."""
    return (
        "<objectSet>"
        + _moref("obj", "ContainerView", view)
        + "<skip>true</skip>"
        + '<selectSet xsi:type="TraversalSpec"><name>view</name><type>ContainerView</type>'
        + "<path>view</path><skip>false</skip></selectSet>"
        + "</objectSet>"
    )


def _retrieve_body(collector: str, object_set: str, type_name: str, props: list[str], page: int) -> bytes:
    paths = "".join(f"<pathSet>{escape(p)}</pathSet>" for p in props)
    return _envelope(
        '<RetrievePropertiesEx xmlns="urn:vim25">'
        + _moref("_this", "PropertyCollector", collector)
        + "<specSet>"
        + f"<propSet><type>{escape(type_name)}</type><all>false</all>{paths}</propSet>"
        + object_set
        + "</specSet>"
        + f"<options><maxObjects>{page}</maxObjects></options>"
        + "</RetrievePropertiesEx>"
    )


def _continue_body(collector: str, token: str) -> bytes:
    return _envelope(
        '<ContinueRetrievePropertiesEx xmlns="urn:vim25">'
        + _moref("_this", "PropertyCollector", collector)
        + f"<token>{escape(token)}</token></ContinueRetrievePropertiesEx>"
    )


@contextmanager
def _exchange(stub: Any, body: bytes) -> Iterator[Any]:
    """POST one request on a pooled connection and yield the response (HTTP 200 or 500).

    The connection goes back to the pool once the block has read the reply;
    if the block (or the transport) fails, it is closed and the pool dropped.
    Other HTTP statuses raise OperationError.
    """
    headers = {"Cookie": stub.cookie, "SOAPAction": stub.versionId, "Content-Type": "text/xml; charset=UTF-8"}
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, body, headers)
        resp = conn.getresponse()
    except Exception:
        conn.close()
        stub.DropConnections()
        raise
    if resp.status not in (200, 500):
        conn.close()
        raise OperationError(f"the host answered HTTP {resp.status} {resp.reason}", code="esxi_fault")
    try:
        yield resp
    except Exception:
        conn.close()
        stub.DropConnections()
        raise
    stub.ReturnConnection(conn)


def _post(stub: Any, body: bytes, on_object: Callable[[ET.Element], None]) -> str | None:
    """POST one request; feed each ``objects`` element of the reply to ``on_object`` as it arrives.

    Returns the reply's continuation token (None on the last page). Raises a
    :class:`SoapFault` subclass for a fault, ``http.client`` or socket
    errors for transport failures (translated by the caller).
    """
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
    token: str | None = None
    fault: SoapFault | None = None
    with _exchange(stub, body) as resp:
        while chunk := resp.read(_READ_CHUNK):
            parser.feed(chunk)
            # "end" events carry elements (the other event kinds are not asked for)
            for _event, element in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
                tag = element.tag
                if tag == VIM + "objects":
                    lost = _session_lost(element)
                    if lost is None:
                        on_object(element)
                    else:
                        fault = lost
                    element.clear()  # the reply can be large: keep memory flat
                elif tag == VIM + "token":
                    token = element.text
                elif tag == _SOAP_ENV + "Fault":
                    fault = _parse_fault(element)
        parser.close()
    if fault is not None:
        raise fault
    if resp.status == 500:
        raise OperationError("the host answered HTTP 500 without a SOAP fault", code="esxi_fault")
    return token


def _post_scan(stub: Any, body: bytes, leaf: re.Pattern[bytes], on_text: Callable[[str], None]) -> str | None:
    """POST one request; hand the text of every ``leaf`` match in the reply to ``on_text``, unparsed.

    Returns the continuation token; faults and transport errors as :func:`_post`.
    """
    with _exchange(stub, body) as resp:
        data = resp.read()
    if resp.status == 500:  # a fault: its reply is small, parse it
        parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
        parser.feed(data)
        for _event, element in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
            if element.tag == _SOAP_ENV + "Fault":
                raise _parse_fault(element)
        raise OperationError("the host answered HTTP 500 without a SOAP fault", code="esxi_fault")
    if b"missingSet" in data:  # rare: parse the reply to see whether the session is gone
        parser = ET.XMLPullParser(events=("end",))
        parser.feed(data)
        for _event, element in cast("Iterator[tuple[str, ET.Element]]", parser.read_events()):
            if element.tag == VIM + "objects" and (lost := _session_lost(element)) is not None:
                raise lost
    for match in leaf.finditer(data):
        on_text(match.group(1).decode())
    # The token comes before the first object (RetrieveResult's schema order): look only there.
    first_object = data.find(b"<objects")
    token = _TOKEN.search(data, 0, first_object if first_object >= 0 else len(data))
    return token.group(1).decode() if token else None


def _session_lost(objects: ET.Element) -> SoapFault | None:
    """NotAuthenticated if the host left out a property of ``objects`` for want of a session, else None.

    A host may answer a property-collector read on a lost session with the
    objects and, in their ``missingSet``, a NotAuthenticated fault instead of a
    SOAP fault; raised, it makes the caller log in again and retry.
    """
    for missing in objects.iterfind(VIM + "missingSet"):
        fault = missing.find(f"{VIM}fault/{VIM}fault")
        if fault is not None and (fault.get(XSI_TYPE) or "").rpartition(":")[2] == "NotAuthenticated":
            return _fault("NotAuthenticated", text_of(missing, "path") or "session lost")
    return None


def _parse_fault(element: ET.Element) -> SoapFault:
    message = element.findtext("faultstring") or ""
    detail = element.find("detail")
    name = ""
    if detail is not None and len(detail):
        first = detail[0]
        name = (first.get(XSI_TYPE) or first.tag.rpartition("}")[2].removesuffix("Fault")).rpartition(":")[2]
    return _fault(name, message)


def _objects(element: ET.Element) -> ObjectXml:
    obj = element.find(VIM + "obj")
    props: dict[str, ET.Element] = {}
    for prop in element.iterfind(VIM + "propSet"):
        name, val = prop.find(VIM + "name"), prop.find(VIM + "val")
        if name is not None and name.text and val is not None:
            props[name.text] = val
    return ObjectXml(moid=(obj.text or "") if obj is not None else "", props=props)


def retrieve_xml(
    client: EsxiClient,
    type_name: str,
    props: list[str],
    build: Callable[[ObjectXml], T],
    *,
    page_size: int = 500,
) -> list[T]:
    """``build(obj)`` for every object of ``type_name`` on the host, reading ``props`` in one pass.

    ``build`` runs while the reply streams in and must copy what it needs:
    the elements are cleared after it returns. Reads are retried like
    :meth:`EsxiClient.read` (the whole pass starts over, so ``build`` must
    have no side effects beyond its result).
    """
    from ceso.backends.vmomi import vim

    vim_ = vim()

    def run() -> list[T]:
        content = client.content
        view = content.viewManager.CreateContainerView(content.rootFolder, [getattr(vim_, type_name)], True)
        results: list[T] = []

        def on_object(element: ET.Element) -> None:
            results.append(build(_objects(element)))

        try:
            _pages(
                client,
                _view_object_set(view._moId),
                type_name,
                props,
                page_size,
                lambda stub, body: _post(stub, body, on_object),
            )
            return results
        finally:
            view.DestroyView()

    return client.read(f"list {type_name}", run)


def retrieve_walk_xml(
    client: EsxiClient,
    walk: tuple[Hop, ...],
    type_name: str,
    props: list[str],
    build: Callable[[ObjectXml], T],
    *,
    page_size: int = 500,
) -> list[T]:
    """As :func:`retrieve_xml`, for the ``type_name`` objects ``walk`` reaches from the root folder.

    No container view: one request per ``page_size`` objects where
    :func:`retrieve_xml` adds two (see :mod:`ceso.esxi.traversal`).
    """

    def run() -> list[T]:
        results: list[T] = []

        def on_object(element: ET.Element) -> None:
            results.append(build(_objects(element)))

        object_set = object_set_xml("Folder", client.content.rootFolder._moId, walk)
        _pages(
            client, object_set, type_name, props, page_size, lambda stub, body: _post(stub, body, on_object)
        )
        return results

    return client.read(f"list {type_name}", run)


def retrieve_object_xml(
    client: EsxiClient, type_name: str, moid: str, props: list[str], build: Callable[[ObjectXml], T]
) -> T | None:
    """``build(obj)`` for the one object ``type_name`` ``moid``, reading ``props`` in one request.

    None if the reply holds no object. A small read parsed here rather than by
    pyVmomi is worth it when its consumer needs little of a large property
    (a VM's device list: see :mod:`ceso.esxi.source`). ``build`` as in
    :func:`retrieve_xml`; faults, retries and counting as there.
    """

    def run() -> T | None:
        results: list[T] = []

        def on_object(element: ET.Element) -> None:
            results.append(build(_objects(element)))

        object_set = f"<objectSet>{_moref('obj', type_name, moid)}<skip>false</skip></objectSet>"
        _pages(client, object_set, type_name, props, 1, lambda stub, body: _post(stub, body, on_object))
        return results[0] if results else None

    return client.read("read properties", run)


def scan_walk_xml(
    client: EsxiClient,
    walk: tuple[Hop, ...],
    type_name: str,
    props: list[str],
    leaf: str,
    *,
    page_size: int = 500,
) -> list[str]:
    """The text of every ``leaf`` element in the ``props`` of the ``type_name`` objects ``walk`` reaches.

    The reply is scanned, not parsed: for a thousand VMs' device lists the
    scan is far cheaper than building the elements. Sound because element text
    in a vim25 reply never holds markup (``<`` is always escaped), so a
    ``<leaf>`` tag in the bytes is an element; the caller picks a leaf whose
    text is plain (no entities) and accepts every element of that name
    anywhere in ``props``. One request per ``page_size`` objects, no container
    view (see :mod:`ceso.esxi.traversal`); faults, retries and counting as
    :func:`retrieve_xml`.
    """
    pattern = re.compile(rb"<(?:[\w.-]+:)?" + re.escape(leaf.encode()) + rb"(?:\s[^>]*)?>([^<]*)<")

    def run() -> list[str]:
        texts: list[str] = []
        object_set = object_set_xml("Folder", client.content.rootFolder._moId, walk)
        _pages(
            client,
            object_set,
            type_name,
            props,
            page_size,
            lambda stub, body: _post_scan(stub, body, pattern, texts.append),
        )
        return texts

    return client.read(f"list {type_name}", run)


def _pages(
    client: EsxiClient,
    object_set: str,
    type_name: str,
    props: list[str],
    page_size: int,
    send: Callable[[Any, bytes], str | None],
) -> None:
    """Every page of one RetrievePropertiesEx: ``send(stub, body)`` posts one and returns its token."""
    content = client.content
    stub = content.propertyCollector._stub
    collector = content.propertyCollector._moId
    body = _retrieve_body(collector, object_set, type_name, props, page_size)
    method = "RetrievePropertiesEx"
    while True:
        token = client.timed(method, lambda: send(stub, body))  # noqa: B023
        if not token:
            return
        body, method = _continue_body(collector, token), "ContinueRetrievePropertiesEx"


def iter_children(element: ET.Element | None, name: str) -> Iterator[ET.Element]:
    """The children of ``element`` named ``name`` (no namespace), in order."""
    if element is not None:
        yield from element.iterfind(VIM + name)
