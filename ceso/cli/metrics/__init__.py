"""``ceso metrics serve``: the SQL/Redis gauges for an operator who runs no worker here."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.group()
def metrics() -> None:
    """Prometheus metrics (workers and cesod serve their own)."""


@metrics.command()
@click.option("--address", default=None, help="Bind address (default: metrics.address).")
@click.option("--port", type=click.IntRange(0, 65535), default=9811, show_default=True)
@pass_app
def serve(app: Application, address: str | None, port: int) -> None:
    """Serve jobs-by-state and queue-depth gauges computed from SQL and Redis until stopped."""
    import threading

    from ceso.metrics.server import serve_metrics

    settings = app.runtime.settings
    bound = serve_metrics(app.runtime, address=address or settings.metrics.address, port=port)
    app.info(f"serving http://{address or settings.metrics.address}:{bound}/metrics (Ctrl-C stops)")
    threading.Event().wait()
