"""Where a ceso process serves /metrics, as its log says (``ceso.metrics.server`` logs it at start)."""

from __future__ import annotations

import re


def logged_metrics_url(output: str, who: str) -> str:
    """The ``http://.../metrics`` URL that ``output`` (a process's log) announces; fails naming ``who``."""
    match = re.search(r"metrics on (http://\S+/metrics)", output)
    assert match, f"{who} logged no metrics endpoint"
    return match.group(1)
