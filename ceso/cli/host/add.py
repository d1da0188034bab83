"""``ceso host add``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from ceso.cli.application import Application, pass_app
from ceso.constants import ENV_HOST_PASSWORD, ENV_HOST_SSH_PASSWORD
from ceso.errors import InvalidInputError

if TYPE_CHECKING:
    from ceso.hosts.ssh_setup import SshOptions


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
@click.option("--ssh-user", help="Log in over SSH as this user (e.g. root): enables the SSH route.")
@click.option("--ssh-port", type=click.IntRange(1, 65535), default=22, show_default=True, help="SSH port.")
@click.option(
    "--ssh-key",
    "ssh_key_file",
    type=click.Path(dir_okay=False),
    help="Unencrypted private key FILE for the SSH login; its contents go to the secret store.",
)
@click.option(
    "--ssh-password-stdin",
    is_flag=True,
    help="Read the SSH password from stdin (the line after the API password with --password-stdin); "
    "or set CESO_HOST_SSH_PASSWORD.",
)
@click.option("--ssh-host-key", metavar="SHA256:...", help="Pin the SSH host key by its SHA256 fingerprint.")
@click.option(
    "--accept-ssh-host-key", is_flag=True, help="Trust and pin the SSH host key the host shows now."
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
    ssh_user: str | None,
    ssh_port: int,
    ssh_key_file: str | None,
    ssh_password_stdin: bool,
    ssh_host_key: str | None,
    accept_ssh_host_key: bool,
) -> None:
    """Register host NAME after logging in to it once.

    The password is read from stdin (--password-stdin) or CESO_HOST_PASSWORD,
    never from the command line, and is kept in the OS keyring or ceso's
    encrypted secret file, never in SQL.

    With --ssh-user the host also gets an SSH login (key file or password,
    kept in the same store) whose host key is pinned like the certificate;
    the SSH route uses it where the API cannot write (a free license) or
    when --route ssh.
    """
    from ceso.hosts.registry import AddHostRequest, add_host, host_to_dict

    password = _read_password(password_stdin)
    ssh = _ssh_options(
        ssh_user, ssh_port, ssh_key_file, ssh_password_stdin, ssh_host_key, accept_ssh_host_key
    )
    request = AddHostRequest(
        name=name,
        url=url,
        username=username,
        password=password,
        thumbprint=thumbprint,
        accept_thumbprint=accept_thumbprint,
        route=route,
        ssh=ssh,
    )
    if app.dry_run:
        from ceso.hosts.endpoint import parse_endpoint
        from ceso.hosts.names import validate_host_name

        validate_host_name(name)
        endpoint = parse_endpoint(url)
        if ssh is not None:
            ssh.validate(name)
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
            + (f", SSH host key {added.ssh_host_key}" if added.ssh_host_key else "")
            + f"; route {added.route}"
            + ("" if (added.capabilities or {}).get("api_writes") is not False else " (API read-only)")
        ),
    )


def _ssh_options(
    user: str | None,
    port: int,
    key_file: str | None,
    password_stdin: bool,
    host_key: str | None,
    accept_host_key: bool,
) -> SshOptions | None:
    """The SSH options, secrets read from a file, stdin or the environment (never from argv)."""
    if user is None:
        if key_file or password_stdin or host_key or accept_host_key:
            raise InvalidInputError("--ssh-key, --ssh-password-stdin and --ssh-host-key need --ssh-user")
        return None
    from ceso.hosts.ssh_setup import SshOptions

    key = password = None
    if key_file is not None:
        from ceso.cloudinit.sshkeys import MAX_KEY_FILE
        from ceso.input_files import read_text_file

        key = read_text_file(key_file, "--ssh-key file", max_bytes=MAX_KEY_FILE)
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = os.environ.get(ENV_HOST_SSH_PASSWORD)
    if not key and not password:
        raise InvalidInputError(
            "no SSH credential: use --ssh-key FILE, --ssh-password-stdin or CESO_HOST_SSH_PASSWORD"
        )
    return SshOptions(
        username=user,
        port=port,
        key=key,
        password=password,
        host_key=host_key,
        accept_host_key=accept_host_key,
    )
