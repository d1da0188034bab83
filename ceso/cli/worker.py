"""``ceso worker``: a Celery worker consuming the queues of some hosts."""

from __future__ import annotations

import socket

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.option("--host", "hosts", multiple=True, required=True, help="Consume this host's queue (repeatable).")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Jobs run at once (prefork child processes).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(-1, 65535),
    default=None,
    help="Port of this worker's /metrics (default: metrics.worker_port; 0 any free port; -1 off).",
)
@click.option(
    "--loglevel", type=click.Choice(["debug", "info", "warning", "error"]), default="info", show_default=True
)
@pass_app
def worker(
    app: Application, hosts: tuple[str, ...], concurrency: int, metrics_port: int | None, loglevel: str
) -> None:
    """Run jobs of the given hosts until stopped (SIGTERM finishes running jobs first).

    Exits 0 after a requested stop, non-zero when the worker stopped on an error (e.g. a broker
    that came back read-only), so a supervisor restarts it."""
    import os

    from workers.memory import cap_malloc_arenas

    cap_malloc_arenas()  # before any thread starts; the prefork children inherit it

    from ceso.constants import ENV_CONFIG, queue_for_host
    from ceso.hosts.names import validate_host_name

    names = [validate_host_name(h) for h in hosts]
    if app.config:
        os.environ[ENV_CONFIG] = app.config  # the worker's app reads settings itself
    app.runtime.engine  # noqa: B018  (fail fast: bad config or unreachable DB, schema upgraded)
    from sqlmodel import Session

    from ceso.hosts.registry import get_host

    with Session(app.runtime.engine) as session:
        for name in names:
            get_host(session, name)
    check = getattr(app.runtime.secrets, "check", None)
    if check is not None:
        check()  # a machine without the installation's master key stops here, not at each job
    from ceso.log import configure_logging

    configure_logging()
    settings = app.runtime.settings
    port = settings.metrics.worker_port if metrics_port is None else metrics_port
    if settings.metrics.enabled and port >= 0:
        from ceso.metrics.server import prepare_multiprocess_dir, serve_metrics
        from ceso.private_paths import make_private_dir

        make_private_dir(settings.data_dir)  # the worker may be the first process to need it
        # Before workers.app (and so prometheus_client) is imported: multiprocess mode is chosen at import.
        prepare_multiprocess_dir(settings.data_dir / "metrics" / f"worker-{os.getpid()}")
        serve_metrics(app.runtime, address=settings.metrics.address, port=port, hosts=names)
    from ceso.jobs.liveness import Heartbeat
    from workers.app import run_worker

    worker_id = f"ceso-{'-'.join(names)[:40]}-{os.getpid()}@{socket.gethostname()}"
    # The main process beats for its hosts while it runs (a queued job's submitter is told when
    # none does); a clean stop leaves the registry at once.
    heartbeat = Heartbeat(
        app.runtime.redis,
        worker_id,
        names,
        {"machine": socket.gethostname(), "pid": os.getpid(), "hosts": names, "concurrency": concurrency},
    )
    heartbeat.start()
    try:
        code = run_worker(
            queues=[queue_for_host(n) for n in names],
            concurrency=concurrency,
            loglevel=loglevel,
            hostname=worker_id,
        )
    finally:
        heartbeat.stop()
    if code:
        # Celery logged the cause ("Unrecoverable error: ..."); systemd's Restart=on-failure needs the status.
        raise SystemExit(code)
