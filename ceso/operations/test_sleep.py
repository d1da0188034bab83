"""``test.sleep``: sleeps ``seconds`` in ``steps`` steps; exercises cancel, heartbeats and queues."""

from __future__ import annotations

import time
from typing import Any

from ceso.errors import InvalidInputError
from ceso.jobs.context import JobContext
from ceso.plans import SleepSteps


def run_test_sleep(ctx: JobContext) -> dict[str, Any]:
    seconds = float(ctx.params.get("seconds", 0))
    steps = int(ctx.params.get("steps", 1))
    if not (0 <= seconds <= 3600 and 1 <= steps <= 1000):
        raise InvalidInputError("test.sleep needs 0 <= seconds <= 3600 and 1 <= steps <= 1000")
    for i in range(steps):
        with ctx.step(SleepSteps.sleep, item=f"{i + 1}/{steps}", progress=int(100 * (i + 1) / steps)):
            time.sleep(seconds / steps)
    if ctx.params.get("fail"):
        raise InvalidInputError(str(ctx.params["fail"]), code="requested_failure")
    return {"slept_s": seconds}
