"""Export, import and fingerprint of the backup encryption key (``ceso backup key ...``).

The key lives in one place, the secret store of the machine running ceso; if
that machine is lost, so is every encrypted backup. Exporting it to a file kept
elsewhere is the remedy, and importing that file on a new machine brings the
backups back.

Contracts:

* the key leaves the secret store only as the text of :mod:`ceso.backup.keyfile`,
  written to a **new** file created mode 0600 (never overwriting one), or
  returned to the caller for standard output when explicitly asked;
* import never silently replaces a different key: it needs ``force``, because
  backups made with the old key can then no longer be restored without it;
* both are audited (operation, key id, where the key went or came from, the
  outcome), never with the key. Errors never hold the key either.
"""

from __future__ import annotations

import base64
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ceso.backup.crypto import key_id
from ceso.backup.keyfile import MAX_KEY_TEXT, format_key_text, parse_key_text
from ceso.backup.keys import ENCRYPTION_KEY_NAME, load_key
from ceso.errors import CesoError, ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ceso.runtime import Runtime

__all__ = ["STDIO", "KeyExport", "export_key", "fingerprint", "import_key", "read_key_source"]

#: The ``--output`` / ``--input`` value meaning standard output / input.
STDIO = "-"


@dataclass(frozen=True)
class KeyExport:
    """An exported key: its id, where it went (a path or ``-``), and for ``-`` the text to print."""

    key_id: str
    output: str
    text: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "output": self.output}


def _backups_by_key(runtime: Runtime) -> Counter[str]:
    """How many good (completed or verified) catalogued backups each key id encrypted."""
    import sqlalchemy as sa
    from sqlmodel import Session, col, select

    from ceso.db.backup_models import BackupSet

    query = (
        select(BackupSet.key_id, sa.func.count())
        .where(col(BackupSet.key_id).is_not(None))
        .where(col(BackupSet.status).in_(["completed", "verified"]))
        .group_by(col(BackupSet.key_id))
    )
    with Session(runtime.engine) as session:
        return Counter({str(k): int(n) for k, n in session.exec(query).all()})


def _audit(runtime: Runtime, operation: str, outcome: str, details: dict[str, Any]) -> None:
    from ceso.audit.store import AuditEvent, record

    record(runtime.engine, AuditEvent("operation", outcome=outcome, operation=operation, details=details))


def fingerprint(runtime: Runtime) -> dict[str, Any]:
    """The stored key's id and how many catalogued backups need it or another key (NotFoundError if none)."""
    current = key_id(load_key(runtime.secrets))
    counts = _backups_by_key(runtime)
    return {
        "key_id": current,
        "backups_with_this_key": counts.pop(current, 0),
        "backups_with_other_keys": dict(sorted(counts.items())),
    }


def _write_new_file(path: Path, text: str) -> None:
    """Create ``path`` mode 0600 and write ``text``; ConflictError if it exists (never overwritten)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    except FileExistsError:
        raise ConflictError(f"{path} exists; a key file is never overwritten (choose another name)") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot create {path}: {exc.strerror}") from None
    try:
        os.fchmod(fd, 0o600)  # whatever the umask did, only the owner reads it
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)  # no half-written key file left behind
        raise


def export_key(runtime: Runtime, *, output: str, dry_run: bool = False) -> KeyExport:
    """Export the key to the new file ``output`` (mode 0600), or as text for ``output == "-"``.

    NotFoundError if there is no key; ConflictError if ``output`` exists. Audited either
    way, except a ``dry_run``, which checks both and writes nothing (and returns no text).
    """
    operation = "backup.key.export"
    destination = "stdout" if output == STDIO else str(Path(output).expanduser().absolute())
    if dry_run:
        current = key_id(load_key(runtime.secrets))
        if output != STDIO and os.path.lexists(destination):
            raise ConflictError(
                f"{destination} exists; a key file is never overwritten (choose another name)"
            )
        return KeyExport(current, output if output == STDIO else destination)
    try:
        key = load_key(runtime.secrets)
        text = format_key_text(key)
        if output != STDIO:
            _write_new_file(Path(destination), text)
    except CesoError as exc:
        _audit(runtime, operation, "failed", {"destination": destination, "error": exc.to_dict()})
        raise
    result = KeyExport(
        key_id(key), output if output == STDIO else destination, text if output == STDIO else None
    )
    _audit(runtime, operation, "ok", {"destination": destination, "key_id": result.key_id})
    return result


def read_key_source(source: str, stdin: Any) -> str:
    """The text of ``source`` (a file path, or ``-`` for ``stdin``), at most a key file's size."""
    if source == STDIO:
        text = stdin.read(MAX_KEY_TEXT + 1)
        return text if isinstance(text, str) else text.decode("utf-8", "replace")
    from ceso.input_files import read_text_file

    return read_text_file(source, "--input", max_bytes=MAX_KEY_TEXT)


def _current_id(runtime: Runtime) -> str | None:
    """The stored key's id; None if there is none; ``"unreadable"`` if what is stored is not a key."""
    try:
        return key_id(load_key(runtime.secrets))
    except NotFoundError:
        return None
    except CesoError:
        return "unreadable"


def import_key(
    runtime: Runtime, *, text: str, source: str, force: bool, dry_run: bool = False
) -> dict[str, Any]:
    """Store the key held by ``text`` (read from ``source``, named in the audit record).

    * a malformed key: InvalidInputError (exit 2), nothing stored;
    * the same key already stored: nothing to do (``unchanged``);
    * a different key stored: ConflictError unless ``force``; with ``force`` it is
      replaced and the result says how many catalogued backups need the old one;
    * ``dry_run``: every check, then the result with nothing stored and nothing audited.
    """
    operation = "backup.key.import"
    where = "stdin" if source == STDIO else str(Path(source).expanduser().absolute())
    details: dict[str, Any] = {"source": where, "force": force}
    try:
        new_key = parse_key_text(text)
        new_id = key_id(new_key)
        previous = _current_id(runtime)
        details.update(key_id=new_id, previous_key_id=previous)
        if previous == new_id:
            if not dry_run:
                _audit(runtime, operation, "ok", {**details, "unchanged": True})
            return {"key_id": new_id, "previous_key_id": previous, "unchanged": True, "replaced": False}
        needing_old = _backups_by_key(runtime).get(previous or "", 0)
        if previous is not None and not force:
            raise ConflictError(
                f"the secret store holds a different backup key ({previous}, needed by {needing_old} "
                f"catalogued backups) than the one given ({new_id}); replace it with --force, after "
                "exporting it if you still need those backups",
                code="backup_key_conflict",
                details={"key_id": new_id, "previous_key_id": previous},
            )
        if not dry_run:
            runtime.secrets.set(ENCRYPTION_KEY_NAME, base64.b64encode(new_key).decode())
    except CesoError as exc:
        if not dry_run:
            _audit(runtime, operation, "failed", {**details, "error": exc.to_dict()})
        raise
    result = {
        "key_id": new_id,
        "previous_key_id": previous,
        "unchanged": False,
        "replaced": previous is not None,
        "backups_needing_previous_key": needing_old if previous is not None else 0,
        "backups_with_this_key": _backups_by_key(runtime).get(new_id, 0),
    }
    if dry_run:
        return {**result, "dry_run": True}
    _audit(runtime, operation, "ok", {**details, "replaced": result["replaced"]})
    return result
