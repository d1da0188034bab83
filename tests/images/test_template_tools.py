"""The tools check of a template: a VM that never booted reports no tools; an imported image's
declaration (recorded as an extraConfig option) stands in for them, and nothing else does."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ceso.vm.templates import IMAGE_TOOLS_KEY, evaluate_template


def _tools(extra: list[Any], status: str = "toolsNotInstalled", version: int = 0) -> dict[str, Any]:
    props = {"guest.toolsStatus": status, "config.tools.toolsVersion": version, "config.extraConfig": extra}
    (check,) = [c for c in evaluate_template(props) if c["check"] == "vmware_tools_installed"]
    return check


def test_an_imported_image_that_declares_tools_passes_and_one_that_does_not_fails() -> None:
    declared = _tools([SimpleNamespace(key=IMAGE_TOOLS_KEY, value="2147483647")])
    assert declared["result"] == "passed" and "guest-managed" in declared["detail"]
    assert _tools([SimpleNamespace(key="ceso.image.toolsversion", value="12352")])["result"] == "passed"
    assert _tools([])["result"] == "failed"
    assert _tools([SimpleNamespace(key=IMAGE_TOOLS_KEY, value="not-a-number")])["result"] == "failed"
    assert _tools([], status="toolsOk", version=12352)["result"] == "passed"
