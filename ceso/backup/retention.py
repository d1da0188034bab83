"""Grandfather-father-son retention as a pure function (the calendar is an argument, not the clock).

Rules, applied to one VM's good backups (completed or verified), newest first:

* ``keep_last``: the newest N;
* ``keep_daily`` / ``keep_weekly`` / ``keep_monthly``: the newest backup of each of
  the N most recent days / ISO weeks / months that have one.

A backup kept by any rule is kept; the first rule that keeps it names its
retention class. Safety, on top of the policy (:func:`select_expired`): nothing
newer than the newest *verified* backup is ever expired, the newest verified
backup itself is always kept, and with no verified backup nothing is expired —
pruning acts only after a newer backup has proven it restores. A chain is never
broken: every point a kept incremental builds on (its parent, and theirs, up to
the full) is kept too, with the class ``chain``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ceso.backup.config import RetentionPolicy

__all__ = ["Candidate", "keep_by_policy", "select_expired"]


@dataclass(frozen=True)
class Candidate:
    id: str
    created_at: datetime
    status: str
    parent: str | None = None  # an incremental's parent point


def _bucket_rule(
    items: Sequence[Candidate], count: int, key: Callable[[datetime], Any], name: str, kept: dict[str, str]
) -> None:
    seen: list[Any] = []
    for item in items:  # newest first: the first of each bucket is its newest
        bucket = key(item.created_at)
        if bucket in seen:
            continue
        if len(seen) >= count:
            return
        seen.append(bucket)
        kept.setdefault(item.id, name)


def keep_by_policy(items: Sequence[Candidate], policy: RetentionPolicy) -> dict[str, str]:
    """Ids kept by the policy, each with its retention class (last, daily, weekly, monthly)."""
    ordered = sorted(items, key=lambda c: (c.created_at, c.id), reverse=True)
    kept: dict[str, str] = {}
    for item in ordered[: policy.keep_last]:
        kept.setdefault(item.id, "last")
    _bucket_rule(ordered, policy.keep_daily, lambda t: t.date(), "daily", kept)
    _bucket_rule(ordered, policy.keep_weekly, lambda t: t.isocalendar()[:2], "weekly", kept)
    _bucket_rule(ordered, policy.keep_monthly, lambda t: (t.year, t.month), "monthly", kept)
    return kept


def select_expired(
    items: Sequence[Candidate], policy: RetentionPolicy
) -> tuple[list[Candidate], dict[str, str]]:
    """The backups of one VM to expire now, and the classes of those kept."""
    good = [c for c in items if c.status in ("completed", "verified")]
    verified = [c for c in good if c.status == "verified"]
    kept = keep_by_policy(good, policy)
    if not verified:
        return [], kept
    anchor = max(verified, key=lambda c: (c.created_at, c.id))
    kept.setdefault(anchor.id, "last-verified")
    _keep_chains(items, kept)
    expired = [c for c in good if c.id not in kept and (c.created_at, c.id) < (anchor.created_at, anchor.id)]
    return sorted(expired, key=lambda c: c.created_at), kept


def _keep_chains(items: Sequence[Candidate], kept: dict[str, str]) -> None:
    """Add to ``kept`` every point a kept point's restore needs (its parents up to the full)."""
    parents = {c.id: c.parent for c in items}
    for start in list(kept):
        parent = parents.get(start)
        while parent is not None and parent not in kept:
            kept[parent] = "chain"
            parent = parents.get(parent)
