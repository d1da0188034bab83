"""Which retention policy applies to a VM: its own, its tags', or the default.

Precedence, most specific first:

1. ``backups.retention_per_vm[VM]`` — an explicit policy for this one VM wins outright;
2. the policies in ``backups.retention_per_tag`` of the VM's tags (``backups.tags``).
   A VM with several tagged policies keeps the **largest of each rule** across them
   (``keep_last``, ``keep_daily``, ``keep_weekly``, ``keep_monthly`` taken separately):
   retention errs towards keeping, so tagging a VM can never make it lose backups
   another of its tags wants kept;
3. ``backups.retention``, the default.

Each policy is complete on its own: a ``keep_*`` it leaves out takes the built-in
default of that rule (see docs/configuration.md), not the value of another policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from ceso.backup.config import BackupSettings, RetentionPolicy
from ceso.backup.tags import tags_of

__all__ = ["ResolvedPolicy", "resolve_policy"]

_RULES = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")


@dataclass(frozen=True)
class ResolvedPolicy:
    """The policy of one VM and where it came from: ``vm``, ``tag:a+b`` (the tags merged) or ``default``."""

    policy: RetentionPolicy
    source: str

    def to_dict(self) -> dict[str, object]:
        return {"source": self.source, **self.policy.model_dump()}


def _largest(policies: list[RetentionPolicy]) -> RetentionPolicy:
    return RetentionPolicy(**{rule: max(getattr(p, rule) for p in policies) for rule in _RULES})


def resolve_policy(settings: BackupSettings, vm: str) -> ResolvedPolicy:
    """The retention policy of VM ``vm`` under ``settings`` (see the module's precedence)."""
    own = settings.retention_per_vm.get(vm)
    if own is not None:
        return ResolvedPolicy(own, "vm")
    tagged = [t for t in tags_of(vm, settings.tags) if t in settings.retention_per_tag]
    if tagged:
        merged = _largest([settings.retention_per_tag[t] for t in tagged])
        return ResolvedPolicy(merged, "tag:" + "+".join(tagged))
    return ResolvedPolicy(settings.retention, "default")
