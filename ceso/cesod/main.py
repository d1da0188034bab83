"""``cesod [--listen HOST:PORT] [--tls-cert PEM --tls-key PEM] [--metrics-port N]``: serve JSON-RPC 2.0
for agents until stopped (SIGTERM or Ctrl-C)."""

from __future__ import annotations

import ipaddress
import logging
import sys
from pathlib import Path
from typing import Any

import click

from ceso.errors import CesoError, ConfigError

__all__ = ["cesod", "main", "parse_listen"]


def parse_listen(value: str) -> tuple[str, int]:
    """``127.0.0.1:8470``, ``[::1]:8470`` or ``:8470`` (loopback) → (host, port); ConfigError otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:8470")
    host = host.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise ConfigError(f"--listen {value!r}: HOST must be an IP address") from None
    return host, int(port)


def _access_logging(path: Any) -> None:
    from ceso.log import configure_logging
    from ceso.security.redact import RedactingFormatter

    configure_logging()
    access = logging.getLogger("ceso.cesod.access")
    if path is not None:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        access.propagate = False
    else:
        handler = logging.StreamHandler()
        access.propagate = False
    handler.setFormatter(RedactingFormatter("%(asctime)s %(message)s"))
    access.addHandler(handler)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", type=click.Path(dir_okay=False), envvar="CESO_CONFIG", help="YAML config file.")
@click.option("--listen", metavar="HOST:PORT", help="Bind address (default: cesod.listen, 127.0.0.1:8470).")
@click.option(
    "--metrics-port",
    type=click.IntRange(-1, 65535),
    default=None,
    help="Port of cesod's /metrics (default: metrics.cesod_port; 0 any free port; -1 off).",
)
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM certificate for HTTPS (default: cesod.tls_cert); needed off loopback.",
)
@click.option(
    "--tls-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PEM private key of --tls-cert (default: cesod.tls_key).",
)
@click.option(
    "--insecure-http",
    is_flag=True,
    default=None,
    help="Serve plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).",
)
def cesod(
    config: str | None,
    listen: str | None,
    metrics_port: int | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    insecure_http: bool | None,
) -> None:
    """Serve ceso's operations to agents as JSON-RPC 2.0 at POST /rpc.

    Agents authenticate with `Authorization: Bearer TOKEN` (from `ceso agent add`);
    client addresses outside cesod.allowlist are refused before anything else.
    Off loopback cesod serves HTTPS only (--tls-cert and --tls-key), unless
    --insecure-http says a TLS-terminating proxy is in front of it.
    Prometheus metrics (agent operations) are served on metrics.address at
    their own port, never on the JSON-RPC listener.
    """
    from ceso.cesod.metrics import start_metrics
    from ceso.cesod.serving import CesodServer, bind_tcp
    from ceso.cesod.tls import check_transport, server_context
    from ceso.runtime import get_runtime

    runtime = get_runtime(config)
    settings = runtime.settings.cesod
    host, port = parse_listen(listen or settings.listen)
    if (tls_cert is None) != (tls_key is None):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    cert, key = (tls_cert, tls_key) if tls_cert is not None else (settings.tls_cert, settings.tls_key)
    insecure = settings.insecure_http if insecure_http is None else insecure_http
    check_transport(host, port, tls=cert is not None, insecure_http=insecure)
    tls = server_context(cert, key) if cert is not None and key is not None else None
    runtime.engine  # noqa: B018  (fail fast: bad config or unreachable database)
    _access_logging(settings.access_log)
    start_metrics(runtime, metrics_port)  # before the RPC port: a taken port stops cesod here
    try:
        tcp = bind_tcp(host, port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    operator = _operator_socket(config) if settings.operator_socket else None
    server = CesodServer(runtime, tcp, tls=tls, operator=operator.sock if operator is not None else None)
    bound_host, bound_port = str(tcp.getsockname()[0]), int(tcp.getsockname()[1])
    shown = f"[{bound_host}]" if ":" in str(bound_host) else bound_host
    if operator is not None:
        click.echo(f"cesod serving the local operator on {operator.path}", err=True)
    click.echo(f"cesod listening on {server.scheme}://{shown}:{bound_port}/rpc", err=True)
    try:
        server.run()  # until SIGTERM or SIGINT (Ctrl-C): a graceful stop
    finally:
        if operator is not None:
            operator.close()
        tcp.close()
        runtime.close()
    click.echo("cesod stopped", err=True)


def _operator_socket(config: str | None) -> Any:
    """Bind the local operator's socket (:mod:`ceso.cesod.operator_socket`); None, with a warning,
    if it cannot be opened: agents are still served, and the CLI works without it."""
    from ceso.cesod.local import config_identity
    from ceso.cesod.operator_socket import open_operator_socket

    identity = config_identity(config)
    try:
        if identity is None:  # pragma: no cover - get_runtime has already read this config file
            raise ConfigError("cannot read the config file to name the operator socket")
        return open_operator_socket(identity)
    except ConfigError as exc:
        click.echo(f"warning: not serving the local operator: {exc.message}", err=True)
        return None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``cesod`` script: errors become one line and the CLI's exit codes."""
    from ceso.security.redact import redact_text

    try:
        cesod.main(args=argv, prog_name="cesod", standalone_mode=False)
    except CesoError as exc:
        click.echo(f"error: {redact_text(exc.message)}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)
