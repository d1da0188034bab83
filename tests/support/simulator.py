"""Launch ceso's simulated standalone ESXi hosts (govmomi's simulator, see ops/simulator).

Contracts:

* :func:`build_simulator` builds (or finds in the cache) the simulator binary with
  ``ops/simulator/build.sh`` once per process and returns its path. It raises
  :class:`SimulatorError` when the Go toolchain or the govmomi source is missing; callers must let
  that fail the test run, never skip.
* :meth:`SimulatorHost.start` runs one simulator in its own process with its own fresh ``TMPDIR``
  (so its datastore directory lives there), on ``127.0.0.1`` with a free port, and returns only
  once a real ``RetrieveServiceContent`` has been answered.
* :meth:`SimulatorHost.stop` terminates it (SIGTERM, then SIGKILL after 10 s) and removes its
  ``TMPDIR``, datastore included. It is idempotent; the context manager calls it.

Each host is an empty standalone ESXi (zero VMs, one datastore ``LocalDS_0``); any non-empty
user/password logs in. State is in memory only. Where a test works around a way the simulator
differs from real ESXi, it says so there.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pyVmomi

__all__ = ["BUILD_SCRIPT", "SimulatorError", "SimulatorHost", "build_simulator", "start_hosts"]

# pyVmomi has no type information worth checking against; treat it as dynamic.
_pyvmomi: Any = pyVmomi
vim: Any = _pyvmomi.vim
SoapStubAdapter: Any = _pyvmomi.SoapStubAdapter

BUILD_SCRIPT = Path(__file__).resolve().parents[2] / "ops" / "simulator" / "build.sh"
URL_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
USER = "root"
PASSWORD = "simulator"

# Resolved when this module is imported, before any fixture points HOME at a temporary directory:
# a build asked for later must still find the machine's cached binary, not start a cold Go build.
SIM_CACHE = os.environ.get("CESO_SIM_CACHE") or str(Path.home() / ".cache" / "ceso")

_build_lock = threading.Lock()
_built: dict[str, Path] = {}  # "binary" -> path, once built in this process


class SimulatorError(RuntimeError):
    """The simulator could not be built or started."""


def build_simulator() -> Path:
    """Return the simulator binary, building it with build.sh on first use in this process.

    Raises SimulatorError (with build.sh's stderr) if the build fails, e.g. no Go toolchain.
    """
    with _build_lock:
        if "binary" not in _built:
            proc = subprocess.run(
                ["bash", str(BUILD_SCRIPT)],
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, "CESO_SIM_CACHE": SIM_CACHE},
            )
            lines = proc.stdout.strip().splitlines()
            if proc.returncode != 0 or not lines:
                raise SimulatorError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}): {proc.stderr.strip()}")
            path = Path(lines[-1])
            if not os.access(path, os.X_OK):
                raise SimulatorError(f"{BUILD_SCRIPT} printed {path}, which is not an executable")
            _built["binary"] = path
        return _built["binary"]


def _unverified_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """Read one line from proc.stdout within timeout; None on timeout or EOF."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
    return buf.split(b"\n", 1)[0].decode().strip()


class SimulatorHost:
    """One running simulator process. Create with :meth:`start`; use as a context manager."""

    def __init__(
        self, proc: subprocess.Popen[bytes], url: str, tmpdir: Path, log_path: Path, tls: bool
    ) -> None:
        """Wrap an already started process; use :meth:`start` instead of calling this."""
        self.proc = proc
        self.url = url
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self.host: str = parts.hostname
        self.port: int = parts.port
        self.tmpdir = tmpdir
        self.log_path = log_path
        self.tls = tls
        self._datastore_dir: Path | None = None

    @classmethod
    def start(
        cls, *, tls: bool = False, free_license: bool = False, extra_args: Sequence[str] = ()
    ) -> SimulatorHost:
        """Start a simulator and return it once it answers RetrieveServiceContent.

        ``tls`` serves https (self-signed); ``free_license`` emulates a free-licensed host (writes
        fail with ``vim.fault.RestrictedVersion``); ``extra_args`` go to the binary verbatim, e.g.
        ``("-fail-methods", "PowerOnVM_Task", "-delay", "CreateVM_Task=500")``.
        Raises SimulatorError with the process's stderr if it does not come up within 30 s.
        """
        binary = build_simulator()
        tmpdir = Path(tempfile.mkdtemp(prefix="ceso-sim-"))
        log_path = tmpdir / "simulator.log"
        args = [str(binary), "-listen", "127.0.0.1:0"]
        if tls:
            args.append("-tls")
        if free_license:
            args.append("-free-license")
        args.extend(extra_args)
        env = dict(os.environ, TMPDIR=str(tmpdir))
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env
            )
        try:
            line = _read_line(proc, URL_TIMEOUT)
            if not line or not line.endswith("/sdk"):
                raise SimulatorError(
                    f"simulator {args} printed no URL within {URL_TIMEOUT:.0f}s "
                    f"(got {line!r}, exit {proc.poll()}); stderr: {_tail(log_path)}"
                )
            host = cls(proc, line, tmpdir, log_path, tls)
            host._wait_ready(time.monotonic() + URL_TIMEOUT)
        except BaseException:
            _terminate(proc)
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        return host

    def _wait_ready(self, deadline: float) -> None:
        while True:
            try:
                self.service_instance().RetrieveContent()
                return
            except Exception as exc:  # any failure means "not ready yet"
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SimulatorError(
                        f"simulator at {self.url} not ready: {exc!r}; stderr: {_tail(self.log_path)}"
                    ) from exc
                time.sleep(0.05)

    def service_instance(self) -> Any:
        """Return an anonymous (not logged in) ``vim.ServiceInstance`` for this host."""
        stub = SoapStubAdapter(url=self.url, sslContext=_unverified_context() if self.tls else None)
        return vim.ServiceInstance("ServiceInstance", stub)

    def connect(self) -> Any:
        """Return a logged-in ``vim.ServiceInstance`` (caller may Logout; sessions are cheap)."""
        si = self.service_instance()
        si.content.sessionManager.Login(USER, PASSWORD)
        return si

    def datastore_dir(self) -> Path:
        """Return the real directory backing the host's first datastore (cached)."""
        if self._datastore_dir is None:
            si = self.connect()
            try:
                content = si.RetrieveContent()
                view = content.viewManager.CreateContainerView(content.rootFolder, [vim.HostSystem], True)
                try:
                    url = view.view[0].datastore[0].info.url
                finally:
                    view.DestroyView()
            finally:
                si.content.sessionManager.Logout()
            self._datastore_dir = Path(url)
        return self._datastore_dir

    def running(self) -> bool:
        """True while the simulator process has not exited."""
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop the process (SIGTERM, SIGKILL after 10 s) and remove its TMPDIR. Idempotent."""
        _terminate(self.proc)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> SimulatorHost:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SimulatorHost(url={self.url!r}, pid={self.proc.pid}, tmpdir={str(self.tmpdir)!r})"


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip() or "(empty)"
    except OSError as exc:
        return f"(unreadable: {exc})"


def start_hosts(n: int, **kw: Any) -> list[SimulatorHost]:
    """Start n hosts concurrently (same keyword arguments as :meth:`SimulatorHost.start`).

    All or nothing: if any fails, the ones that started are stopped and the error is raised.
    """
    build_simulator()  # build once, before the threads race for it
    with ThreadPoolExecutor(max_workers=max(n, 1)) as pool:
        futures = [pool.submit(SimulatorHost.start, **kw) for _ in range(n)]
    hosts: list[SimulatorHost] = []
    error: BaseException | None = None
    for fut in futures:
        exc = fut.exception()
        if exc is None:
            hosts.append(fut.result())
        elif error is None:
            error = exc
    if error is not None:
        for h in hosts:
            h.stop()
        raise error
    return hosts
