"""`backup list` on a catalog of 10 000 backups: query time per filter, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/backup_catalog.py [--sets 10000] [--pg postgresql+psycopg://...]

Times :func:`ceso.backup.catalog.list_sets` (the whole answer of ``backup list --json`` minus
printing) over 50 runs each, after one warm-up; prints a markdown table. PostgreSQL is used when
``--pg`` (an admin URL) is given: a scratch database is created and dropped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import median, percentile, print_table  # noqa: E402

VMS = 200


def fill(url: str, count: int) -> None:
    import sqlalchemy as sa

    from ceso.db.backup_models import BackupSet
    from ceso.db.engine import make_engine
    from ceso.db.migrate import upgrade

    engine = make_engine(url)
    upgrade(engine)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {
            "id": str(uuid.uuid4()),
            "vm": f"vm-{i % VMS:03}",
            "host": f"esxi-{i % 4}",
            "target": f"t{i % 3}",
            "path": f"vm-{i % VMS:03}/x",
            "status": ("verified", "completed", "expired", "failed")[i % 4],
            "kind": "hot",
            "compression": "zstd",
            "level": 3,
            "logical_bytes": 40 << 30,
            "stored_bytes": 12 << 30,
            "manifest_schema": 1,
            "created_at": start + timedelta(hours=i),
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(BackupSet.__table__), rows)  # type: ignore[attr-defined]
    engine.dispose()


def measure(url: str) -> list[list[object]]:
    from ceso.backup.catalog import list_sets
    from ceso.db.engine import make_engine

    engine = make_engine(url)
    cases = {
        "newest 100 (default)": {},
        "--vm (one VM, 50 sets)": {"vm": "vm-042"},
        "--status verified": {"status": "verified"},
        "--target --status, limit 100": {"target": "t1", "status": "completed"},
        "all 10 000 (--limit 0)": {"limit": 0},
    }
    rows = []
    for name, kw in cases.items():
        list_sets(engine, **kw)  # type: ignore[arg-type]
        times = []
        for _ in range(50):
            t = time.perf_counter()
            found = list_sets(engine, **kw)  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        rows.append([name, len(found), f"{median(times):.1f}", f"{percentile(times, 95):.1f}"])
    engine.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=int, default=10_000)
    parser.add_argument(
        "--pg", help="PostgreSQL admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1/postgres"
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ceso-bench-catalog-"))
    url = f"sqlite:///{tmp / 'ceso.db'}"
    fill(url, args.sets)
    print_table(
        f"`backup list` query, SQLite, {args.sets} backups (ms)",
        ["query", "rows", "median", "p95"],
        measure(url),
    )
    if args.pg:
        import sqlalchemy as sa

        name = f"ceso_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            pg = args.pg.rsplit("/", 1)[0] + f"/{name}"
            fill(pg, args.sets)
            print_table(
                f"`backup list` query, PostgreSQL, {args.sets} backups (ms)",
                ["query", "rows", "median", "p95"],
                measure(pg),
            )
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
