"""Packaging: the declared license is shipped, and the source distribution carries the docs,
the example configuration and the recipes an operator installs from."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_the_declared_license_is_the_shipped_one() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text


def test_the_sdist_manifest_names_docs_configs_and_recipes() -> None:
    manifest = (REPO / "MANIFEST.in").read_text().splitlines()
    assert "include LICENSE README.md docker-compose.yml Dockerfile .env.example" in manifest
    assert "recursive-include docs *.md" in manifest and "recursive-include configs *.yaml" in manifest
    (ops,) = [line for line in manifest if line.startswith("recursive-include ops ")]
    for pattern in ("*.service", "*.example", "*.yml", "*.json", "*.sh"):
        assert pattern in ops.split()
    # Every file those patterns name exists (a rename would silently drop it from the sdist).
    for recipe in (
        "ops/systemd/ceso-worker@.service",
        "ops/systemd/ceso.env.example",
        "ops/prometheus/alerts.yml",
    ):
        assert (REPO / recipe).is_file(), recipe
