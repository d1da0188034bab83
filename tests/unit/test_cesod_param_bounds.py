"""Every value cesod takes in is bounded: each integer or number param of a cesod method has a
minimum and a maximum, and every spec string field a ``max_length``."""

from __future__ import annotations

from ceso.cesod.methods import METHODS
from ceso.specs import MAX_STRING, Spec


def test_every_numeric_param_has_both_bounds() -> None:
    unbounded = [
        f"{name}.{param}"
        for name, method in METHODS.items()
        for param, spec in method.params.items()
        if spec.type in ("integer", "number") and (spec.minimum is None or spec.maximum is None)
    ]
    assert unbounded == []


def test_every_spec_string_is_bounded() -> None:
    # Each spec's numbers are bounded by their fields or validators (tests/chaos/test_cesod_hostile.py
    # sends them 400-digit integers); its strings by this default unless a field says otherwise.
    assert Spec.model_config.get("str_max_length") == MAX_STRING
