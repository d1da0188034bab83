"""Configured backup targets: settings in SQL, credentials in the secret store.

:func:`add_target` proves a target works (write, read back, delete a probe
file) before anything is stored; a failure leaves neither a row nor a secret.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from sqlmodel import Session, select

from ceso.backup.targets import TARGET_TYPES
from ceso.db.backup_models import BackupSet, BackupTarget
from ceso.db.bounds import text_limit
from ceso.db.engine import session_scope
from ceso.db.types import utcnow
from ceso.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from ceso.backup.targets.base import Target
    from ceso.runtime import Runtime

__all__ = ["AddTargetRequest", "add_target", "get_target", "list_targets", "open_target", "remove_target"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # the length is the column's


def credentials_key(name: str) -> str:
    """Secret-store key of a target's credentials (a JSON object)."""
    return f"target:{name}:credentials"


@dataclass(frozen=True)
class AddTargetRequest:
    """What ``target add`` needs; ``credentials`` go to the secret store only."""

    name: str
    type: str
    path: str | None = None
    url: str | None = None
    endpoint: str | None = None
    region: str | None = None
    host: str | None = None
    datastore: str | None = None
    host_key: str | None = None
    credentials: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show the credentials, even in a traceback
        return (
            f"AddTargetRequest(name={self.name!r}, type={self.type!r}, url={self.url!r}, path={self.path!r})"
        )


def _config(req: AddTargetRequest) -> dict[str, Any]:
    """The non-secret settings of a target, validated (InvalidInputError)."""
    if req.type == "local":
        if not req.path:
            raise InvalidInputError("a local target needs --path DIR")
        return {"path": str(Path(req.path).expanduser().resolve())}
    if req.type == "sftp":
        parts = urlsplit(req.url or "")
        if parts.scheme != "sftp" or not parts.hostname or not parts.username:
            raise InvalidInputError("an sftp target needs --url sftp://user@host[:port]/path")
        return {
            "host": parts.hostname,
            "port": parts.port or 22,
            "username": unquote(parts.username),
            "path": unquote(parts.path) or "/",
            "host_key": req.host_key,
        }
    if req.type == "s3":
        parts = urlsplit(req.url or "")
        if parts.scheme != "s3" or not parts.netloc:
            raise InvalidInputError("an s3 target needs --url s3://bucket[/prefix]")
        return {
            "bucket": parts.netloc,
            "prefix": parts.path.strip("/"),
            "endpoint": req.endpoint,
            "region": req.region,
        }
    if req.type == "datastore":
        if not (req.host and req.datastore and req.path is not None):
            raise InvalidInputError("a datastore target needs --host H --datastore DS --path P")
        return {"host": req.host, "datastore": req.datastore, "path": req.path.strip("/")}
    raise InvalidInputError(f"--type must be one of {', '.join(TARGET_TYPES)}, not {req.type!r}")


def build_target(
    runtime: Runtime, name: str, type_: str, config: dict[str, Any], creds: dict[str, str]
) -> Target:
    """An open-able Target object from stored (or about to be stored) settings."""
    if type_ == "local":
        from ceso.backup.targets.local import LocalTarget

        return LocalTarget(name, config["path"])
    if type_ == "sftp":
        from ceso.backup.targets.sftp import SftpTarget

        if not config.get("host_key"):
            raise InvalidInputError(f"target {name}: no pinned SFTP host key")
        return SftpTarget(
            name,
            host=config["host"],
            port=int(config["port"]),
            username=config["username"],
            root=config["path"],
            host_key=config["host_key"],
            credentials=creds,
        )
    if type_ == "s3":
        from ceso.backup.targets.s3 import S3Target

        return S3Target(
            name,
            bucket=config["bucket"],
            prefix=config.get("prefix") or "",
            endpoint=config.get("endpoint"),
            region=config.get("region"),
            credentials=creds,
        )
    if type_ == "datastore":
        from ceso.backup.targets.datastore import DatastoreTarget
        from ceso.hosts.registry import client_for

        return DatastoreTarget(
            name,
            client=client_for(runtime, config["host"]),
            datastore=config["datastore"],
            root=config["path"],
        )
    raise InvalidInputError(f"unknown target type {type_!r}")


def target_to_dict(row: BackupTarget) -> dict[str, Any]:
    """The ``--json`` shape of a target (settings only, never credentials)."""
    return {
        "name": row.name,
        "type": row.type,
        "config": row.config,
        "created_at": row.created_at.isoformat(),
        "checked_at": row.checked_at.isoformat() if row.checked_at else None,
    }


def get_target(session: Session, name: str) -> BackupTarget:
    row = session.exec(select(BackupTarget).where(BackupTarget.name == name)).first()
    if row is None:
        known = ", ".join(session.exec(select(BackupTarget.name).order_by(BackupTarget.name)).all()) or "none"
        raise NotFoundError(f"unknown backup target {name!r} (configured: {known})")
    return row


def list_targets(session: Session) -> list[BackupTarget]:
    return list(session.exec(select(BackupTarget).order_by(BackupTarget.name)).all())


def _credentials(runtime: Runtime, name: str) -> dict[str, str]:
    try:
        data = json.loads(runtime.secrets.get(credentials_key(name)))
    except NotFoundError:
        return {}
    return {str(k): str(v) for k, v in data.items()}


def open_target(runtime: Runtime, name: str) -> Target:
    """The configured target ``name``, ready to use (NotFoundError if unknown). Close it after use."""
    with Session(runtime.engine) as session:
        row = get_target(session, name)
    return build_target(runtime, row.name, row.type, dict(row.config), _credentials(runtime, row.name))


def add_target(runtime: Runtime, req: AddTargetRequest) -> tuple[BackupTarget, dict[str, Any]]:
    """Check and register a target; return the row and the check's facts.

    Raises InvalidInputError (bad settings; for sftp without ``host_key`` it names the
    key the server presents, code ``host_key_unconfirmed``), ConflictError (name taken),
    and whatever the check raises. Nothing is stored unless the check passed.
    """
    limit = text_limit(BackupTarget, "name")
    if len(req.name) > limit or not _NAME.match(req.name):
        raise InvalidInputError(
            f"a target name is 1-{limit} letters, digits, '.', '_' or '-' (not starting with one)"
        )
    config = _config(req)
    with Session(runtime.engine) as session:
        if session.exec(select(BackupTarget).where(BackupTarget.name == req.name)).first() is not None:
            raise ConflictError(f"backup target {req.name!r} already exists (remove it first to change it)")
    if req.type == "sftp" and not req.host_key:
        from ceso.backup.targets.sftp import fetch_host_key

        seen = fetch_host_key(config["host"], config["port"])
        raise InvalidInputError(
            f"SFTP server {config['host']}:{config['port']} presents host key {seen}; verify it and pass "
            f"--host-key {seen}",
            code="host_key_unconfirmed",
            details={"host_key": seen},
        )
    target = build_target(runtime, req.name, req.type, config, dict(req.credentials))
    try:
        facts = target.check()
    finally:
        target.close()
    key = credentials_key(req.name)
    if req.credentials:
        runtime.secrets.set(key, json.dumps(req.credentials))
    try:
        with session_scope(runtime.engine) as session:
            row = BackupTarget(name=req.name, type=req.type, config=config, checked_at=utcnow())
            session.add(row)
    except sa.exc.IntegrityError as exc:
        runtime.secrets.delete(key)
        raise ConflictError(f"backup target {req.name!r} already exists") from exc
    except BaseException:
        runtime.secrets.delete(key)
        raise
    return row, facts


def check_target(runtime: Runtime, name: str) -> dict[str, Any]:
    """Probe a configured target (write, read back, delete); record when it last passed."""
    target = open_target(runtime, name)
    try:
        facts = target.check()
    finally:
        target.close()
    with session_scope(runtime.engine) as session:
        row = get_target(session, name)
        row.checked_at = utcnow()
        session.add(row)
    return facts


def remove_target(runtime: Runtime, name: str, *, force: bool = False) -> BackupTarget:
    """Forget a target (its row and credentials, not its files).

    Refuses (ConflictError) while the catalog lists backups on it, unless ``force``.
    """
    with session_scope(runtime.engine) as session:
        row = get_target(session, name)
        count = session.exec(
            select(sa.func.count()).select_from(BackupSet).where(BackupSet.target == name)
        ).one()
        if count and not force:
            raise ConflictError(
                f"target {name!r} holds {count} catalogued backup(s); delete them or pass --force "
                "(the files stay on the target)"
            )
        session.delete(row)
    runtime.secrets.delete(credentials_key(name))
    return row


def _where(row: BackupTarget) -> str:
    c = row.config
    if row.type == "sftp":
        return f"sftp://{c['username']}@{c['host']}:{c['port']}{c['path']}"
    if row.type == "s3":
        return f"s3://{c['bucket']}/{c.get('prefix') or ''}" + (
            f" at {c['endpoint']}" if c.get("endpoint") else ""
        )
    if row.type == "datastore":
        return f"{c['host']}:[{c['datastore']}] {c['path']}"
    return str(c.get("path"))


def target_rows(runtime: Runtime) -> list[dict[str, Any]]:
    """Every target as ``target list --json`` shows it."""
    with Session(runtime.engine) as session:
        return [{**target_to_dict(r), "where": _where(r)} for r in list_targets(session)]
