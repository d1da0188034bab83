"""cesod's ``/metrics``: the counters of this one process (agent operations above all).

cesod is one multi-threaded process, so prometheus-client's default registry holds everything
it records: no multiprocess directory is needed. One inherited from the environment (a
worker's) is dropped, or another process's series would be served as cesod's.

The scrape-time SQL/Redis gauges (jobs by state, queue depth, backups, promotions) are left
out: every worker and ``ceso metrics serve`` export them already, and a daemon that answers
agents should not query SQL and Redis for each Prometheus scrape. The dashboards and alert
rules aggregate those gauges across processes either way.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["start_metrics"]


def start_metrics(runtime: Any, port: int | None) -> int | None:
    """Serve ``/metrics`` on ``metrics.address`` from a daemon thread; return the bound port.

    ``port`` None means ``metrics.cesod_port``; 0 any free port; -1 none. Returns None, and
    records nothing, when ``metrics.enabled`` is false or the port is -1. Must run before
    anything imports prometheus_client. Raises ConflictError (``port_in_use``) when the port
    is taken; the URL is logged as ``metrics on http://ADDRESS:PORT/metrics``.
    """
    settings = runtime.settings.metrics
    chosen = settings.cesod_port if port is None else port
    if not settings.enabled or chosen < 0:
        return None
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # read when prometheus_client is imported
    from ceso.metrics.record import record_in_process
    from ceso.metrics.server import serve_metrics

    bound = serve_metrics(runtime, address=settings.address, port=chosen, state_gauges=False)
    record_in_process()
    return bound
