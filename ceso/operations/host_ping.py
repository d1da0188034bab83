"""``host.ping``: log in to the host and read its clock (proves the whole job path).

Both steps only read: a transient host fault is retried with backoff (:func:`ceso.jobs.retry.retry_host`).
"""

from __future__ import annotations

import time
from typing import Any

from ceso.hosts.specs import PingHost
from ceso.jobs.context import JobContext
from ceso.jobs.retry import retry_host
from ceso.plans import HostPingSteps


def run_host_ping(ctx: JobContext) -> dict[str, Any]:
    PingHost.from_job(ctx.params)  # nothing to read but the host, which the job names already
    with ctx.step(HostPingSteps.login, progress=50, details={"calls": ["SessionManager.Login"]}):
        client = retry_host(ctx, HostPingSteps.login, lambda _try: ctx.client())
    with ctx.step(HostPingSteps.read_time, progress=100, details={"calls": ["ServiceInstance.CurrentTime"]}):

        def read(_try: int) -> tuple[Any, float]:
            start = time.perf_counter()
            host_time = client.current_time()
            return host_time, time.perf_counter() - start

        host_time, rtt = retry_host(ctx, HostPingSteps.read_time, read)
    return {"host_time": host_time.isoformat(), "round_trip_ms": round(rtt * 1000, 2)}
