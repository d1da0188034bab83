"""Run ``ceso`` in a child Python and report which heavy packages the command imported."""

from __future__ import annotations

import ast
import subprocess
import sys

HEAVY = ("sqlalchemy", "sqlmodel", "alembic", "celery", "kombu", "pyVmomi", "paramiko", "tenacity")

_PROBE = (
    "import atexit, sys\n"
    "heavy = HEAVY_NAMES\n"
    "atexit.register(lambda: print('IMPORTED', sorted({m.split('.')[0] for m in sys.modules} & set(heavy)),"
    " file=sys.stderr))\n"
    "from ceso.cli import main\n"
    "main()\n"
)


def ceso_imports(
    args: list[str], env: dict[str, str], heavy: tuple[str, ...] = HEAVY
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``ceso ARGS``; return the finished process and which of ``heavy`` it imported."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE.replace("HEAVY_NAMES", repr(heavy)), *args],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    line = next(ln for ln in proc.stderr.splitlines() if ln.startswith("IMPORTED "))
    return proc, set(ast.literal_eval(line.removeprefix("IMPORTED ")))
