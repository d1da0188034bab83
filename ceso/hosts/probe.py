"""The capability probe: what a host allows, recorded in ``hosts.capabilities`` (JSON) for route choice.

``probe_capabilities`` answers, for one host:

* ``product``/``version``/``build``/``api_version``/``api_type`` — ``ServiceContent.about``;
* ``license`` — the LicenseManager's licenses read through the property
  collector; a free edition (``esxBasic``, ``esx.hypervisor.cpuPackageCoreLimited``
  or any edition key or name with "hypervisor") makes the API read-only;
* ``api_write_probe`` — one harmless write: ``UpdateOptions`` of an option
  key no host has. A host that allows writes answers InvalidName (nothing is
  changed); a free host refuses it with ``RestrictedVersion`` before looking;
* ``api_writes`` — False if either signal says read-only (``api_writes_signal``
  says which), True if both say writable, None if neither could tell;
* ``ssh`` — configured, reachable and authenticated, which of ``vim-cmd``,
  ``vmkfstools``, ``esxcli`` the shell has, and the error if any;
* ``datastores`` and ``hardware_versions`` (EnvironmentBrowser
  QueryConfigOptionDescriptor, omitted where the host lacks it).

Nothing here raises for a capability that is missing: that is the answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ceso.db.types import utcnow
from ceso.errors import CesoError, InvalidInputError, NotPermittedError
from ceso.esxi.client import EsxiClient

if TYPE_CHECKING:
    from ceso.ssh.client import SshClient

__all__ = ["FREE_EDITIONS", "is_free_license", "probe_capabilities"]

log = logging.getLogger(__name__)
FREE_EDITIONS = frozenset({"esxBasic", "esx.hypervisor.cpuPackageCoreLimited"})
# No host has this option: a writable host answers InvalidName and changes nothing. (govmomi's
# simulator answers InvalidName only for keys starting "ENOENT.", so the key starts so.)
PROBE_OPTION = "ENOENT.ceso.write-probe"
TOOLS = ("vim-cmd", "vmkfstools", "esxcli")


def is_free_license(edition_key: str, name: str) -> bool:
    """True for the free (read-only API) editions, old and new."""
    return edition_key in FREE_EDITIONS or "hypervisor" in edition_key.lower() or "hypervisor" in name.lower()


def _licenses(client: EsxiClient) -> list[dict[str, Any]]:
    lm = client.content.licenseManager
    infos = client.retrieve_object(lm, ["licenses"]).get("licenses") or []
    return [{"edition_key": str(i.editionKey), "name": str(i.name)} for i in infos]


def _write_probe(client: EsxiClient) -> str:
    """``accepted``, ``RestrictedVersion``, ``NoPermission`` or ``unknown`` (see module docstring)."""
    from ceso.backends.vmomi import vim

    v = vim()
    try:
        host = client.host_system()
        manager = client.retrieve_object(host, ["configManager.advancedOption"]).get(
            "configManager.advancedOption"
        )
        if manager is None:
            return "unknown"
        change = [v.option.OptionValue(key=PROBE_OPTION, value="")]
        client.call("probe an API write", lambda: manager.UpdateOptions(changedValue=change))
    except NotPermittedError as exc:
        return "RestrictedVersion" if exc.code == "api_read_only" else "NoPermission"
    except InvalidInputError:
        return "accepted"  # InvalidName: the host looked at the option, so it takes writes
    except CesoError as exc:
        log.info("write probe on %s inconclusive: %s", client.name, exc.message)
        return "unknown"
    return "accepted"


def _hardware_versions(client: EsxiClient) -> list[str] | None:
    try:
        rows = client.retrieve("ComputeResource", ["environmentBrowser"])
        browser = rows[0].get("environmentBrowser") if rows else None
        if browser is None:
            return None
        descriptors = client.call("read hardware versions", browser.QueryConfigOptionDescriptor)
    except CesoError as exc:
        log.info("hardware versions of %s unknown: %s", client.name, exc.message)
        return None
    return sorted({str(d.key) for d in descriptors or [] if d.createSupported})


def _ssh(ssh: SshClient | None) -> dict[str, Any]:
    if ssh is None:
        return {"configured": False}
    from ceso.ssh import commands

    out: dict[str, Any] = {"configured": True, "reachable": False, "authenticated": False}
    try:
        if not ssh.connected:  # a live session has already proven the login
            ssh.connect()
        out.update(reachable=True, authenticated=True)
        out["commands"] = {
            tool: ssh.run(commands.command_exists(tool), check=False).exit_status == 0 for tool in TOOLS
        }
    except CesoError as exc:
        out["reachable"] = exc.code not in ("host_unreachable", "connection_lost")
        out["error"] = exc.to_dict()
    return out


def probe_capabilities(client: EsxiClient, ssh: SshClient | None) -> dict[str, Any]:
    """Probe ``client``'s host (and its SSH login, if any); the dict stored in ``hosts.capabilities``."""
    about = client.content.about
    licenses = _licenses(client)
    free = [lic for lic in licenses if is_free_license(lic["edition_key"], lic["name"])]
    probe = _write_probe(client)
    if free or probe in ("RestrictedVersion", "NoPermission"):
        writes: bool | None = False
        signal = "license" if free else probe
    else:
        writes = True if probe == "accepted" else None
        signal = "probe_write_accepted" if writes else "unknown"
    datastores = sorted(
        str(r["summary.name"]) for r in client.retrieve("Datastore", ["summary.name"]) if "summary.name" in r
    )
    caps: dict[str, Any] = {
        "probed_at": utcnow().isoformat(),
        "product": str(about.fullName),
        "version": str(about.version),
        "build": str(about.build),
        "api_version": str(about.apiVersion),
        "api_type": str(about.apiType),
        "license": {"licenses": licenses, "free": bool(free)},
        "api_write_probe": probe,
        "api_writes": writes,
        "api_writes_signal": signal,
        "ssh": _ssh(ssh),
        "datastores": datastores,
    }
    versions = _hardware_versions(client)
    if versions is not None:
        caps["hardware_versions"] = versions
    return caps
