"""``ceso backup list``, ``verify``, ``delete``, ``prune`` and ``import`` (run in this process, no job)."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app
from ceso.constants import BACKUP_LIST_MAX


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _drill(drill: dict[str, object] | None) -> str:
    """A set's last drill as the table shows it: ``passed 2026-12-07 10:00`` or ``-``."""
    return "-" if drill is None else f"{drill['status']} {str(drill['finished_at'])[:16].replace('T', ' ')}"


@click.command("list")
@click.option("--vm", help="Only backups of this VM.")
@click.option("--target", help="Only backups on this target.")
@click.option("--status", type=click.Choice(["pending", "completed", "failed", "verified", "expired"]))
@click.option(
    "--limit", type=click.IntRange(0, BACKUP_LIST_MAX), default=100, show_default=True, help="0: all."
)
@pass_app
def list_(app: Application, vm: str | None, target: str | None, status: str | None, limit: int) -> None:
    """List backups, newest first.

    KIND is hot or cold; SCOPE is full, incremental or synthetic (a full that
    prune merged from a full and its incrementals; --json lists them in
    merged_from); PARENT is the point an incremental builds on; CHAIN counts the
    points a restore of it reads; DRILL is the outcome of its last restore drill
    (`backup drill`), if any.
    """
    from ceso.backup.catalog import list_sets

    rows = list_sets(app.runtime.engine, vm=vm, target=target, status=status, limit=limit)
    app.emit(
        rows,
        lambda: app.table(
            [
                "id",
                "vm",
                "target",
                "status",
                "kind",
                "scope",
                "parent",
                "chain",
                "created",
                "size",
                "stored",
                "drill",
            ],
            [
                [
                    r["id"][:8],
                    r["vm"],
                    r["target"],
                    r["status"],
                    r["kind"],
                    "synthetic" if r["synthetic"] else r["scope"],
                    (r["parent_id"] or "-")[:8],
                    str(r["chain_length"]),
                    r["created_at"][:19],
                    _size(r["logical_bytes"]),
                    _size(r["stored_bytes"]),
                    _drill(r["last_drill"]),
                ]
                for r in rows
            ],
        ),
    )


@click.command()
@click.argument("backup_id")
@pass_app
def verify(app: Application, backup_id: str) -> None:
    """Re-read every stored file of a backup and check every hash; exit 1 naming a damaged file."""
    from dataclasses import asdict

    from ceso.backup.verify import verify_backup

    report = verify_backup(app.runtime, backup_id)
    app.emit(
        asdict(report),
        lambda: click.echo(
            f"backup {report.backup_id} verified: {report.files} files, {_size(report.logical_bytes)}"
        ),
    )


@click.command()
@click.argument("backup_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def delete(app: Application, backup_id: str, yes: bool) -> None:
    """Delete a backup's files at its target and its catalog entry."""
    from ceso.backup.prune import delete_backup

    if app.dry_run:
        app.emit(
            {"dry_run": True, "id": backup_id},
            lambda: click.echo(f"dry run: would delete backup {backup_id}"),
        )
        return
    if not yes and app.interactive:
        click.confirm(f"delete backup {backup_id} and its files?", abort=True)
    result = delete_backup(app.runtime, backup_id)
    app.emit(result, lambda: click.echo(f"backup {result['id']} deleted ({result['files_deleted']} files)"))


@click.command()
@click.option("--vm", help="Only this VM's backups.")
@pass_app
def prune(app: Application, vm: str | None) -> None:
    """Expire backups outside the retention policy (keep_last/daily/weekly/monthly).

    A VM's policy is its own (backups.retention_per_vm), else that of its tags
    (backups.retention_per_tag; with several tags, the largest of each keep_*),
    else backups.retention. Only backups older than a VM's newest verified backup
    are expired, and that one is always kept: nothing is pruned until a newer
    backup has been verified.

    A full that later kept points build on is not kept forever: it and its
    incrementals up to the oldest point the policy keeps are merged, on the
    target, into a synthetic full that stands for that point (read back and
    checked before the points after it are moved onto it and the merged ones
    deleted). With --dry-run, show what would go and what would be merged (and
    each VM's policy with --json) and change nothing.
    """
    from dataclasses import asdict

    from ceso.backup.prune import prune as run_prune

    plan = run_prune(app.runtime, vm=vm, dry_run=app.dry_run)
    verb = "would expire" if app.dry_run else "expired"

    def human() -> None:
        for e in plan.expire:
            into = f", merged into {e['merged_into'][:8]}" if "merged_into" in e else ""
            click.echo(f"{verb} {e['id']} ({e['vm']}, {e['created_at'][:19]}{into})")
        for m in plan.merge:
            points = " + ".join(p[:8] for p in m["points"])
            onto = f"; {len(m['rebased'])} later point(s) rebased on it" if m["rebased"] else ""
            if app.dry_run:
                click.echo(f"would merge {points} into a synthetic full for {m['stands_for'][:8]}{onto}")
            elif m.get("error"):
                click.echo(f"could not merge {points} (chain kept): {m['error']}")
            else:
                click.echo(f"merged {points} into synthetic full {m['synthetic_id']}{onto}")
        click.echo(f"{verb} {len(plan.expire)}, kept {len(plan.keep)}")

    app.emit({"dry_run": app.dry_run, **asdict(plan)}, human)


@click.command("import")
@click.option("--target", required=True, help="Target whose manifests to read.")
@pass_app
def import_(app: Application, target: str) -> None:
    """Rebuild catalog entries from the manifests found on a target."""
    from ceso.backup.importer import import_target

    result = import_target(app.runtime, target)
    app.emit(
        result,
        lambda: click.echo(
            f"target {target}: {len(result['imported'])} imported, {result['already_known']} already known"
        ),
    )
