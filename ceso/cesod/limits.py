"""What keeps cesod up under hostile traffic: connection caps, a deadline for reading a request,
a strict JSON reader, and sampled audit records of refused tokens.

- **Connections.** At most ``cesod.max_connections`` at once, and ``cesod.max_connections_per_client``
  from one address; a connection over either cap is closed at once, before a thread is started
  for it, and counted. One address cannot take every slot.
- **Reading a request.** Each socket read has ``cesod.read_timeout_s``; the whole request (TLS
  handshake, headers, body) must arrive within ``cesod.request_deadline_s``, so a client that
  drips a byte at a time, or sends a long Content-Length and stops, is cut off. A reaper thread
  shuts such sockets down; a request being answered (a long ``job.wait``) is not affected.
- **JSON.** :func:`loads` refuses nesting deeper than :data:`MAX_DEPTH` (checked on the bytes,
  before the parser recurses), ``NaN``/``Infinity`` and duplicate object keys.
- **Rates.** A token bucket per client address (``cesod.rate_per_address`` requests a second,
  bursts of ``cesod.rate_burst``) is checked before the request is read, and one per agent
  (``cesod.rate_per_token``) after its token is checked: a request over either is answered HTTP 429
  with ``Retry-After``, the JSON-RPC error -32013 (``rate_limited``), and counted
  (``ceso_cesod_refused_total{reason="rate_limited_address"|"rate_limited_token"}``), never audited
  one by one. One address cannot starve the others, nor one agent's token (from several addresses).
- **Refused tokens.** Each is counted (``ceso_cesod_refused_total{reason}``); the audit trail gets
  the first :data:`AUDIT_BURST` of a client address per :data:`AUDIT_SAMPLE_S`, and then the number
  refused meanwhile with its next record, so an unauthenticated client cannot grow the trail at will
  while an operator's few mistakes are all on record.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import socket
import threading
import time
from collections import Counter
from typing import Any

__all__ = [
    "AUDIT_BURST",
    "AUDIT_SAMPLE_S",
    "MAX_DEPTH",
    "ConnectionSlots",
    "RateLimiter",
    "Reaper",
    "RefusalSampler",
    "loads",
]

MAX_DEPTH = 32
AUDIT_SAMPLE_S = 60.0
AUDIT_BURST = 5


class JsonRejectedError(ValueError):
    """A body that is JSON in form but not what cesod accepts (depth, constants, duplicates)."""


def _check_depth(body: bytes) -> None:
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                raise JsonRejectedError(f"nesting deeper than {MAX_DEPTH} levels")
        elif byte in (0x5D, 0x7D):
            depth -= 1


def _no_constant(name: str) -> Any:
    raise JsonRejectedError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        duplicate = next(k for k in keys if keys.count(k) > 1)
        raise JsonRejectedError(f"duplicate key {duplicate!r}")
    return dict(pairs)


def loads(body: bytes) -> Any:
    """Parse a request body strictly; ValueError (JsonRejectedError or json's own) when refused."""
    _check_depth(body)
    return json.loads(body, parse_constant=_no_constant, object_pairs_hook=_unique_keys)


class ConnectionSlots:
    """Counts of open connections, in all and per client address, under their caps."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total, self.per_client = total, per_client
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def take(self, client: str) -> bool:
        with self._lock:
            if sum(self._open.values()) >= self.total or self._open[client] >= self.per_client:
                return False
            self._open[client] += 1
            return True

    def give_back(self, client: str) -> None:
        with self._lock:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]

    def open(self) -> int:
        with self._lock:
            return sum(self._open.values())


class Reaper:
    """Shuts down sockets whose request did not arrive by their deadline (one thread for all)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, socket.socket]] = []
        self._watched: set[int] = set()  # ids in the heap: only those can be marked done
        self._done: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        threading.Thread(target=self._run, name="cesod-reaper", daemon=True).start()

    def watch(self, sock: socket.socket, seconds: float) -> None:
        with self._lock:
            heapq.heappush(self._heap, (time.monotonic() + seconds, id(sock), sock))
            self._watched.add(id(sock))
            self._done.discard(id(sock))
        self._wake.set()

    def done(self, sock: socket.socket) -> None:
        """The request arrived (or the connection ended): leave the socket alone."""
        with self._lock:
            if id(sock) in self._watched:
                self._done.add(id(sock))

    def _run(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][1] in self._done):
                    _, key, sock = heapq.heappop(self._heap)
                    self._watched.discard(key)
                    if key in self._done:
                        self._done.discard(key)
                        continue
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # the handler's read fails; its thread ends
                wait = (self._heap[0][0] - now) if self._heap else 1.0
            self._wake.wait(max(0.05, min(wait, 1.0)))
            self._wake.clear()


class RefusalSampler:
    """Decides which refused requests get an audit record: the first :data:`AUDIT_BURST` of an
    address in each period, then none until the next period, whose first record carries how many
    of that address's refusals went unrecorded."""

    def __init__(self, period_s: float = AUDIT_SAMPLE_S, burst: int = AUDIT_BURST) -> None:
        self.period_s, self.burst = period_s, burst
        self._window: dict[str, tuple[float, int]] = {}  # address -> (window start, records in it)
        self._skipped: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, client: str) -> int | None:
        """None: do not record this one; else record it, with the number skipped before it."""
        now = time.monotonic()
        with self._lock:
            start, recorded = self._window.get(client, (now, 0))
            if now - start >= self.period_s:
                start, recorded = now, 0
            if recorded >= self.burst:
                self._skipped[client] += 1
                return None
            self._window[client] = (start, recorded + 1)
            if len(self._window) > 10_000:  # bounded: forget the oldest addresses
                for old in sorted(self._window, key=lambda c: self._window[c][0])[:5_000]:
                    self._window.pop(old, None)
                    self._skipped.pop(old, None)
            return self._skipped.pop(client, 0)


class RateLimiter:
    """Token buckets by key (a client address, an agent): ``rate`` requests a second on average,
    ``burst`` at once. ``rate`` 0 turns the limit off. Bounded: at most :data:`MAX_KEYS` keys are
    kept (full buckets are forgotten first, then the oldest)."""

    MAX_KEYS = 10_000

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, max(1, burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, monotonic time)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 if a request of ``key`` may go now (one token taken); else the seconds until it may."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, then = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - then) * self.rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._forget(now)
            return 0.0

    def _forget(self, now: float) -> None:
        full = [k for k, (t, at) in self._buckets.items() if t + (now - at) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) > self.MAX_KEYS:
            for key in sorted(self._buckets, key=lambda k: self._buckets[k][1])[: self.MAX_KEYS // 2]:
                del self._buckets[key]
