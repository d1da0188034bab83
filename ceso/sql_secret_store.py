"""The SQL secret store: every secret encrypted under the installation's master key, in SQL.

Any machine that shares the database and has the master key file reads every credential (host
passwords and SSH keys, target credentials, sealed job params, the backup key); the database
holds only Fernet tokens, each tagged with the id of the key that made it (``key_id``, a hash,
never the key). :meth:`SqlSecretStore.check` is what a worker runs at start.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ceso.db.secret_models import StoredSecret
from ceso.db.types import utcnow
from ceso.errors import NotFoundError
from ceso.master_key import MasterKeys, load_master_keys

__all__ = ["SqlSecretStore"]


class SqlSecretStore:
    """Secrets in the ``secrets`` table, encrypted with :class:`~ceso.master_key.MasterKeys`.

    The key file is read on first use, so commands that touch no secret run without it.
    """

    kind = "sql"

    def __init__(self, engine: Callable[[], Engine], *, key_file: Path | None, data_dir: Path) -> None:
        self._engine = engine
        self._key_file = key_file
        self._data_dir = data_dir
        self._keys: MasterKeys | None = None

    @property
    def keys(self) -> MasterKeys:
        if self._keys is None:
            self._keys = load_master_keys(self._key_file, self._data_dir)
        return self._keys

    def get(self, key: str) -> str:
        with Session(self._engine()) as session:
            row = session.get(StoredSecret, key)
        if row is None:
            raise NotFoundError(f"no secret stored for {key} in the database")
        return self.keys.decrypt(row.token, kid=row.key_id, name=key)

    def set(self, key: str, value: str) -> None:
        token, kid = self.keys.encrypt(value), self.keys.primary_id
        engine = self._engine()
        with Session(engine) as session:
            updated = session.execute(
                sa.update(StoredSecret)
                .where(col(StoredSecret.name) == key)
                .values(token=token, key_id=kid, updated_at=utcnow())
            )
            if updated.rowcount == 0:  # type: ignore[attr-defined]
                session.add(StoredSecret(name=key, token=token, key_id=kid))
            try:
                session.commit()
            except sa.exc.IntegrityError:  # another process inserted it first: overwrite theirs
                session.rollback()
                session.execute(
                    sa.update(StoredSecret)
                    .where(col(StoredSecret.name) == key)
                    .values(token=token, key_id=kid, updated_at=utcnow())
                )
                session.commit()

    def delete(self, key: str) -> None:
        with Session(self._engine()) as session:
            session.execute(sa.delete(StoredSecret).where(col(StoredSecret.name) == key))
            session.commit()

    def check(self) -> dict[str, int]:
        """Load the key file and make sure it decrypts every stored secret; return the count of
        secrets under each key id. Raises ConfigError (exit 2) naming what is wrong."""
        keys = self.keys
        with Session(self._engine()) as session:
            rows = list(session.exec(select(StoredSecret)))
        counts: dict[str, int] = {}
        for row in rows:
            keys.decrypt(row.token, kid=row.key_id, name=row.name)
            counts[row.key_id] = counts.get(row.key_id, 0) + 1
        return counts

    def rotate(self) -> int:
        """Re-encrypt every secret not under the primary key; return how many were. Each row is
        its own transaction, guarded by its old token, so a concurrent ``set`` is never undone."""
        keys = self.keys
        moved = 0
        engine = self._engine()
        with Session(engine) as session:
            stale = list(session.exec(select(StoredSecret).where(StoredSecret.key_id != keys.primary_id)))
        for row in stale:
            value = keys.decrypt(row.token, kid=row.key_id, name=row.name)
            with Session(engine) as session:
                done = session.execute(
                    sa.update(StoredSecret)
                    .where(col(StoredSecret.name) == row.name, col(StoredSecret.token) == row.token)
                    .values(token=keys.encrypt(value), key_id=keys.primary_id, updated_at=utcnow())
                )
                session.commit()
            moved += int(done.rowcount)  # type: ignore[attr-defined]
        return moved

    def names(self) -> list[str]:
        """Every stored secret's name (for ``ceso secrets check``; the values stay encrypted)."""
        with Session(self._engine()) as session:
            return sorted(session.exec(select(StoredSecret.name)))
