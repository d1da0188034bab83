"""Secret leakage 0: secrets planted through every input path appear in no log, SQL table, Redis key,
process or page of Flower (ops/flower.md: its task list and each task's detail).

Input paths: a host password (stdin of ``host add``), agent tokens (``CESO_AGENT_TOKEN`` for the
CLI, the bearer header for cesod, and wrong tokens that are refused), and userdata holding a
password line and an SSH private key (a file for the CLI, a document for cesod). The VM must
still get that userdata: the secrets are sealed away from SQL, not dropped.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from ceso.cloudinit import decode_guestinfo
from ceso.security.tokens import new_token
from tests.conftest import Cli, unique
from tests.security.helpers import add_agent, as_agent
from tests.support.flower import Flower, flower
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, extra_config, make_template, vm_by_name, vm_names


def _userdata(password: str, key_body: str) -> str:
    return f"""#cloud-config
chpasswd:
  expire: false
  users:
    - name: ubuntu
      password: {password}
      type: text
write_files:
  - path: /root/.ssh/id_ed25519
    permissions: "0600"
    content: |
      -----BEGIN OPENSSH PRIVATE KEY-----
      {key_body}
      -----END OPENSSH PRIVATE KEY-----
"""


def _files_with(secrets: dict[str, str], roots: list[Path]) -> list[str]:
    hits = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                hits += [f"{label} in {path}" for label, s in secrets.items() if s.encode() in data]
    return hits


def _sql_with(secrets: dict[str, str], url: str) -> list[str]:
    engine = sa.create_engine(url)
    hits = []
    with engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            text = "\n".join(repr(tuple(r)) for r in conn.execute(sa.text(f"SELECT * FROM {table}")))
            hits += [f"{label} in table {table}" for label, s in secrets.items() if s in text]
    engine.dispose()
    return hits


def _redis_value(client: redis.Redis, key: bytes) -> Any:
    kind = client.type(key).decode()
    if kind == "string":
        return client.get(key)
    if kind == "list":
        return client.lrange(key, 0, -1)
    if kind == "hash":
        return client.hgetall(key)
    if kind == "set":
        return client.smembers(key)
    if kind == "zset":
        return client.zrange(key, 0, -1, withscores=True)
    return kind


def _redis_with(secrets: dict[str, str], url: str) -> list[str]:
    client = redis.Redis.from_url(url)
    text = "\n".join(repr((key, _redis_value(client, key))) for key in client.scan_iter(count=1000))
    client.close()
    return [f"{label} in Redis" for label, s in secrets.items() if s in text]


def _processes_with(secrets: dict[str, str], environ_of: list[int]) -> list[str]:
    listing = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                listing += Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
    for pid in environ_of:  # our long-lived processes: no secret in their environment either
        listing += Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
    return [f"{label} in the process list" for label, s in secrets.items() if s in listing]


def _flower_with(secrets: dict[str, str], fl: Flower, job_ids: list[str]) -> list[str]:
    """What Flower shows of the jobs: its task list (API and page), each task's detail, the workers."""
    fl.until(
        lambda: all(fl.get("/api/tasks").get(i, {}).get("state") == "SUCCESS" for i in job_ids),
        f"tasks {job_ids} never showed as SUCCESS",
    )
    pages = [repr(fl.get("/api/tasks")), repr(fl.get("/api/workers")), str(fl.get("/tasks"))]
    for job_id in job_ids:
        detail = fl.get(f"/api/task/info/{job_id}")
        assert detail["uuid"] == job_id, detail  # the detail is there to be read
        pages += [repr(detail), str(fl.get(f"/task/{job_id}"))]
    text = "\n".join(pages)
    return [f"{label} in Flower" for label, s in secrets.items() if s in text]


def test_planted_secrets_leak_nowhere(
    cli: Cli,
    sim: SimulatorHost,
    start_worker: Any,
    start_cesod: Any,
    tmp_path: Path,
    monkeypatch: Any,
    ceso_env: dict[str, str],
) -> None:
    mark = uuid.uuid4().hex[:12]
    secrets = {
        "host password": f"HostPw-{mark}-zq",
        "user password": f"UserPw-{mark}-zq",
        "private key": f"b3BlbnNzaC1rZXktdjEAAAAA{mark}PrivKey",
        "wrong token": new_token(),
    }
    inputs = tmp_path / "inputs"  # what the operator typed: not ceso's to keep clean
    inputs.mkdir()
    userdata_file = inputs / "userdata.yaml"
    userdata_file.write_text(_userdata(secrets["user password"], secrets["private key"]))
    outputs: list[str] = []

    host = unique("sechost")
    added = cli(
        "host",
        "add",
        host,
        "--url",
        sim.url,
        "--user",
        "root",
        "--password-stdin",
        input=secrets["host password"] + "\n",
    )
    assert added.exit_code == 0, added.stderr
    si = sim.connect()
    template = unique("sectmpl")
    make_template(si, sim.datastore_dir(), template, b"disk bytes\n" * 100)
    assert cli("template", "add", template, "--host", host).exit_code == 0
    worker = start_worker(host)
    daemon = start_cesod()
    token = add_agent(cli, "sec", "standard")
    secrets["agent token"] = token
    stack = contextlib.ExitStack()  # Flower watches every job, as an operator's would
    fl = stack.enter_context(flower(ceso_env, tmp_path / "flower"))
    try:
        # Its event receiver is connected once a worker answers: no task is missed from then on.
        fl.until(lambda: fl.get("/api/workers?refresh=1"), "no worker answered /api/workers")
        by_cli = unique("seccli")
        result = as_agent(
            cli, monkeypatch, token, "-v", "--json", "vm", "create", by_cli, "--template", template,
            "--userdata", str(userdata_file), "--no-power-on", "--timeout", "120", subprocess_=True,
        )  # fmt: skip
        assert result.exit_code == 0, result.stdout + result.stderr
        outputs += [result.stdout, result.stderr]
        by_rpc = unique("secrpc")
        params = {"name": by_rpc, "template": template, "no_power_on": True, "wait": True, "timeout": 60}
        params["userdata"] = userdata_file.read_text()
        job = daemon.call(token, "vm.create", params, timeout=90)["result"]
        assert job["state"] == "succeeded", job
        assert "$sealed" in str(job["params"]["userdata"])
        for name in (by_cli, by_rpc):  # the guest still gets its password and key
            docs = decode_guestinfo(extra_config(vm_by_name(si, name)))
            assert secrets["user password"] in docs["userdata"] and secrets["private key"] in docs["userdata"]
        wrong = daemon.post({"jsonrpc": "2.0", "id": 1, "method": "job.list"}, token=secrets["wrong token"])
        assert wrong[0] == 401
        refused = as_agent(cli, monkeypatch, secrets["wrong token"], "-v", "job", "list", subprocess_=True)
        assert refused.exit_code == 3
        outputs += [refused.stdout, refused.stderr]
        status = as_agent(cli, monkeypatch, token, "--json", "job", "status", job["id"], subprocess_=True)
        outputs += [status.stdout, status.stderr]
        audit = cli("audit", "export")
        outputs.append(audit.stdout)
        hits = _processes_with(secrets, [daemon.proc.pid, worker.proc.pid])
        hits += _flower_with(secrets, fl, [result.json()["id"], job["id"]])
    finally:
        stack.close()
        for name in set(vm_names(si)) & {
            template,
            *(n for n in vm_names(si) if n.startswith(("seccli-", "secrpc-"))),
        }:
            destroy_vm(si, name)
    daemon.stop()
    assert _files_with(secrets, [inputs]), "the file check finds what is there"
    hits += _files_with(secrets, [p for p in tmp_path.iterdir() if p != inputs] + [sim.log_path])
    hits += _sql_with(secrets, ceso_env["CESO_DATABASE_URL"])
    hits += _redis_with(secrets, ceso_env["CESO_REDIS_URL"])
    hits += [f"{label} in CLI output" for label, s in secrets.items() if any(s in out for out in outputs)]
    assert hits == []
