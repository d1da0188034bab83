"""Sandbox test fixtures: the VM tests' template bed (``start_cesod`` lives in tests/conftest.py)."""

from __future__ import annotations

from tests.vm.conftest import bed  # noqa: F401  (re-exported fixture)
