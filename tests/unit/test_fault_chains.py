"""Telling a fault of the machinery from a verdict, on exception chains real code makes."""

from __future__ import annotations

import sqlalchemy as sa

from ceso.errors import CesoError, ThumbprintMismatchError
from ceso.operations.reconcile import is_fault, sql_unreachable


def test_a_chain_that_loops_back_on_itself_ends() -> None:
    # `raise self.error_for(exc) from exc` where error_for returns exc itself: its cause is itself.
    exc = ThumbprintMismatchError("the host key is not the pinned one", code="ssh_host_key_mismatch")
    exc.__cause__ = exc
    assert sql_unreachable(exc) is None
    assert is_fault(exc) is False


def test_a_sql_connection_error_behind_a_job_error_is_found() -> None:
    cause = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    exc = CesoError("database unreachable")
    exc.__cause__ = cause
    assert sql_unreachable(exc) is cause
    assert is_fault(exc) is True
