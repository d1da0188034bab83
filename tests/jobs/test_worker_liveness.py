"""Workers are visible: each beats in Redis for its hosts; a job for a host that no live worker
serves says so on stderr (and as ``warnings`` with ``--json``) while it stays queued; ``host
list`` and ``host check`` show each host's workers; a stopped or killed worker leaves the list."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from tests.conftest import Cli


def _workers(cli: Cli, host: str) -> list[dict[str, Any]] | None:
    listed = cli("--json", "host", "list")
    assert listed.exit_code == 0, listed.stderr
    (row,) = [h for h in listed.json() if h["name"] == host]
    return row["workers"]  # type: ignore[no-any-return]


def test_a_job_for_a_host_without_a_worker_says_so_and_stays_queued(cli: Cli, registered_host: str) -> None:
    host = registered_host
    started = time.monotonic()
    waited = cli("host", "ping", host, "--timeout", "6")
    assert waited.exit_code != 0
    warning = f"warning: no live worker serves host {host}: the job stays queued until one starts"
    assert warning in waited.stderr, waited.stderr
    assert f"still queued after 6s: no live worker serves host {host} (it stays queued)" in waited.stderr
    assert time.monotonic() - started < 30
    submitted = cli("--json", "host", "ping", host, "--no-wait")
    assert submitted.exit_code == 0, submitted.stderr
    job = submitted.json()
    (said,) = job["warnings"]
    assert job["state"] == "queued" and said.startswith(warning.removeprefix("warning: "))
    assert f"ceso worker --host {host}" in said
    assert _workers(cli, host) == []
    listed = cli("host", "list")
    assert "NONE" in listed.stdout


def test_live_workers_are_listed_until_they_stop_or_die(
    cli: Cli, registered_host: str, start_worker: Any
) -> None:
    host = registered_host
    worker = start_worker(host, concurrency=1)
    (seen,) = _workers(cli, host) or [None]
    assert seen is not None and seen["pid"] == worker.proc.pid and seen["hosts"] == [host]
    assert seen["id"].startswith(f"ceso-{host}-{worker.proc.pid}@") and seen["last_beat_s"] < 15
    pinged = cli("--json", "host", "ping", host, "--timeout", "60")
    assert pinged.exit_code == 0 and "warnings" not in pinged.json(), pinged.stdout + pinged.stderr
    checked = cli("host", "check", host)
    assert checked.exit_code == 0 and f"workers: {seen['id']} (beat" in checked.stdout, checked.stdout
    # A clean stop leaves the list at once.
    worker.stop()
    assert _workers(cli, host) == []
    # A killed worker leaves it once three beats are missed.
    second = start_worker(host, concurrency=1)
    assert [w["pid"] for w in _workers(cli, host) or []] == [second.proc.pid]
    os.killpg(second.proc.pid, signal.SIGKILL)
    second.proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while _workers(cli, host):
        assert time.monotonic() < deadline, "a killed worker is still listed after 30 s"
        time.sleep(1)


def test_job_commands_take_an_unambiguous_id_prefix(cli: Cli, registered_host: str) -> None:
    """The CLI prints `job 3010142a`; status, wait and cancel take that, as backup commands do."""
    submitted = cli("--json", "host", "ping", registered_host, "--no-wait")
    job_id = submitted.json()["id"]
    short = job_id[:8]
    status = cli("--json", "job", "status", short)
    assert status.exit_code == 0 and status.json()["id"] == job_id, status.stderr
    cancelled = cli("--json", "job", "cancel", short)
    assert cancelled.exit_code == 0 and cancelled.json()["state"] == "cancelled"
    waited = cli("job", "wait", short.upper(), "--timeout", "5")
    assert (
        waited.exit_code == 1 and f"job {job_id} host.ping on {registered_host}: cancelled" in waited.stderr
    )
    assert cli("job", "status", "abc").exit_code == 2  # too short to be a prefix
    unused = "000000" if not job_id.startswith("000000") else "ffffff"
    assert cli("job", "status", unused).exit_code == 4
    assert cli("job", "status", "not-hex!").exit_code == 2


def test_ctrl_c_while_following_leaves_the_job_and_says_how_to_follow_it(
    cli: Cli, registered_host: str, ceso_env: dict[str, str]
) -> None:
    import subprocess

    from tests.conftest import CESO_BIN

    proc = subprocess.Popen(
        [str(CESO_BIN), "host", "ping", registered_host, "--timeout", "120"],
        env={**os.environ, **ceso_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: SIGINT at its default, whatever this process inherited.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509
    )
    deadline = time.monotonic() + 30
    while not cli("--json", "job", "list", "--host", registered_host).json():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)  # following it by now
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    (job,) = cli("--json", "job", "list", "--host", registered_host).json()
    short = job["id"][:8]
    assert f"stopped following job {job['id']}; the job goes on: `ceso job wait {short}`" in stderr
    assert "aborted" not in stderr and "Traceback" not in stderr
    assert job["state"] == "queued"  # not cancelled: no worker runs here, it simply waits
