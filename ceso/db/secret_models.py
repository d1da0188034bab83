"""SQL table of the SQL secret store (:mod:`ceso.sql_secret_store`): encrypted values only.

Imported at the end of :mod:`ceso.db.models`; migration ``0007`` creates it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Column, Field, SQLModel

from ceso.db.types import UTCDateTime, utcnow

__all__ = ["StoredSecret"]


class StoredSecret(SQLModel, table=True):
    """One secret: its name, a Fernet token of its value, and the id of the master key that made it."""

    __tablename__ = "secrets"

    name: str = Field(sa_column=Column(sa.String(200), primary_key=True))
    token: str = Field(sa_column=Column(sa.Text, nullable=False))
    key_id: str = Field(sa_column=Column(sa.String(16), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
