"""Opt-in for the chaos suite: every test under tests/chaos/ is marked ``chaos``.

Locally the suite is deselected unless ``CESO_CHAOS=1`` (it is slow and injects faults);
under ``CI=true`` it always runs, so CI never passes without it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.vm.conftest import bed  # noqa: F401  (a template and a worker on the simulator)

_HERE = Path(__file__).parent


def chaos_enabled() -> bool:
    """True under CI or when the operator asks for the chaos suite."""
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("CESO_CHAOS") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chaos = [item for item in items if _HERE in Path(str(item.path)).parents]
    for item in chaos:
        item.add_marker(pytest.mark.chaos)
    if chaos and not chaos_enabled():
        chosen = set(chaos)
        config.hook.pytest_deselected(items=chaos)
        items[:] = [item for item in items if item not in chosen]
