"""The metrics endpoint: the multiprocess aggregate plus scrape-time gauges."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ceso.errors import ConflictError

__all__ = ["mark_child_dead", "prepare_multiprocess_dir", "serve_metrics"]

log = logging.getLogger(__name__)


def prepare_multiprocess_dir(path: Path) -> None:
    """Wipe and create ``path`` and point prometheus-client at it.

    Must run before anything imports prometheus_client in this process tree:
    the client chooses multiprocess mode at import time.
    """
    from ceso.private_paths import make_private_dir

    shutil.rmtree(path, ignore_errors=True)
    make_private_dir(path.parent)
    make_private_dir(path)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def serve_metrics(
    runtime: Any, *, address: str, port: int, hosts: list[str] | None = None, state_gauges: bool = True
) -> int:
    """Serve ``/metrics`` on ``address:port`` from a daemon thread; return the bound port.

    In multiprocess mode (workers) the registry aggregates every process's
    files; otherwise it serves this process's own metrics. With
    ``state_gauges`` the scrape-time SQL/Redis gauges are added (queue depth
    of ``hosts``, or of every registered host when None). Logs the URL as
    ``metrics on http://ADDRESS:PORT/metrics``. Raises ConflictError
    (``port_in_use``) when the port cannot be bound.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    from ceso.metrics.collector import StateCollector

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    if state_gauges:
        registry.register(StateCollector(runtime, hosts))
    try:
        server, _thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise ConflictError(
            f"cannot serve metrics on {address}:{port}: {exc.strerror or exc} (another ceso process on "
            "this machine? give each its own --metrics-port, 0 for any free port, or -1 for none)",
            code="port_in_use",
        ) from exc
    bound = int(server.server_port)
    log.info("metrics on http://%s:%d/metrics", f"[{address}]" if ":" in address else address, bound)
    return bound


def mark_child_dead(pid: int) -> None:
    """Tell the multiprocess collector a prefork child is gone (its live gauges stop counting)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
