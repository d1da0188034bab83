"""The worker caps glibc's malloc arenas, unless the operator set MALLOC_ARENA_MAX, and leaves out
the packages a backup to a local target does not use."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from workers.memory import cap_malloc_arenas

_PROBE = "from workers.memory import cap_malloc_arenas; print(cap_malloc_arenas())"


def test_the_cap_applies_on_glibc() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "True"


def test_an_operators_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False


_TRIM_PROBE = """
import ctypes
from workers.memory import release_free_memory

def rss_mib():
    return next(int(ln.split()[1]) // 1024 for ln in open("/proc/self/status") if ln.startswith("VmRSS"))

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(4096) for _ in range(16384)]  # 64 MiB on the heap, below the mmap threshold
for block in blocks:
    ctypes.memset(block, 1, 4096)
top = libc.malloc(4096)  # allocated last: the heap cannot shrink from its end past this block
for block in blocks:
    libc.free(block)
before = rss_mib()
print(release_free_memory(), before - rss_mib())
"""


def test_memory_a_job_freed_goes_back_to_the_system() -> None:
    out = subprocess.run([sys.executable, "-c", _TRIM_PROBE], capture_output=True, text=True, check=True)
    released, dropped_mib = out.stdout.split()
    assert released == "True" and int(dropped_mib) >= 48, out.stdout


#: Never in a worker's main process (so in no prefork child) nor in a local backup or restore job.
WORKER_UNUSED = ("boto3", "botocore", "paramiko", "flower", "tornado", "prompt_toolkit", "pygments", "rich")

_WORKER_PROBE = """
import sys
from workers import app as worker_app

class Started(Exception):
    pass

class Worker:  # stands in for celery's: the imports so far are what each prefork child inherits
    def __init__(self, **options):
        pass

    def start(self):
        import ceso.operations.handlers  # every handler, as the runner imports them
        import ceso.backup.targets.local, ceso.backup.pipeline, ceso.backup.codec

        print("IMPORTED", sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(","))))
        raise Started

worker_app.app.Worker = Worker
from ceso.cli import main

try:
    main(["worker", "--host", sys.argv[1], "--concurrency", "1", "--metrics-port", "-1"])
except Started:
    pass
"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_worker_and_its_backup_jobs_leave_out_s3_ssh_and_celerys_command_line(
    ceso_env: dict[str, str], registered_host: str
) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _WORKER_PROBE, registered_host, ",".join(WORKER_UNUSED)],
        capture_output=True,
        text=True,
        env=ceso_env | {"PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("IMPORTED ")), None)
    assert line is not None, proc.stdout + proc.stderr
    assert ast.literal_eval(line.removeprefix("IMPORTED ")) == []
