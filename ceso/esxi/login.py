"""Logging in to a host's SOAP API with a deadline on every request, the version probe included.

pyVim's ``SmartConnect`` first asks the host which API versions it speaks, over a connection
without a timeout: a host that accepts connections and never answers hangs it for good. This
module makes the same probe with ``timeout`` and then calls pyVim's ``Connect``, whose requests
(login included) carry the timeout too.
"""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from xml.etree.ElementTree import ElementTree, ParseError
from xml.parsers.expat import ExpatError

from ceso.backends.vmomi import pyvim_connect

__all__ = ["connect_with_deadline"]


def connect_with_deadline(
    *,
    protocol: str,
    host: str,
    port: int,
    path: str,
    user: str,
    pwd: str,
    ssl_context: ssl.SSLContext | None,
    timeout: float,
) -> Any:
    """Log in and return the ServiceInstance; every request waits at most ``timeout`` seconds.

    Raises what pyVim and the socket raise (callers translate): TimeoutError when the host does
    not answer in time, ConnectionError when it answers but is not a vSphere API.
    """
    connect = pyvim_connect()
    context = connect.getSslContext(host, ssl_context, False)
    version = _supported_version(connect, protocol, host, port, path, context, timeout)
    if version is None:
        raise ConnectionError(f"{host}:{port} is down or is not a vSphere API endpoint")
    return connect.Connect(
        host=host,
        port=-port if protocol == "http" else port,  # pyVim's way of saying plain http
        user=user,
        pwd=pwd,
        version=version,
        path=path,
        sslContext=context,
        httpConnectionTimeout=timeout,
    )


def _supported_version(
    connect: Any,
    protocol: str,
    host: str,
    port: int,
    path: str,
    context: ssl.SSLContext | None,
    timeout: float,
) -> str | None:
    """The most preferred vim25 version the host's ``vimServiceVersions.xml`` lists, as SmartConnect
    chooses it; None if the document is missing or unreadable."""
    conn: http.client.HTTPConnection
    if protocol == "https":
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path + "/vimServiceVersions.xml")
        response = conn.getresponse()
        if response.status != 200:
            return None
        tree = ElementTree()
        try:
            tree.parse(response)
        except (ParseError, ExpatError):
            return None
    finally:
        conn.close()
    supported = getattr(connect, "__VersionIsSupported")
    for version in connect.GetServiceVersions("vim25"):
        if supported(version, tree):
            return str(version)
    return None
