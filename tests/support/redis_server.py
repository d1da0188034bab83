"""A private ``redis-server`` for fault injection: started on a free loopback port, stopped and
started again on the same port by the test. Without persistence a restart loses every key, as a
Redis without AOF/RDB does; the shared Redis of the suite is never touched."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from tests.support.services import _wait_port, free_port


class PrivateRedis:
    """One redis-server process at a time on ``port``; data (if persisted) under ``root``."""

    def __init__(self, root: Path, *, persistent: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is required for the chaos suite (apt-get install redis-server)")
        self.binary = binary
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.persistent = persistent
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, read_only: bool = False) -> None:
        """Start the server on its port (again); waits until it listens. ``read_only``: as a replica
        of a primary that is not there (a failover gone wrong): reads work, every write fails."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        persistence = ["--appendonly", "yes"] if self.persistent else ["--appendonly", "no", "--save", ""]
        log = self.root / "redis.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                 "--protected-mode", "no", *persistence,
                 *(["--replicaof", "127.0.0.1", str(free_port())] if read_only else [])],
                stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        _wait_port(self.port, self.proc, log)

    def stop(self) -> None:
        """Kill the server at once (SIGKILL: no save, no goodbye to clients)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self, down_s: float, *, read_only: bool = False) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port (see :meth:`start`)."""
        self.stop()
        time.sleep(down_s)
        self.start(read_only=read_only)
