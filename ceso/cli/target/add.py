"""``ceso target add``."""

from __future__ import annotations

import os
import sys

import click

from ceso.cli.application import Application, pass_app
from ceso.constants import ENV_TARGET_SECRET
from ceso.errors import InvalidInputError


def _secret(from_stdin: bool, what: str) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if env := os.environ.get(ENV_TARGET_SECRET):
        return env
    raise InvalidInputError(f"no {what} given: use --secret-stdin or set {ENV_TARGET_SECRET}")


def _credentials(
    type_: str, identity_file: str | None, access_key_id: str | None, secret_stdin: bool
) -> dict[str, str]:
    if type_ == "sftp":
        if identity_file:
            from ceso.cloudinit.sshkeys import MAX_KEY_FILE
            from ceso.input_files import read_text_file

            return {"private_key": read_text_file(identity_file, "--identity-file", max_bytes=MAX_KEY_FILE)}
        return {"password": _secret(secret_stdin, "SFTP password")}
    if type_ == "s3":
        if not access_key_id:
            raise InvalidInputError("an s3 target needs --access-key-id (the secret key from stdin or env)")
        return {"access_key_id": access_key_id, "secret_access_key": _secret(secret_stdin, "S3 secret key")}
    return {}


@click.command()
@click.argument("name")
@click.option("--type", "type_", required=True, type=click.Choice(["local", "sftp", "s3", "datastore"]))
@click.option("--path", help="local: the directory; datastore: the folder on the datastore.")
@click.option("--url", help="sftp://user@host[:port]/path or s3://bucket[/prefix].")
@click.option("--endpoint", metavar="URL", help="s3: an S3-compatible endpoint (default: AWS).")
@click.option("--region", help="s3: the region (default us-east-1).")
@click.option("--host", help="datastore: the registered ESXi host that has the datastore.")
@click.option("--datastore", help="datastore: its name.")
@click.option("--host-key", metavar="SHA256:...", help="sftp: pin the server's host key fingerprint.")
@click.option("--identity-file", type=click.Path(dir_okay=False), help="sftp: private key file (stored).")
@click.option("--access-key-id", help="s3: the access key id (stored in the secret store).")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help=f"Read the SFTP password or S3 secret key from stdin (else ${ENV_TARGET_SECRET}).",
)
@pass_app
def add(
    app: Application,
    name: str,
    type_: str,
    path: str | None,
    url: str | None,
    endpoint: str | None,
    region: str | None,
    host: str | None,
    datastore: str | None,
    host_key: str | None,
    identity_file: str | None,
    access_key_id: str | None,
    secret_stdin: bool,
) -> None:
    """Add backup target NAME after writing, reading back and deleting a probe file on it.

    Credentials go to the OS keyring or ceso's encrypted secret file, never to SQL;
    secrets are read from stdin or the environment, never from the command line.
    """
    from ceso.backup.targets.registry import AddTargetRequest, add_target, target_to_dict

    request = AddTargetRequest(
        name=name,
        type=type_,
        path=path,
        url=url,
        endpoint=endpoint,
        region=region,
        host=host,
        datastore=datastore,
        host_key=host_key,
        credentials=_credentials(type_, identity_file, access_key_id, secret_stdin),
    )
    if app.dry_run:
        app.emit(
            {"dry_run": True, "name": name, "type": type_}, lambda: click.echo(f"dry run: would add {name}")
        )
        return
    row, facts = add_target(app.runtime, request)
    app.emit(
        {**target_to_dict(row), "check": facts},
        lambda: click.echo(
            f"target {row.name} ({row.type}) added: probe file written, read back and deleted"
        ),
    )
