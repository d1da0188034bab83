"""Which workers are alive, per host queue: a heartbeat in Redis from each worker's main process.

Each ``ceso worker`` scores its id in the sorted set ``ceso:workers:<host>`` of every host it
serves with the time of its latest beat (every :data:`BEAT_S`), and keeps a small description in
``ceso:worker:<id>`` (machine, process id, hosts, start time) that expires on its own. A worker
is live for a host while its score is newer than :data:`LIVE_WITHIN_S`. Readers are the CLI and
cesod (a job submitted for a host nobody serves says so), ``host list``/``host check`` and the
metrics (``ceso_host_live_workers``). Redis errors are the caller's: a reader turns them into
"unknown", the beating thread logs them and beats again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis

__all__ = [
    "BEAT_S",
    "LIVE_WITHIN_S",
    "Heartbeat",
    "live_workers",
    "no_worker_message",
    "unserved_warning",
    "workers_by_host",
]

log = logging.getLogger(__name__)

BEAT_S = 5.0
#: Three beats missed: the worker is gone (or cut off from Redis, which for jobs is the same).
LIVE_WITHIN_S = 3 * BEAT_S


def _hosts_key(host: str) -> str:
    return f"ceso:workers:{host}"


def _info_key(worker_id: str) -> str:
    return f"ceso:worker:{worker_id}"


def beat(client: redis.Redis, worker_id: str, hosts: list[str], info: dict[str, Any]) -> None:
    """Record one beat of ``worker_id`` for each of ``hosts``."""
    now = time.time()
    pipe = client.pipeline()
    for host in hosts:
        pipe.zadd(_hosts_key(host), {worker_id: now})
        pipe.zremrangebyscore(_hosts_key(host), "-inf", now - 24 * 3600)  # forget long-dead ids
    pipe.set(_info_key(worker_id), json.dumps({**info, "beat_at": now}), ex=int(LIVE_WITHIN_S * 4))
    pipe.execute()


def forget(client: redis.Redis, worker_id: str, hosts: list[str]) -> None:
    """A worker that stops cleanly leaves at once instead of after :data:`LIVE_WITHIN_S`."""
    pipe = client.pipeline()
    for host in hosts:
        pipe.zrem(_hosts_key(host), worker_id)
    pipe.delete(_info_key(worker_id))
    pipe.execute()


def live_workers(client: redis.Redis, host: str) -> list[dict[str, Any]]:
    """The live workers of ``host``: ``id``, ``last_beat_s`` (seconds ago) and what they said of
    themselves (``machine``, ``pid``, ``hosts``, ``started_at``)."""
    now = time.time()
    found: list[tuple[bytes, float]] = client.zrangebyscore(  # type: ignore[assignment]
        _hosts_key(host), now - LIVE_WITHIN_S, "+inf", withscores=True
    )
    workers = []
    for raw_id, score in found:
        worker_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
        raw_info = client.get(_info_key(worker_id))
        info = json.loads(raw_info) if raw_info else {}
        info.pop("beat_at", None)
        workers.append({"id": worker_id, "last_beat_s": round(now - float(score), 1), **info})
    return workers


def no_worker_message(host: str) -> str:
    return (
        f"no live worker serves host {host}: the job stays queued until one starts "
        f"(`ceso worker --host {host}`; `ceso host list` shows each host's workers)"
    )


def workers_by_host(runtime: Any, hosts: list[str]) -> dict[str, list[dict[str, Any]] | None]:
    """The live workers of each host; None for every host when Redis cannot be read."""
    try:
        return {host: live_workers(runtime.redis, host) for host in hosts}
    except Exception as exc:
        log.warning("cannot read the workers' heartbeats: %s", exc)
        return dict.fromkeys(hosts)


def unserved_warning(runtime: Any, host: str) -> str | None:
    """:func:`no_worker_message` when no live worker serves ``host``; None when one does or Redis
    cannot tell (a submit never fails for want of this answer)."""
    try:
        return None if live_workers(runtime.redis, host) else no_worker_message(host)
    except Exception:
        return None


class Heartbeat:
    """A daemon thread that beats for ``worker_id`` until :meth:`stop` (which forgets it)."""

    def __init__(self, client: redis.Redis, worker_id: str, hosts: list[str], info: dict[str, Any]) -> None:
        self.client, self.worker_id, self.hosts, self.info = client, worker_id, hosts, info
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                beat(self.client, self.worker_id, self.hosts, self.info)
            except Exception as exc:  # Redis away: the next beat tries again
                log.warning("worker heartbeat not recorded: %s", exc)
            self._stop.wait(BEAT_S)

    def stop(self) -> None:
        self._stop.set()
        try:
            forget(self.client, self.worker_id, self.hosts)
        except Exception as exc:
            log.warning("worker heartbeat not removed: %s", exc)
