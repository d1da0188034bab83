"""The two-machine installation of docs/operations.md, run as written.

Machine A (scheduler, cesod, the operator's CLI) and machine B (the host's worker and a standby
scheduler) run the guide's blocks exactly, each in a mount namespace of its own
(:mod:`tests.support.machines`), sharing PostgreSQL, Redis and the simulated ESXi host on
loopback. The units they enable are started as systemd would: ExecStart, EnvironmentFile and
LoadCredential read from the installed unit files. The test's only own edits: the guide's example
addresses become the test's services, the schedule fires every minute instead of at 02:00, and
each machine's listeners take free ports (through the optional per-service environment files).

Then: a scheduled backup runs on machine B and verifies; a create with userdata, an encrypted
backup and its restore, submitted on A, run on B; killing A's beat makes B's fire the next slot;
every slot fires once; the host password is nowhere in SQL, Redis or the logs in plaintext.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import REPO, _truncate, unique
from tests.support.machines import Machine, guide_blocks
from tests.support.simulator import SimulatorHost
from tests.support.vms import destroy_vm, make_template, vm_by_name, vm_names
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

PASSWORD = "esxi-a-pw-canary-0c41e7"
USERDATA_CANARY = "deploy-userdata-canary-9b2d"
GUIDE = REPO / "docs" / "operations.md"


@pytest.fixture
def machines(tmp_path: Path) -> Iterator[tuple[Machine, Machine]]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to give each machine its own /etc/ceso")
    nfs = {"/srv/ceso-backups": tmp_path / "nfs-export"}  # the backup target both machines mount
    a, b = Machine("a", tmp_path / "machines", nfs), Machine("b", tmp_path / "machines", nfs)
    yield a, b
    a.stop_all()
    b.stop_all()


# A job of this test can queue behind the every-minute scheduled backups (two worker slots, one
# of them waiting for the VM lock of the previous slot's backup) on a loaded machine.
@pytest.mark.timeout(900)
def test_the_two_machine_guide_runs_as_written(
    machines: tuple[Machine, Machine], pg_database: str, redis_url: str, sim: SimulatorHost
) -> None:
    a, b = machines
    _truncate(pg_database)  # a new installation's database: nothing left by earlier tests
    si = sim.connect()
    before = set(vm_names(si))
    vm = unique("web")
    payload = os.urandom(256 * 1024) + b"\0" * 65536
    make_template(si, sim.datastore_dir(), vm, payload)
    examples = {
        "postgresql://ceso@db.example.com/ceso": pg_database,
        "redis://redis.example.com:6379/0": redis_url,
        "https://esxi-a.example.com": sim.url,
        '"0 2 * * *"': '"* * * * *"',
        "web-01": vm,
    }
    blocks = guide_blocks(GUIDE.read_text())
    assert set(blocks) == {"every machine", "machine A", "machine B"}, set(blocks)

    def guide(name: str) -> str:
        text = blocks[name]
        for example, real in examples.items():
            text = text.replace(example, real)
        return text

    def run(machine: Machine, script: str) -> str:
        proc = machine.run(script, cwd=REPO)
        assert proc.returncode == 0, f"machine {machine.name}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout

    try:
        for machine in (a, b):
            run(machine, guide("every machine"))
        a.file("/root/esxi-a.password").write_text(PASSWORD + "\n")
        a.file("/etc/ceso/cesod.env").write_text(
            "CESO_CESOD__LISTEN=127.0.0.1:0\nCESO_METRICS__CESOD_PORT=0\n"
        )
        run(a, guide("machine A"))
        assert a.start_enabled() == ["ceso-beat", "cesod"]
        wait_for("A's beat to lead", lambda: "leading: 1 schedule(s)" in a.log("ceso-beat"), 60)
        wait_for("A's cesod", lambda: "listening on http://127.0.0.1:" in a.log("cesod"), 60)
        b.file("/etc/ceso/worker-esxi-a.env").write_text("CESO_METRICS__WORKER_PORT=0\n")
        run(b, guide("machine B"))
        assert b.start_enabled() == ["ceso-worker@esxi-a", "ceso-beat"]
        wait_for("B's worker", lambda: " ready." in b.log("ceso-worker@esxi-a"), 90)
        wait_for("B's beat to stand by", lambda: "standing by" in b.log("ceso-beat"), 60)
        worker_pid = b.processes["ceso-worker@esxi-a"].pid

        def on_b(worker: str) -> bool:
            """A job's ``worker`` (host:pid of the prefork child) is a child of B's worker."""
            status = Path(f"/proc/{worker.rsplit(':', 1)[1]}/status").read_text()
            return f"\nPPid:\t{worker_pid}\n" in status

        engine = sa.create_engine(pg_database)

        def fires() -> list[Any]:
            with engine.connect() as conn:
                return list(
                    conn.execute(
                        sa.text("SELECT slot, leader, state, job_ids FROM schedule_fires ORDER BY slot")
                    )
                )

        def job(job_id: str) -> Any:
            with engine.connect() as conn:
                return conn.execute(
                    sa.text("SELECT state, worker FROM jobs WHERE id = :i"), {"i": job_id}
                ).one()

        # 1. The schedule fires on A and its backup job runs on B.
        first = wait_for(
            "the first scheduled backup", lambda: [f for f in fires() if f.state == "done"], 100
        )[0]
        (backup_job,) = first.job_ids
        done = wait_for(
            "its job",
            lambda: job(backup_job) if job(backup_job).state in ("succeeded", "failed") else None,
            120,
        )
        assert done.state == "succeeded" and on_b(done.worker), done

        # 2. On A, as the operator: verify it; a create with userdata, an encrypted backup and a
        #    restore, all run by machine B's worker.
        as_ceso = next(line for line in guide("machine A").splitlines() if line.startswith("as_ceso()"))
        a.file("/root/user-data").write_text(f"#cloud-config\nruncmd:\n  - echo {USERDATA_CANARY}\n")
        created, restored = unique("made"), unique("back")
        out = run(
            a,
            as_ceso
            + f"""
as_ceso /opt/ceso/bin/ceso --json backup list --vm {vm}
id=$(as_ceso /opt/ceso/bin/ceso --json backup list --vm {vm} | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
as_ceso /opt/ceso/bin/ceso backup verify "$id"
as_ceso /opt/ceso/bin/ceso template add {vm} --host esxi-a
as_ceso /opt/ceso/bin/ceso vm create {created} --template {vm} --ip 192.0.2.50/24 --userdata /root/user-data --timeout 300
made=$(as_ceso /opt/ceso/bin/ceso --json backup create {created} --encrypt --timeout 300) || {{ echo "$made"; exit 1; }}
enc=$(echo "$made" | python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["backup_id"])')
as_ceso /opt/ceso/bin/ceso backup restore "$enc" --as {restored} --ip 192.0.2.51/24 --timeout 300
as_ceso /opt/ceso/bin/ceso --json job list --limit 20
""",
        )
        assert "verified" in out
        from ceso.cloudinit.encoding import decode_guestinfo
        from tests.support.vms import extra_config

        assert USERDATA_CANARY in decode_guestinfo(extra_config(vm_by_name(si, created)))["userdata"]
        (flat,) = (sim.datastore_dir() / restored).glob("*-flat.vmdk")
        assert flat.read_bytes() == payload  # the restored disk holds the template's bytes
        with engine.connect() as conn:
            workers = {
                row.worker
                for row in conn.execute(sa.text("SELECT worker FROM jobs WHERE worker IS NOT NULL"))
            }
        assert workers and all(on_b(w) for w in workers), workers

        # 3. A's beat dies; B's takes the lead and fires the next slot.
        holder_a = re.search(r"ceso beat \((beat@[^)]+)\)", a.log("ceso-beat")).group(1)  # type: ignore[union-attr]
        a.kill("ceso-beat")
        wait_for("B's beat to lead", lambda: "leading: 1 schedule(s)" in b.log("ceso-beat"), 60)
        holder_b = re.search(r"ceso beat \((beat@[^)]+)\)", b.log("ceso-beat")).group(1)  # type: ignore[union-attr]
        last = wait_for(
            "a slot fired by B",
            lambda: [f for f in fires() if f.leader == holder_b and f.state == "done"],
            100,
        )
        assert last and first.leader == holder_a
        slots = [f.slot for f in fires()]
        assert len(slots) == len(set(slots)) and all(
            (y - x).total_seconds() == 60 for x, y in itertools.pairwise(slots)
        )

        # 4. The host password is in no table, no Redis key and no log in plaintext.
        with engine.connect() as conn:
            tables = [t for t in sa.inspect(conn).get_table_names()]
            dump = "\n".join(
                repr(tuple(r)) for t in tables for r in conn.execute(sa.text(f'SELECT * FROM "{t}"'))
            )
        import redis

        client = redis.Redis.from_url(redis_url)
        keys = "\n".join(repr((k, client.dump(k))) for k in client.scan_iter())
        logs = "\n".join(m.log(u) for m in (a, b) for u in m.processes)
        for where, text in {"SQL": dump, "Redis": keys, "logs": logs}.items():
            assert PASSWORD not in text and USERDATA_CANARY not in text, where
        engine.dispose()
    finally:
        a.stop_all()
        b.stop_all()
        for name in set(vm_names(si)) - before:
            destroy_vm(si, name)
        _truncate(pg_database)
