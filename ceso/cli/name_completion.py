"""Shell completion of names: hosts, VMs, templates and backup targets.

click completes commands and options itself (``_CESO_COMPLETE=bash_source ceso``, or
``ceso completion bash``, :mod:`ceso.cli.completion`); this module adds the names. Hosts, templates and targets come from
SQL through the database driver (:mod:`ceso.db.direct`), VM names from the last listing
``ceso vm list`` wrote (:func:`remember_vm_names`, kept :data:`VM_NAMES_TTL_S`) plus the
registered templates: a tab never waits on an ESXi host. Any failure completes nothing.

:func:`wire` gives each parameter of a command its completer by what it names;
:class:`ceso.cli.lazy.LazyGroup` calls it on every command it loads.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["SHELLS", "VM_NAMES_TTL_S", "remember_vm_names", "wire"]

SHELLS = ("bash", "zsh", "fish")

VM_NAMES_TTL_S = 600.0
_CACHE_FILE = "vm-names.json"

Completer = Callable[[click.Context, click.Parameter, str], list["CompletionItem"]]


def _settings() -> Any:
    from ceso.settings import get_settings

    return get_settings(os.environ.get("CESO_CONFIG"))


def _sql_names(table: str) -> list[str]:
    from ceso.db.direct import DirectReadUnavailable, fetch_all, open_readonly

    try:
        with open_readonly(_settings().database_url) as conn:
            if conn is None:
                return []
            rows = fetch_all(conn, f"SELECT name FROM {table} ORDER BY name")  # noqa: S608 - a fixed table
    except DirectReadUnavailable:
        return []
    return [str(r["name"]) for r in rows]


def _cached_listings() -> dict[str, Any]:
    """``{host: {"at": seconds, "names": [...]}}`` as the last listings left it."""
    try:
        with open(os.path.join(_settings().data_dir, _CACHE_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _vm_names() -> list[str]:
    names = set(_sql_names("templates"))
    now = time.time()
    for listing in _cached_listings().values():
        try:
            if now - float(listing["at"]) <= VM_NAMES_TTL_S:
                names.update(str(n) for n in listing["names"])
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(names)


def remember_vm_names(names_by_host: dict[str, list[str]]) -> None:
    """Keep the VM names a listing found on each host, for completion (best effort: a failure here
    never fails the listing)."""
    try:
        listings = _cached_listings()
        now = time.time()
        listings.update({host: {"at": now, "names": sorted(set(n))} for host, n in names_by_host.items()})
        directory = str(_settings().data_dir)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        part = os.path.join(directory, f"{_CACHE_FILE}.{os.getpid()}")
        with open(part, "w", encoding="utf-8") as fh:
            json.dump(listings, fh)
        os.replace(part, os.path.join(directory, _CACHE_FILE))
    except Exception:
        return


def _completer(source: Callable[[], list[str]]) -> Completer:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem  # only when completing: --help stays light

        try:
            names = source()
        except Exception:
            return []
        return [CompletionItem(n) for n in names if n.startswith(incomplete)]

    return complete


HOSTS = _completer(lambda: _sql_names("hosts"))
VMS = _completer(_vm_names)
TEMPLATES = _completer(lambda: _sql_names("templates"))
TARGETS = _completer(lambda: _sql_names("backup_targets"))

#: The parameters that name something, by name, anywhere.
_BY_NAME = {"host": HOSTS, "template": TEMPLATES, "target": TARGETS, "vm": VMS, "source": VMS}
#: ``name`` in these groups names an existing one, except in the commands that make one.
_NAME_IN_GROUP = {"vm": VMS, "host": HOSTS, "template": TEMPLATES, "target": TARGETS}
_MAKES_NAME = {("vm", "create"), ("vm", "clone"), ("host", "add"), ("target", "add"), ("template", "import")}


def _for(path: tuple[str, ...], param: click.Parameter) -> Completer | None:
    if param.name in _BY_NAME:
        return _BY_NAME[param.name]
    if param.name == "name" and path and path[0] in _NAME_IN_GROUP and path[:2] not in _MAKES_NAME:
        # `template add NAME` names a VM that is not a template yet
        return VMS if path[:2] == ("template", "add") else _NAME_IN_GROUP[path[0]]
    return None


def wire(command: click.Command, path: tuple[str, ...]) -> None:
    """Give the parameters of ``command`` (``ceso`` + ``path``) that name things their completer.

    A parameter that declared its own completion keeps it. Only ``command``'s own parameters:
    its subcommands are wired by the group that hands them out (:class:`ceso.cli.lazy.LazyGroup`).
    """
    for param in command.params:
        completer = _for(path, param)
        # click keeps a parameter's shell_complete= in this attribute; set once, here.
        if completer is not None and getattr(param, "_custom_shell_complete", None) is None:
            param._custom_shell_complete = completer
