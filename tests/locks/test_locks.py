"""ceso.locks against a real Redis (``CESO_TEST_REDIS_URL``): exclusion, all-or-none, fencing, expiry, renewal,
waiting, two contending processes, semaphores, hostile names and an unreachable Redis.

No test skips: without Redis at that URL every test fails.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import ceso.locks
from ceso.errors import InvalidInputError, LockedError, TransientError
from ceso.locks import (
    Lease,
    LockLostError,
    LockManager,
    datastore_lock_name,
    target_lock_name,
    vm_lock_name,
)
from tests.conftest import REDIS_TEST_URL

REDIS_URL = REDIS_TEST_URL
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def r() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required at {REDIS_URL}: {exc}")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def locks(r: redis.Redis) -> LockManager:
    return LockManager(r, ttl_s=1.0)


def _closed_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _unreachable_client() -> redis.Redis:
    # No retries: redis-py's default backoff would spend seconds before reporting the failure.
    return redis.Redis(
        host="127.0.0.1", port=_closed_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )


def test_public_surface() -> None:
    assert sorted(ceso.locks.__all__) == [
        "Grant",
        "Lease",
        "LockLostError",
        "LockManager",
        "datastore_lock_name",
        "escape_component",
        "target_lock_name",
        "vm_lock_name",
    ]
    assert LockLostError("x").code == "lock_lost"


def test_a_grant_is_renewed_and_released_through_the_managers_public_api(
    locks: LockManager, r: redis.Redis
) -> None:
    """What a Lease calls: renew and release touch a key only while it still holds this grant."""
    name = vm_lock_name("esx1", "db01")
    lease = locks.acquire([name], holder="job-a")
    key = lease.keys[0]
    r.pexpire(key, 100)
    assert locks.renew(lease.grant) is None
    assert r.pttl(key) > 500  # extended by the TTL again
    locks.release(lease.grant)
    assert not r.exists(key)
    other = locks.acquire([name], holder="job-b")  # the name is free again
    assert locks.renew(lease.grant) == (name, "job-b")  # the old grant no longer holds it
    locks.release(lease.grant)  # and cannot delete job-b's lock
    assert r.get(key) == other.grant.values[0].encode()
    assert other.tokens[name] > lease.tokens[name]
    other.release()


# -- exclusive locks -------------------------------------------------------------------------------
def test_a_lock_is_exclusive_and_names_its_holder(locks: LockManager) -> None:
    name = vm_lock_name("esx1", "web01")
    lease = locks.acquire([name], holder="job-a")
    assert lease.names == (name,) and lease.holder == "job-a" and not lease.lost
    with pytest.raises(LockedError) as err:
        locks.acquire([name], holder="job-b")
    assert err.value.code == "locked" and "job-a" in err.value.message and name in err.value.message
    assert err.value.details["lock"] == name and err.value.details["holder"] == "job-a"
    with pytest.raises(LockedError, match="not re-entrant"):
        locks.acquire([name], holder="job-a")
    lease.release()
    locks.acquire([name], holder="job-b").release()


def test_other_vms_lock_independently(locks: LockManager) -> None:
    a = locks.acquire([vm_lock_name("esx1", "web01")], holder="job-a")
    b = locks.acquire([vm_lock_name("esx1", "web02")], holder="job-b")
    c = locks.acquire([vm_lock_name("esx2", "web01")], holder="job-c")
    for lease in (a, b, c):
        lease.release()


def test_several_locks_are_taken_all_or_none(locks: LockManager, r: redis.Redis) -> None:
    vm, ds1, ds2 = (
        vm_lock_name("esx1", "db"),
        datastore_lock_name("esx1", "ds1"),
        datastore_lock_name("esx1", "ds2"),
    )
    blocker = locks.acquire([ds2], holder="job-x")
    with pytest.raises(LockedError) as err:
        locks.acquire([vm, ds1, ds2], holder="job-a")
    assert err.value.details["lock"] == ds2 and err.value.details["holder"] == "job-x"
    assert r.exists(locks.key_prefix + vm, locks.key_prefix + ds1) == 0  # nothing was taken
    assert r.exists(locks.fence_prefix + vm) == 0  # and no token was spent
    blocker.release()
    lease = locks.acquire([ds2, vm, ds1, vm], holder="job-a")  # duplicates and order do not matter
    assert lease.names == tuple(sorted([vm, ds1, ds2]))
    assert r.exists(*lease.keys) == 3
    lease.release()
    assert r.exists(*lease.keys) == 0


def test_only_the_holder_releases(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.3)
    name = vm_lock_name("esx1", "web01")
    first = locks.acquire([name], holder="job-a")
    time.sleep(0.4)  # first expires without renewal
    second = locks.acquire([name], holder="job-a")  # same job id, a later run of it
    first.release()  # must not delete the second run's lock
    assert r.get(locks.key_prefix + name) is not None
    with pytest.raises(LockedError):
        locks.acquire([name], holder="job-b")
    second.release()
    second.release()  # idempotent
    assert second.released and r.get(locks.key_prefix + name) is None
    with pytest.raises(LockLostError, match="released"):
        second.check()


def test_fencing_tokens_strictly_increase_across_holders(locks: LockManager) -> None:
    vm, ds = vm_lock_name("esx1", "web01"), datastore_lock_name("esx1", "ds1")
    seen: list[int] = []
    for i in range(5):
        with locks.hold([vm], holder=f"job-{i}") as lease:
            seen.append(lease.tokens[vm])
    assert seen == sorted(set(seen)) and len(seen) == 5
    both = locks.acquire([vm, ds], holder="job-z")
    assert both.tokens[vm] > seen[-1] and both.tokens[ds] >= 1  # tokens are counted per name
    both.release()


def test_ttl_expiry_lets_another_holder_in_and_the_first_learns_it_lost(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.3)
    name = vm_lock_name("esx1", "web01")
    first = locks.acquire([name], holder="job-a")
    first.check()
    time.sleep(0.4)
    second = locks.acquire([name], holder="job-b")
    assert second.tokens[name] > first.tokens[name]
    assert first.lost  # known from the clock alone, without asking Redis
    with pytest.raises(LockLostError) as err:
        first.renew()
    assert err.value.code == "lock_lost"
    with pytest.raises(LockLostError):
        first.check()
    second.check()
    assert not second.lost
    second.release()


def test_a_lock_taken_over_in_redis_is_reported_by_renew(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=30)  # no lock may expire on its own here, however loaded the machine
    vm, ds = vm_lock_name("esx1", "web01"), datastore_lock_name("esx1", "ds1")
    lease = locks.acquire([vm, ds], holder="job-a")
    r.delete(locks.key_prefix + vm)  # as if it had expired during a long pause
    thief = locks.acquire([vm], holder="job-b")
    pttl_before = r.pttl(locks.key_prefix + ds)
    time.sleep(0.05)
    with pytest.raises(LockLostError, match="job-b"):
        lease.renew()
    assert r.pttl(locks.key_prefix + ds) < pttl_before  # all or none: the other lock was not extended
    assert lease.lost
    with pytest.raises(LockLostError):
        lease.check()
    lease.release()  # releases what it still holds, never the thief's lock
    assert r.get(locks.key_prefix + ds) is None
    assert r.get(locks.key_prefix + vm) is not None
    thief.release()


def test_background_renewal_keeps_the_lock_past_several_ttls(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.4, renew_every_s=0.1)
    other = LockManager(r, ttl_s=0.4)
    name = vm_lock_name("esx1", "web01")
    with locks.hold([name], holder="job-a") as lease:
        deadline = time.monotonic() + 1.3  # over three TTLs
        while time.monotonic() < deadline:
            with pytest.raises(LockedError):
                other.acquire([name], holder="job-b")
            lease.check()
            time.sleep(0.1)
        assert not lease.lost
    assert r.get(locks.key_prefix + name) is None  # released on exit
    other.acquire([name], holder="job-b").release()


def test_hold_releases_when_the_body_fails(locks: LockManager, r: redis.Redis) -> None:
    name = vm_lock_name("esx1", "web01")
    with pytest.raises(RuntimeError), locks.hold([name], holder="job-a"):
        raise RuntimeError("step failed")
    assert r.get(locks.key_prefix + name) is None


def test_wait_succeeds_once_the_holder_releases(locks: LockManager) -> None:
    name = vm_lock_name("esx1", "web01")
    first = locks.acquire([name], holder="job-a")
    timer = threading.Timer(0.3, first.release)
    timer.start()
    try:
        second = locks.acquire([name], holder="job-b", wait_s=3.0)
    finally:
        timer.join()
    assert 0.25 <= second.waited_s < 2.0
    assert second.tokens[name] > first.tokens[name]
    second.release()


def test_wait_gives_up_naming_the_holder_and_the_time_waited(locks: LockManager) -> None:
    name = vm_lock_name("esx1", "web01")
    lease = locks.acquire([name], holder="job-a")
    started = time.monotonic()
    with pytest.raises(LockedError) as err:
        locks.acquire([name], holder="job-b", wait_s=0.3)
    assert 0.3 <= time.monotonic() - started < 1.0
    assert err.value.details["holder"] == "job-a" and err.value.details["waited_s"] >= 0.3
    assert "waited 0.3 s" in err.value.message
    lease.release()


_CONTENDER = """
import json, sys, time
import redis
from ceso.locks import LockManager, vm_lock_name

url, me = sys.argv[1], sys.argv[2]
r = redis.Redis.from_url(url)
locks = LockManager(r, ttl_s=1.0)
r.incr("test:ready")
while int(r.get("test:ready")) < 2:  # start together so that they really contend
    time.sleep(0.005)
intervals, waits = [], []
for i in range(6):
    with locks.hold([vm_lock_name("esx1", "shared vm")], holder=f"{me}-{i}", wait_s=10) as lease:
        start = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process on the machine
        count = int(r.get("test:counter") or 0)  # a deliberately racy read-modify-write
        time.sleep(0.04)
        r.set("test:counter", count + 1)
        lease.check()
        intervals.append((start, time.monotonic()))
        waits.append(lease.waited_s)
    time.sleep(0.005)
print(json.dumps({"intervals": intervals, "waits": waits}))
"""


def test_two_processes_never_hold_the_same_vm_lock_at_once(r: redis.Redis) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, REDIS_URL, f"proc{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in range(2)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    intervals = sorted(tuple(i) for res in results for i in res["intervals"])
    assert len(intervals) == 12
    for (_, end), (start, _) in itertools.pairwise(intervals):
        assert start >= end, f"critical sections overlap: {intervals}"
    assert int(r.get("test:counter") or 0) == 12  # no update was lost to a concurrent holder
    assert any(w > 0.02 for res in results for w in res["waits"])  # they did contend


# -- semaphores ------------------------------------------------------------------------------------
def test_semaphore_admits_exactly_n(locks: LockManager) -> None:
    name = target_lock_name("nas01")
    leases = [locks.semaphore(name, 3, holder=f"backup-{i}") for i in range(3)]
    assert len({lease.tokens[name] for lease in leases}) == 3
    with pytest.raises(LockedError) as err:
        locks.semaphore(name, 3, holder="backup-3")
    assert err.value.details["limit"] == 3
    assert sorted(err.value.details["holders"]) == ["backup-0", "backup-1", "backup-2"]
    with pytest.raises(LockedError, match="already holds"):
        locks.semaphore(name, 5, holder="backup-0")
    leases[0].release()
    fourth = locks.semaphore(name, 3, holder="backup-3")
    for lease in [*leases[1:], fourth]:
        lease.release()


def test_semaphore_never_exceeds_its_limit_under_contention(locks: LockManager) -> None:
    name = target_lock_name("nas01")
    active = 0
    peak = 0
    guard = threading.Lock()
    errors: list[BaseException] = []

    def backup(i: int) -> None:
        nonlocal active, peak
        try:
            with locks.semaphore(name, 3, holder=f"backup-{i}", wait_s=10) as lease:
                with guard:
                    active += 1
                    peak = max(peak, active)
                time.sleep(0.1)
                lease.check()
                with guard:
                    active -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=backup, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert peak == 3


def test_an_expired_semaphore_slot_is_reclaimed_and_its_holder_learns_it(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.3)
    name = target_lock_name("nas01")
    first = locks.semaphore(name, 1, holder="backup-a")
    with pytest.raises(LockedError):
        locks.semaphore(name, 1, holder="backup-b")
    time.sleep(0.4)
    second = locks.semaphore(name, 1, holder="backup-b")
    assert second.tokens[name] > first.tokens[name]
    with pytest.raises(LockLostError):
        first.renew()
    assert first.lost
    first.release()  # must not free the slot of backup-b
    with pytest.raises(LockedError):
        locks.semaphore(name, 1, holder="backup-c")
    second.release()


def test_expired_slots_are_reclaimed_while_other_holders_keep_the_semaphore_alive(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.3, renew_every_s=0.1)
    name = target_lock_name("nas01")
    stale_a = locks.semaphore(name, 3, holder="backup-a")  # never renewed
    stale_b = locks.semaphore(name, 3, holder="backup-b")
    time.sleep(0.15)
    with locks.semaphore(name, 3, holder="keeper") as keeper:  # renewed: the ZSET key stays
        time.sleep(0.3)
        assert r.zcard(locks.semaphore_prefix + name) == 3  # expired members are still there
        # Pretend this process's clock ran slow, so only Redis can tell the slot has expired.
        stale_a._valid_until = time.monotonic() + 10
        assert stale_a.remaining_s > 5
        with pytest.raises(LockLostError, match="expired"):
            stale_a.renew()  # its member had expired, even though nobody removed it yet
        c = locks.semaphore(name, 3, holder="backup-c")
        d = locks.semaphore(name, 3, holder="backup-d")  # only fits if backup-b's slot was reclaimed
        with pytest.raises(LockedError) as err:
            locks.semaphore(name, 3, holder="backup-e")
        assert sorted(err.value.details["holders"]) == ["backup-c", "backup-d", "keeper"]
        keeper.check()
        for lease in (c, d, stale_b):
            lease.release()


def test_semaphore_renewal_keeps_the_slot(r: redis.Redis) -> None:
    locks = LockManager(r, ttl_s=0.3, renew_every_s=0.1)
    name = target_lock_name("nas01")
    with locks.semaphore(name, 1, holder="backup-a") as lease:
        time.sleep(0.9)
        lease.check()
        with pytest.raises(LockedError):
            locks.semaphore(name, 1, holder="backup-b")
    locks.semaphore(name, 1, holder="backup-b").release()


# -- names -----------------------------------------------------------------------------------------
HOSTILE = [
    "vm",
    "vm 1",
    "vm  1",
    " vm 1",
    'vm"1',
    "vm'1",
    "vm`rm -rf /`",
    "vm\n1",
    "vm\r\n1",
    "vm\t1",
    "vm:1",
    "vm::1",
    "vm%3A1",
    "vm%1",
    "%",
    "%25",
    "b:c",
    "c",
    "ünïcödé",
    "u\u0308",  # decomposed ü: a different name from the composed one
    "\u00fc",
    "😀",
    "vm\u200b",
    "vm\u00a0",
    "vm\x00",
    "vm\ud800",  # a lone surrogate still gets a valid, distinct name
    "*",
    "?[a]",
    "x" * 128,
    "x" * 129,
    "x" * 200,
    "x" * 199 + "y",
    "x" * 5000,
]


def test_hostile_names_never_collide(locks: LockManager, r: redis.Redis) -> None:
    hosts = ["esx1", "a", "a:b", "esx1:vm"]
    names = [vm_lock_name(h, v) for h in hosts for v in HOSTILE]
    names += [datastore_lock_name(h, v) for h in hosts for v in HOSTILE]
    names += [target_lock_name(v) for v in HOSTILE]
    assert len(set(names)) == len(names)
    assert vm_lock_name("a:b", "c") != vm_lock_name("a", "b:c")
    for name in names:
        assert name.isprintable() and len(name) < 300
        name.encode("utf-8")  # no surrogates left
    lease = locks.acquire(names, holder="job-a")
    assert len(r.keys(locks.key_prefix + "*")) == len(names)
    assert len(set(lease.tokens.values())) == 1  # each name got its own counter
    for name in names[:40]:
        with pytest.raises(LockedError):
            locks.acquire([name], holder="job-b")
    lease.release()
    assert r.keys(locks.key_prefix + "*") == []


def test_bad_input_is_rejected(locks: LockManager, r: redis.Redis) -> None:
    with pytest.raises(InvalidInputError):
        vm_lock_name("esx1", "")
    with pytest.raises(InvalidInputError):
        locks.acquire([], holder="job-a")
    with pytest.raises(InvalidInputError):
        locks.acquire("vm:esx1:web01", holder="job-a")
    with pytest.raises(InvalidInputError):
        locks.acquire(["x"], holder="")
    with pytest.raises(InvalidInputError):
        locks.acquire(["x"], holder="job-a", wait_s=-1)
    with pytest.raises(InvalidInputError):
        locks.semaphore("x", 0, holder="job-a")
    with pytest.raises(InvalidInputError):
        LockManager(r, ttl_s=1.0, renew_every_s=1.0)


# -- Redis trouble ---------------------------------------------------------------------------------
def test_unreachable_redis_is_a_transient_error() -> None:
    locks = LockManager(_unreachable_client(), ttl_s=1.0)
    with pytest.raises(TransientError) as err:
        locks.acquire([vm_lock_name("esx1", "web01")], holder="job-a")
    assert isinstance(err.value.__cause__, redis.ConnectionError)
    with pytest.raises(TransientError):
        locks.semaphore(target_lock_name("nas01"), 2, holder="job-a")


def test_a_lease_that_cannot_be_renewed_is_lost_when_its_ttl_runs_out(
    r: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    locks = LockManager(r, ttl_s=0.4, renew_every_s=0.1)
    name = vm_lock_name("esx1", "web01")
    with locks.hold([name], holder="job-a") as lease:
        monkeypatch.setattr(locks, "_redis", _unreachable_client())  # Redis goes away
        with pytest.raises(TransientError):
            lease.renew()
        assert lease.remaining_s > 0  # still within its TTL
        time.sleep(0.5)
        assert lease.lost
        with pytest.raises(LockLostError):
            lease.check()
    # leaving the block could not release (logged, not raised); the key expires on its own
    assert not lease.released
    time.sleep(0.1)
    assert r.get(locks.key_prefix + name) is None


def test_lease_repr_names_locks_and_holder(locks: LockManager) -> None:
    lease: Lease = locks.acquire([vm_lock_name("esx1", "web01")], holder="job-a")
    assert "vm:esx1:web01" in repr(lease) and "job-a" in repr(lease)
    lease.release()
