"""``ceso host add``."""

from __future__ import annotations

import os
import sys

import click

from ceso.cli.application import Application, pass_app
from ceso.constants import ENV_HOST_PASSWORD
from ceso.errors import InvalidInputError


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if env := os.environ.get(ENV_HOST_PASSWORD):
        return env
    if sys.stdin.isatty():
        return str(click.prompt("Password", hide_input=True))
    raise InvalidInputError("no password given: use --password-stdin or set CESO_HOST_PASSWORD")


@click.command()
@click.argument("name")
@click.option(
    "--url", required=True, help="https://esxi.example.com (or http://HOST:PORT/sdk for a simulator)."
)
@click.option("--user", "username", required=True, help="ESXi user, e.g. root.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option(
    "--thumbprint", metavar="SHA256", help="Pin the host's TLS certificate by its SHA-256 fingerprint."
)
@click.option(
    "--accept-thumbprint",
    is_flag=True,
    help="Trust and pin whatever certificate the host shows now (trust on first use).",
)
@click.option(
    "--route",
    type=click.Choice(["auto", "api", "ssh"]),
    default="auto",
    show_default=True,
    help="How jobs reach the host: the vSphere API, SSH, or chosen per step.",
)
@pass_app
def add(
    app: Application,
    name: str,
    url: str,
    username: str,
    password_stdin: bool,
    thumbprint: str | None,
    accept_thumbprint: bool,
    route: str,
) -> None:
    """Register host NAME after logging in to it once.

    The password is read from stdin (--password-stdin) or CESO_HOST_PASSWORD,
    never from the command line, and is kept in the OS keyring or ceso's
    encrypted secret file, never in SQL.
    """
    from ceso.hosts.registry import AddHostRequest, add_host, host_to_dict

    request = AddHostRequest(
        name=name,
        url=url,
        username=username,
        password=_read_password(password_stdin),
        thumbprint=thumbprint,
        accept_thumbprint=accept_thumbprint,
        route=route,
    )
    if app.dry_run:
        from ceso.esxi.endpoint import parse_endpoint
        from ceso.hosts.names import validate_host_name

        validate_host_name(name)
        endpoint = parse_endpoint(url)
        app.emit(
            {"dry_run": True, "name": name, "url": endpoint.url},
            lambda: click.echo(f"dry run: would log in to {endpoint.url} and register it as {name}"),
        )
        return
    added = add_host(app.runtime, request)
    app.emit(
        host_to_dict(added),
        lambda: click.echo(
            f"host {added.name} added: {added.product} (API {added.api_version})"
            + (f", certificate SHA256 {added.thumbprint}" if added.thumbprint else "")
        ),
    )
