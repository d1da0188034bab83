"""The SSH route stands without the API route's package: importing it loads nothing of ceso.esxi."""

from __future__ import annotations

import subprocess
import sys


def test_the_ssh_route_imports_nothing_from_the_pyvmomi_package() -> None:
    code = (
        "import sys, ceso.backends.ssh, ceso.backends.routes, ceso.backends.guest, ceso.backends.fake;"
        "print(sorted(m for m in sys.modules if m.startswith('ceso.esxi')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
