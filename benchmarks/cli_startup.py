"""Benchmark how fast the ``ceso`` process starts and answers, and show what its imports cost.

What it measures, and why: agents poll ``ceso --json job status ID`` in loops and people type
``ceso --help``; both must feel instant, so their whole-process wall time (fork/exec to exit) is
what counts. Each command runs ``--repeat`` times, interleaved with ``python -c pass`` from the
same interpreter (the floor no Python CLI can beat) and with bare imports of SQLAlchemy and
SQLModel (what ``job status`` pays for its SQL layer before any query), after one warm-up run
each (bytecode cache in a temporary PYTHONPYCACHEPREFIX). The job is a real row in a temporary
SQLite database.

Then one ``python -X importtime`` run of each command lists the packages it imports, by
cumulative import time (a package's figure includes what it imports itself; importtime adds a
little overhead), with the first ceso module on the import chain, so it is clear what to cut.

Run: .venv/bin/python benchmarks/cli_startup.py [--repeat 20] [--top 12]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

sys.dont_write_bytecode = True  # before importing our own modules: no __pycache__ in the repo

from _support import CESO, ceso_env, log, median, percentile, print_table, run_timed  # noqa: E402

TARGETS = {"ceso --help": 0.15, "ceso --json job status ID": 0.3}
#: Packages kept out of quick commands (celery, SQL, pyVmomi, paramiko...), plus other known-heavy ones.
HEAVY = ["sqlmodel", "sqlalchemy", "alembic", "celery", "kombu", "pyVmomi", "pydantic", "rich", "paramiko",
         "prometheus_client", "cryptography", "redis", "yaml", "keyring"]  # fmt: skip


def make_job(env: dict[str, str]) -> str:
    """Create one queued job in the temporary database (in a child, with the benchmark's env)."""
    code = (
        "from ceso.db.engine import get_engine; from ceso.db.migrate import ensure_schema;"
        "from ceso.jobs.store import create_job; from ceso.settings import get_settings;"
        "e = get_engine(get_settings().database_url); ensure_schema(e);"
        "j, _ = create_job(e, kind='host.ping', host='bench', target=None, params={}, actor='bench',"
        " idempotency_key=None, max_attempts=3); print(j.id)"
    )
    return run_timed([sys.executable, "-c", code], env)[1].strip()


@dataclass
class Node:
    module: str
    cumulative_us: int
    children: list[Node] = field(default_factory=list)


_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def import_tree(cmd: list[str], env: dict[str, str]) -> list[Node]:
    """Top-level import nodes of one ``-X importtime`` run (its output is in post-order)."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *cmd], capture_output=True, text=True, env=env, check=False
    )
    pending: dict[int, list[Node]] = {}
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        depth = (len(m.group(3)) - 1) // 2
        node = Node(m.group(4), int(m.group(2)), pending.pop(depth + 1, []))
        pending.setdefault(depth, []).append(node)
    return pending.get(0, [])


def third_party_packages(roots: list[Node]) -> dict[str, tuple[int, str]]:
    """Per third-party package: (cumulative µs of its outermost imports, first ceso importer).

    A top-level node seen after ``ceso.cli`` was imported is an import inside a function, made
    while the command ran.
    """
    found: dict[str, tuple[int, str]] = {}

    def walk(node: Node, parent_pkg: str, via: str) -> None:
        pkg = node.module.split(".")[0]
        if pkg == "ceso":
            via = node.module
        elif pkg != parent_pkg and pkg not in sys.stdlib_module_names and not pkg.startswith("_"):
            cost, first = found.get(pkg, (0, via))  # the outermost import of pkg on this chain
            found[pkg] = (cost + node.cumulative_us, first)
        for child in node.children:
            walk(child, pkg, via)

    cli_loaded = False
    for root in roots:
        walk(root, "", f"(in a function: import {root.module})" if cli_loaded else "(interpreter startup)")
        cli_loaded = cli_loaded or root.module.startswith("ceso.cli")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--top", type=int, default=12, help="packages listed per command")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ceso-bench-") as tmp:
        env = ceso_env(Path(tmp))
        job_id = make_job(env)
        commands = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "ceso --help": [str(CESO), "--help"],
            "ceso --json job status ID": [str(CESO), "--json", "job", "status", job_id],
            # References for what job status could cost: its SQL layer's imports alone.
            "python -c 'import sqlalchemy'": [sys.executable, "-c", "import sqlalchemy"],
            "python -c 'import sqlmodel'": [sys.executable, "-c", "import sqlmodel"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():
            run_timed(cmd, env)  # warm-up: fills the bytecode cache
        log(f"timing {len(commands)} commands x {args.repeat}, interleaved")
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                times[name].append(run_timed(cmd, env)[0])
        log("import profiles")
        trees = {name: import_tree(cmd[1:] if cmd[0] == sys.executable else cmd, env)
                 for name, cmd in commands.items() if name in TARGETS}  # fmt: skip

    base = median(times["python -c pass (baseline)"])
    rows = []
    for name, sample in times.items():
        med = median(sample)
        target = TARGETS.get(name)
        verdict = "-" if target is None else f"< {target:.2f} s: {'met' if med < target else 'MISSED'}"
        rows.append([name, f"{med:.3f}", f"{percentile(sample, 90):.3f}", f"{min(sample):.3f}",
                     f"{med / base:.1f}x", f"{med - base:+.3f}", verdict])  # fmt: skip
    print_table(
        f"whole-process wall time, {args.repeat} runs each (s)",
        ["command", "median", "p90", "min", "/ baseline", "minus baseline", "target"],
        rows,
    )
    for name, roots in trees.items():
        found = third_party_packages(roots)
        top = sorted(((p, v) for p, v in found.items() if v[0] >= 500), key=lambda kv: -kv[1][0])[: args.top]
        print_table(
            f"{name}: third-party packages by cumulative import time (one -X importtime run)",
            ["package", "ms", "first imported under"],
            [[pkg, f"{us / 1000:.1f}", via] for pkg, (us, via) in top],
        )
        print("\nheavy packages imported: " + (", ".join(p for p in HEAVY if p in found) or "none"))


if __name__ == "__main__":
    main()
