"""Lock names built from host, VM, datastore and backup-target names.

A lock name is ``<kind>:<component>[:<component>]``. Components are user data
(VM names may hold spaces, quotes, ``:``, newlines, any Unicode), so each is
escaped injectively: ``%`` and ``:`` and every non-printable character become
``%XX`` (the UTF-8 bytes), everything else is kept so names stay readable in
``redis-cli`` and in error messages. Because an escaped component never holds
a ``:``, joining them with ``:`` cannot make two different tuples look alike,
and because the kinds are fixed words, a VM lock never equals a datastore lock.

A component longer than :data:`MAX_READABLE` characters is shortened to its
escaped head plus ``%#`` and the SHA-256 of the whole value; ``%#`` never occurs
in an escaped component, so a hashed name cannot equal an unhashed one.
"""

from __future__ import annotations

import hashlib

from ceso.errors import InvalidInputError

__all__ = ["MAX_READABLE", "datastore_lock_name", "escape_component", "target_lock_name", "vm_lock_name"]

#: Longer components are hashed. ESXi caps VM names at 80 and datastore names at 42
#: characters, so real names stay readable; only pathological input gets hashed.
MAX_READABLE = 128
_HEAD = 48


def escape_component(value: str) -> str:
    """One name component, escaped (see the module docstring).

    Raises InvalidInputError for an empty or non-string value.
    """
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"a lock name component must be a non-empty string, not {value!r}")
    if len(value) > MAX_READABLE:
        # surrogatepass: a lone surrogate is still hashed rather than crashing the job.
        digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
        return f"{_escape(value[:_HEAD])}%#{digest}"
    return _escape(value)


def _escape(value: str) -> str:
    out: list[str] = []
    for ch in value:
        if ch in "%:" or not ch.isprintable():
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        else:
            out.append(ch)
    return "".join(out)


def vm_lock_name(host: str, vm: str) -> str:
    """``vm:<host>:<vm>`` — held by every job that changes or reads a consistent view of one VM.

    Pass the most stable VM identifier the caller has; a VM renamed while
    another job holds its old name's lock is not protected by the name alone.
    """
    return f"vm:{escape_component(host)}:{escape_component(vm)}"


def datastore_lock_name(host: str, datastore: str) -> str:
    """``ds:<host>:<datastore>`` — held by jobs that create, move or delete files on a datastore."""
    return f"ds:{escape_component(host)}:{escape_component(datastore)}"


def target_lock_name(target: str) -> str:
    """``target:<target>`` — the name of a backup target's counting semaphore."""
    return f"target:{escape_component(target)}"
