"""SQL operations on job rows. Keyword-only, session or engine passed in.

State machine::

    queued ──claim──▶ running ──▶ succeeded | failed | cancelled
      └──cancel──▶ cancelled          ▲ re-claim when the heartbeat is stale

Writes made by a running job are fenced: they match ``attempts`` (the claim
token) and ``state='running'``, so a job whose claim was taken over by a
re-delivery can no longer write; :class:`ClaimLostError` tells it to stop.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from ceso.db.models import JOB_STATES, TERMINAL_STATES, Job
from ceso.db.types import utcnow
from ceso.errors import CesoError, ConflictError, InvalidInputError, NotFoundError
from ceso.jobs.ids import parse_job_id
from ceso.jobs.shape import COLUMNS, TIMESTAMPS, job_dict

if TYPE_CHECKING:
    from ceso.audit.store import AuditEvent

__all__ = [
    "ClaimLostError",
    "claim_job",
    "create_job",
    "finish_job",
    "finish_running",
    "get_job",
    "job_to_dict",
    "list_jobs",
    "request_cancel",
    "update_running",
]


log = logging.getLogger(__name__)

_T = TypeVar("_T")


class ClaimLostError(CesoError):
    """The job was claimed by another delivery; this run must stop writing."""

    code = "claim_lost"


def job_to_dict(job: Job) -> dict[str, Any]:
    """The documented ``--json`` shape of a job (:func:`ceso.jobs.shape.job_dict`)."""
    values = {name: getattr(job, name) for name in COLUMNS}
    for name in TIMESTAMPS:
        values[name] = values[name].isoformat() if values[name] is not None else None
    return job_dict(values)


def create_job(
    engine: Engine,
    *,
    kind: str,
    host: str,
    target: str | None,
    params: dict[str, Any],
    actor: str,
    idempotency_key: str | None,
    max_attempts: int,
    audit: Callable[[Job], AuditEvent] | None = None,
) -> tuple[Job, bool]:
    """Insert a queued job; return ``(job, created)``.

    ``audit(job)`` is the record of the submission, appended in the insert's
    transaction (one commit for both; a failed append is rolled back alone and
    logged). With an idempotency key already used, returns the first job and
    ``created=False`` (never a second job, nor a second record) — or
    ConflictError if that key was used for a different request.
    """
    if idempotency_key is not None and not (
        0 < len(idempotency_key) <= 200 and idempotency_key.isprintable()
    ):
        raise InvalidInputError("idempotency key must be 1-200 printable characters")
    job = Job(
        kind=kind,
        host=host,
        target=target,
        params=params,
        actor=actor,
        idempotency_key=idempotency_key,
        max_attempts=max_attempts,
    )
    try:
        with Session(engine, expire_on_commit=False) as session:
            session.add(job)
            if audit is not None:
                session.flush()  # the row first: an existing idempotency key fails here, unrecorded
                from ceso.audit.store import record_in

                record_in(session.connection(), audit(job))
            session.commit()
        return job, True
    except sa.exc.IntegrityError:
        if idempotency_key is None:
            raise
    first = find_by_idempotency_key(engine, idempotency_key)
    assert first is not None  # the insert just collided with it
    if (first.kind, first.host, first.target, first.params) != (kind, host, target, params):
        raise ConflictError(
            f"idempotency key {idempotency_key!r} was already used by job {first.id} for a different request"
        )
    return first, False


def find_by_idempotency_key(engine: Engine, idempotency_key: str) -> Job | None:
    """The job submitted with ``idempotency_key``, or None if the key is unused."""
    with Session(engine, expire_on_commit=False) as session:
        return session.exec(select(Job).where(Job.idempotency_key == idempotency_key)).first()


def mark_published(engine: Engine, job_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(Job).where(col(Job.id) == job_id).values(published_at=utcnow()))


def get_job(session: Session, job_id: str) -> Job:
    """The job ``job_id``; InvalidInputError for a malformed id, NotFoundError if absent."""
    job = session.get(Job, parse_job_id(job_id))
    if job is None:
        raise NotFoundError(f"no job {job_id}")
    return job


def list_jobs(
    session: Session, *, host: str | None = None, state: str | None = None, limit: int = 50
) -> list[Job]:
    """Newest first."""
    if state is not None and state not in JOB_STATES:
        raise InvalidInputError(f"unknown state {state!r} (one of {', '.join(JOB_STATES)})")
    query = select(Job).order_by(col(Job.created_at).desc()).limit(limit)
    if host is not None:
        query = query.where(Job.host == host)
    if state is not None:
        query = query.where(Job.state == state)
    return list(session.exec(query).all())


#: Every column of ``jobs``: an UPDATE ... RETURNING these gives the fresh row without a second SELECT.
_JOB_COLUMNS = tuple(Job.__table__.c)  # type: ignore[attr-defined]


def _job_from(row: sa.Row[Any]) -> Job:
    """A detached Job built from a RETURNING row (the same values a fresh SELECT would load)."""
    return Job(**row._mapping)


def claim_job(
    engine: Engine,
    *,
    job_id: str,
    worker: str,
    stale_after_s: float,
    audit: Callable[[sa.Connection, Job], AuditEvent] | None = None,
) -> Job | None:
    """Compare-and-set ``queued`` (or ``running`` with a stale heartbeat) → ``running``.

    Returns the claimed job with ``attempts`` incremented (its fencing token),
    or None when another delivery holds it or it has ended.

    ``audit(conn, job)`` is the record of the claim, appended in the claim's
    transaction (one commit for both); it runs only when the claim succeeds, in
    a SAVEPOINT on the claim's connection (it may read there). If it raises, or
    the append fails, only that is rolled back (and logged): the claim still
    commits, without the record; the caller can tell from its own state and
    record the claim apart.
    """
    now = utcnow()
    stale = now - timedelta(seconds=stale_after_s)
    with engine.begin() as conn:
        claimable = sa.or_(
            col(Job.state) == "queued",
            sa.and_(col(Job.state) == "running", col(Job.heartbeat_at) < stale),
        )
        row = conn.execute(
            sa.update(Job)
            .where(col(Job.id) == job_id, claimable, col(Job.cancel_requested).is_(False))
            .values(
                state="running",
                attempts=Job.attempts + 1,
                worker=worker,
                started_at=sa.func.coalesce(Job.started_at, now),
                heartbeat_at=now,
                updated_at=now,
            )
            .returning(*_JOB_COLUMNS)
        ).first()
        if row is None:
            return None
        job = _job_from(row)
        if audit is not None:
            _record_claim(conn, job, audit)
    return job


def _record_claim(conn: sa.Connection, job: Job, audit: Callable[[sa.Connection, Job], AuditEvent]) -> None:
    from ceso.audit.store import record_in

    try:
        with conn.begin_nested():
            event = audit(conn, job)
    except Exception:
        log.warning("job %s: the record of its claim not made with the claim", job.id, exc_info=True)
        return
    record_in(conn, event)


def update_running(
    engine: Engine, *, job_id: str, attempt: int, audits: Sequence[AuditEvent] = (), **values: Any
) -> bool:
    """Fenced update of a running job; returns its ``cancel_requested`` flag or raises ClaimLostError.

    ``audits`` are appended in the same transaction (one commit for all; if an
    append fails, only that record is lost, and logged: :func:`_with_records`).
    When the claim is lost nothing is written, the records included.
    """
    return _with_records(
        engine,
        lambda conn, guarded: _update_running_in(
            conn, job_id=job_id, attempt=attempt, audits=audits, values=values, guarded=guarded
        ),
    )


def _with_records(engine: Engine, write: Callable[[sa.Connection, bool], _T]) -> _T:
    """``write(conn, guarded)`` in one transaction, its audit records appended unguarded first.

    A record appended in a savepoint of its own costs two more statements
    (round trips on PostgreSQL), and a job writes one or two at every step.
    So the records go without one; if an append fails (AppendFailedError),
    the whole transaction is rolled back and written again with each record
    in its own savepoint: a record that fails again is lost, and logged, and
    never costs the write. The writes are absolute values fenced on the claim,
    so writing them twice is safe.
    """
    from ceso.audit.store import AppendFailedError

    try:
        with engine.begin() as conn:
            return write(conn, False)
    except AppendFailedError:
        log.warning("an audit record failed: writing the job again, each record guarded", exc_info=True)
    with engine.begin() as conn:
        return write(conn, True)


def _update_running_in(
    conn: sa.Connection,
    *,
    job_id: str,
    attempt: int,
    audits: Sequence[AuditEvent],
    values: dict[str, Any],
    guarded: bool = True,
) -> bool:
    """:func:`update_running` inside the caller's transaction (which must roll back on ClaimLostError,
    and on AppendFailedError when not ``guarded``)."""
    values.setdefault("updated_at", utcnow())
    row = conn.execute(
        _fenced_update(tuple(sorted(values))), {**values, "_id": job_id, "_attempt": attempt}
    ).first()
    if row is None:
        raise ClaimLostError(f"job {job_id} is no longer held by this run (attempt {attempt})")
    if audits:
        from ceso.audit.store import record_in

        for audit in audits:
            record_in(conn, audit, guarded=guarded)
    return bool(row[0])


@functools.cache
def _fenced_update(columns: tuple[str, ...]) -> sa.Update:
    """The fenced UPDATE of ``columns``, built once per column set: a running job writes its row at
    every step's start and end, and building the statement cost more than running it."""
    table = Job.__table__  # type: ignore[attr-defined]
    return (
        sa.update(table)
        .where(table.c.id == sa.bindparam("_id"), table.c.attempts == sa.bindparam("_attempt"),
               table.c.state == "running")
        .values({name: sa.bindparam(name, type_=table.c[name].type) for name in columns})
        .returning(table.c.cancel_requested)
    )  # fmt: skip


def finish_job(
    engine: Engine,
    *,
    job_id: str,
    attempt: int | None,
    state: str,
    result: dict[str, Any] | None = None,
    error: CesoError | None = None,
) -> bool:
    """Move a job to a terminal state (fenced on ``attempt`` when given).

    Returns False if the job had already ended or the claim was lost.
    """
    return _with_records(
        engine,
        lambda conn, guarded: _finish_in(
            conn, job_id=job_id, attempt=attempt, state=state, result=result, error=error, guarded=guarded
        ),
    )


def _finish_in(
    conn: sa.Connection,
    *,
    job_id: str,
    attempt: int | None,
    state: str,
    result: dict[str, Any] | None = None,
    error: CesoError | None = None,
    guarded: bool = True,
) -> bool:
    """:func:`finish_job` inside the caller's transaction: the outcome and its audit record."""
    assert state in TERMINAL_STATES
    now = utcnow()
    from ceso.security.redact import redact, redact_text  # a result or error never carries a secret to SQL

    values: dict[str, Any] = {"state": state, "finished_at": now, "updated_at": now, "result": redact(result)}
    if state == "succeeded":
        values["progress"] = 100
    if error is not None:
        values["error_code"] = error.code
        values["error_message"] = redact_text(error.message)
    cond = [col(Job.id) == job_id, col(Job.state).not_in(TERMINAL_STATES)]
    if attempt is not None:
        cond.append(col(Job.attempts) == attempt)
    from ceso.audit.jobs import audit_finished_in

    # The Core table, not the ORM entity: an ORM-enabled UPDATE costs more to build than to run.
    table = Job.__table__  # type: ignore[attr-defined]
    row = conn.execute(sa.update(table).where(*cond).values(**values).returning(*_JOB_COLUMNS)).first()
    if row is None:
        return False
    audit_finished_in(conn, _job_from(row), guarded=guarded)  # the outcome's record commits with it
    return True


def finish_running(
    engine: Engine,
    *,
    job_id: str,
    attempt: int,
    result: dict[str, Any] | None,
    cancelled: CesoError,
    audits: Sequence[AuditEvent] = (),
    too_late_to_cancel: bool = False,
    **values: Any,
) -> str:
    """End a running job whose handler returned ``result``, in one transaction; return the state written.

    First what :func:`update_running` would write (``values``, e.g. the ends of
    its last steps, fenced on the claim, and their ``audits``), then the
    outcome with its audit record (:func:`finish_job`): ``cancelled`` with the
    error ``cancelled`` if that fenced write finds a cancel requested (as a
    check before the outcome would have: the flag is never cleared), else
    ``succeeded`` with ``result``. With ``too_late_to_cancel`` (the work is done on the host and
    nothing will undo it) a cancel found then leaves the job ``succeeded``, its result saying
    ``cancel_too_late``: the record follows the host. When the claim is lost nothing is written,
    the records included, and ClaimLostError is raised.
    """

    def write(conn: sa.Connection, guarded: bool) -> str:
        cancel = _update_running_in(
            conn, job_id=job_id, attempt=attempt, audits=audits, values=values, guarded=guarded
        )
        # The fenced write holds the row until this transaction ends, so the outcome's update matches it.
        outcome: dict[str, Any]
        if cancel and too_late_to_cancel:
            state, outcome = "succeeded", {"result": {**(result or {}), "cancel_too_late": True}}
        elif cancel:
            state, outcome = "cancelled", {"error": cancelled}
        else:
            state, outcome = "succeeded", {"result": result}
        if not _finish_in(conn, job_id=job_id, attempt=attempt, state=state, guarded=guarded, **outcome):
            # Cannot happen (see above); if it did, roll all of it back as a lost claim.
            raise ClaimLostError(f"job {job_id} ended under this run (attempt {attempt})")
        return state

    return _with_records(engine, write)


def request_cancel(engine: Engine, job_id: str) -> Job:
    """Cancel a queued job at once, or flag a running one to stop at its next step.

    A job that has already ended is returned unchanged.
    """
    job_id = parse_job_id(job_id)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.state) == "queued")
            .values(
                state="cancelled",
                cancel_requested=True,
                finished_at=now,
                updated_at=now,
                error_code="job_cancelled",
                error_message="cancelled before it started",
            )
        )
        conn.execute(
            sa.update(Job)
            .where(col(Job.id) == job_id, col(Job.state) == "running")
            .values(cancel_requested=True, updated_at=now)
        )
    with Session(engine, expire_on_commit=False) as session:
        return get_job(session, job_id)
