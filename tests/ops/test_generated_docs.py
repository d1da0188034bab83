"""docs/cli.md and docs/configuration.md are generated from the code and must match it."""

from __future__ import annotations

import click
import pytest

from ceso.cli.root import cli
from tests.ops.prom import REPO
from tests.support.scripts import load_script

GENERATORS = {
    "docs/cli.md": REPO / "ops" / "docs" / "gen_cli_reference.py",
    "docs/configuration.md": REPO / "ops" / "docs" / "gen_config_reference.py",
}


@pytest.mark.parametrize("doc", sorted(GENERATORS))
def test_generated_doc_is_up_to_date(doc: str) -> None:
    script = GENERATORS[doc]
    expected = load_script(script).render()
    current = (REPO / doc).read_text(encoding="utf-8")
    assert current == expected, (
        f"{doc} is out of date with the code; regenerate it with "
        f"`.venv/bin/python {script.relative_to(REPO)}` and commit the result"
    )


def _commands(group: click.Group, prefix: str = "ceso") -> list[str]:
    found = []
    for name, command in group.commands.items():
        if command.hidden:
            continue
        found.append(f"{prefix} {name}")
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix} {name}")
    return found


def test_cli_reference_covers_every_command_and_option() -> None:
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    for path in _commands(cli):
        assert f"`{path}`" in text, path
    assert "`--password-stdin`" in text and "`--metrics-port INTEGER RANGE`" in text


def test_configuration_reference_covers_every_setting() -> None:
    from ceso.settings import Settings

    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        if not field.exclude:
            assert f"`{name}`" in text or f"`{name}." in text, name
    assert "`CESO_JOBS__MAX_ATTEMPTS`" in text and "`CESO_REDIS_URL`" in text
