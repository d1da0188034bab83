"""The worker caps glibc's malloc arenas, unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.memory import cap_malloc_arenas

_PROBE = "from workers.memory import cap_malloc_arenas; print(cap_malloc_arenas())"


def test_the_cap_applies_on_glibc() -> None:
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "True"


def test_an_operators_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert cap_malloc_arenas() is False
