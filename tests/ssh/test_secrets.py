"""SSH secrets (private key, password) never show in argv, output, logs, SQL or job records.

Grep, after real flows: host add with a key and with a password, host
check, and a create job on the SSH route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ceso.runtime import get_runtime
from tests.conftest import Cli, unique
from tests.ssh.conftest import SshBed
from tests.support.simulator import SimulatorHost


def _sql_dump() -> str:
    engine = get_runtime().engine
    out = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            out += [repr(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


def _key_material(key_text: str) -> list[str]:
    """The lines of a private key that are secret (the base64 body)."""
    return [line for line in key_text.splitlines() if line and not line.startswith("-----")]


def _files_text(*roots: Path) -> str:
    texts = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file():
                texts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(texts)


def test_the_ssh_password_goes_only_to_the_secret_store(
    cli: Cli, free_sim: SimulatorHost, password_server: tuple[int, str], ceso_env: dict[str, str]
) -> None:
    port, fp = password_server
    password = "correct horse"  # what the paramiko server accepts
    added = cli("--json", "host", "add", unique("pw"), "--url", free_sim.url, "--user", "root", "--password-stdin",
                "--ssh-user", "root", "--ssh-port", str(port), "--ssh-password-stdin", "--ssh-host-key", fp,
                input=f"api-password-9f8e7d\n{password}\n")  # fmt: skip
    assert added.exit_code == 0, added.stdout + added.stderr
    host = added.json()
    assert host["ssh_auth"] == "password" and host["capabilities"]["ssh"]["authenticated"] is True
    checked = cli("--json", "host", "check", host["name"])
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    leaked = [
        added.stdout,
        added.stderr,
        checked.stdout,
        checked.stderr,
        _sql_dump(),
        _files_text(Path(ceso_env["CESO_DATA_DIR"])),
    ]
    for text in leaked:
        assert password not in text and "api-password-9f8e7d" not in text
    # The secret store holds it, encrypted, under the documented key.
    assert get_runtime().secrets.get(f"host:{host['name']}:ssh-password") == password


def test_the_ssh_key_never_leaves_the_secret_store(
    cli: Cli, ssh_bed: SshBed, ceso_env: dict[str, str]
) -> None:
    bed = ssh_bed
    name = unique("k")
    result = cli(
        "--json", "vm", "create", name, "--template", bed.template, "--no-power-on", "--timeout", "180"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    bed.shell.configure(faults={"vim-cmd vmsvc/getallvms": {"exit": 1, "stderr": "failed"}})
    failed = cli("--json", "vm", "create", unique("f"), "--template", bed.template, "--timeout", "180")
    assert failed.exit_code == 1
    secret_lines = _key_material(bed.shell.client_key)
    places: dict[str, Any] = {
        "job output": result.stdout + failed.stdout + failed.stderr,
        "sql": _sql_dump(),
        "data dir": _files_text(Path(ceso_env["CESO_DATA_DIR"])),
        "worker log": bed.worker.output(),
        "host log of the shell": bed.shell.log_path.read_text() + bed.shell.sshd_log.read_text(),
    }
    for place, text in places.items():
        for line in secret_lines:
            assert line not in text, f"a line of the private key shows in the {place}"
