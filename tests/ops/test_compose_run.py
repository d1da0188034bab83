"""docker-compose.yml's ceso services, run as written: no Docker engine runs here, so each
service is a process in a mount namespace of its own (:mod:`tests.support.machines`) with what
its container would have: the compose file's resolved ``command`` and ``environment``, the image's
entry point (``ops/docker/entrypoint.sh``), the secrets made by the commands ``.env.example``
lists, mounted at ``/run/secrets``, and the shared ``ceso-data`` volume at ``/var/lib/ceso``. The
compose network's host names (``postgres``, ``redis``, ``esxi-sim-a``) become the test's services
on loopback; that is the only rewrite.

Then the demo's host registration, a job on the worker, the beat, and an agent calling cesod over
HTTPS with the certificate that ``.env.example``'s openssl command made, pinned.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import REPO, _truncate
from tests.ops.test_compose import ENV_EXAMPLE, compose
from tests.support.machines import Machine
from tests.support.simulator import SimulatorHost
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

ENTRYPOINT = REPO / "ops" / "docker" / "entrypoint.sh"


def _secret_commands() -> str:
    """The commands .env.example (and the compose file's header) give to make ./secrets."""
    lines = [
        line.removeprefix("#   ") for line in ENV_EXAMPLE.read_text().splitlines() if line.startswith("#   ")
    ]
    script = "\n".join(lines)
    assert "install -d -m 0700 secrets" in script and "secrets/ceso_master_key" in script
    return script


def test_the_ceso_services_run_as_the_compose_file_says(
    tmp_path: Path, pg_database: str, redis_url: str, sim: SimulatorHost
) -> None:
    _truncate(pg_database)  # a new installation's database: nothing left by earlier tests
    project = tmp_path / "project"
    project.mkdir()
    made = subprocess.run(
        ["bash", "-euc", _secret_commands()], cwd=project, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    secrets = project / "secrets"
    resolved = json.loads(
        json.dumps(__import__("yaml").safe_load(compose("--profile", "demo", "config").stdout))
    )
    services = resolved["services"]
    network = {
        "postgresql://ceso@postgres:5432/ceso": pg_database,
        "redis://redis:6379/0": redis_url,
        "http://esxi-sim-$h:8989/sdk": sim.url,  # the demo's registration loop names both simulators so
    }

    def on_loopback(text: str) -> str:
        for name, real in network.items():
            text = text.replace(name, real)
        return text

    def env_of(service: str) -> dict[str, str]:
        # The image's PATH starts with its virtualenv; here, the test's.
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/var/lib/ceso"}
        env |= {
            key: on_loopback(str(value)) for key, value in services[service].get("environment", {}).items()
        }
        env.pop("PGPASSWORD_FILE", None)  # the test's PostgreSQL trusts loopback
        env["XDG_RUNTIME_DIR"] = str(tmp_path / f"run-{service}")
        Path(env["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
        return env

    def container(service: str) -> Machine:
        return Machine(
            service,
            tmp_path / "containers",
            shared={"/var/lib/ceso": tmp_path / "ceso-data", "/run/secrets": secrets},
            mounts={},
        )

    def argv_of(service: str) -> list[str]:
        return [
            str(ENTRYPOINT),
            *(on_loopback(str(a).replace("$$", "$")) for a in services[service]["command"]),
        ]

    def run_once(service: str, argv: list[str] | None = None) -> str:
        box = container(service)
        box.start(service, argv or argv_of(service), env_of(service))
        proc = box.processes[service]
        assert proc.wait(timeout=120) == 0, box.log(service)
        return box.log(service)

    boxes: list[Machine] = []
    try:
        run_once("migrate")
        listed = run_once("demo-hosts")
        assert "esxi-a" in listed and "esxi-b" in listed, listed
        for service in ("worker-esxi-a", "beat", "cesod"):
            box = container(service)
            box.start(service, argv_of(service), env_of(service))
            boxes.append(box)
        worker, beat, cesod = boxes
        wait_for("the worker", lambda: " ready." in worker.log("worker-esxi-a"), 90)
        wait_for("the beat", lambda: "leading: 0 schedule(s)" in beat.log("beat"), 60)
        wait_for("cesod", lambda: "listening on https://0.0.0.0:8470/rpc" in cesod.log("cesod"), 60)
        # A job through the stack: `docker compose run --rm migrate ceso host ping esxi-a`.
        pinged = run_once(
            "migrate", [str(ENTRYPOINT), "ceso", "--json", "host", "ping", "esxi-a", "--timeout", "60"]
        )
        assert json.loads(pinged[pinged.index("{") :])["state"] == "succeeded", pinged
        # The host password went to SQL, encrypted under the master key .env.example made.
        engine = sa.create_engine(pg_database)
        with engine.connect() as conn:
            names = set(conn.execute(sa.text("SELECT name FROM secrets")).scalars())
            assert {"host:esxi-a:password", "host:esxi-b:password"} <= names
        engine.dispose()
        # An agent pins the self-signed certificate and calls cesod over HTTPS.
        added = run_once(
            "migrate", [str(ENTRYPOINT), "ceso", "--json", "agent", "add", "bot", "--mode", "read-only"]
        )
        token = json.loads(added[added.index("{") :])["token"]
        context = ssl.create_default_context(cafile=str(secrets / "cesod_tls_cert"))
        conn = http.client.HTTPSConnection("127.0.0.1", 8470, timeout=30, context=context)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "job.list", "params": {}})
        conn.request(
            "POST",
            "/rpc",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        answer = json.loads(conn.getresponse().read())
        conn.close()
        assert any(job["kind"] == "host.ping" for job in answer["result"]), answer
    finally:
        for box in boxes:
            box.stop_all()
        _truncate(pg_database)


def test_the_secret_commands_make_what_the_services_need(tmp_path: Path) -> None:
    made = subprocess.run(
        ["bash", "-euc", _secret_commands()], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    from ceso.cesod.tls import server_context
    from ceso.master_key import load_master_keys

    secrets = tmp_path / "secrets"
    assert (secrets.stat().st_mode & 0o777) == 0o700
    server_context(secrets / "cesod_tls_cert", secrets / "cesod_tls_key")
    assert re.fullmatch(r"ops:[0-9a-f]{24}\n", (secrets / "flower_basic_auth").read_text())
    (secrets / "ceso_master_key").chmod(0o600)
    assert len(load_master_keys(secrets / "ceso_master_key", tmp_path).keys) == 1
