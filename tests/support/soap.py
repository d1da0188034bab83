"""Scripted SOAP replies for tests of what the simulator cannot show (paging, offline clients).

The simulator answers every property-collector read in one page and has no
ContinueRetrievePropertiesEx, so paging is played by :class:`PagedStub`: a
stand-in for pyVmomi's SoapStubAdapter that answers request *i* with
``pages[i]`` and records each request body.
"""

from __future__ import annotations

import io
from typing import Any

from ceso.esxi.client import EsxiClient
from ceso.hosts.endpoint import parse_endpoint


def soap_reply(objects: str, token: str | None) -> bytes:
    """A RetrievePropertiesEx reply holding ``objects`` (``<objects>`` elements), with a continuation token."""
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>'
        + (f"<token>{token}</token>" if token else "")
        + objects
        + "</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"
    ).encode()


class _Reply:
    def __init__(self, body: bytes) -> None:
        self.status, self.reason, self._body = 200, "OK", io.BytesIO(body)

    def read(self, n: int = -1) -> bytes:
        return self._body.read(n)


class PagedStub:
    """Answers the requests in turn with ``pages``; checks each carries the session's cookie and version."""

    cookie, versionId, path = 'vmware_soap_session="x"', '"urn:vim25/8.0.1.0"', "/sdk"

    def __init__(self, pages: list[bytes]) -> None:
        self.pages = pages
        self.requests: list[bytes] = []

    def GetConnection(self) -> Any:
        stub = self

        class Conn:
            def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
                assert headers["Cookie"] == stub.cookie and headers["SOAPAction"] == stub.versionId
                stub.requests.append(body)

            def getresponse(self) -> _Reply:
                return _Reply(stub.pages[len(stub.requests) - 1])

            def close(self) -> None:
                pass

        return Conn()

    def ReturnConnection(self, conn: Any) -> None:
        pass

    def DropConnections(self) -> None:
        pass


def offline_client(content: Any) -> EsxiClient:
    """A client that believes it is logged in, with ``content`` as its ServiceContent; it never reaches a host."""
    client = EsxiClient(
        name="h",
        endpoint=parse_endpoint("http://127.0.0.1:9/sdk"),
        username="u",
        password=lambda: "p",
        thumbprint=None,
    )
    client._content = content
    return client
