"""Write docs/cli.md, the reference of every ``ceso`` command, from the Click commands themselves.

    .venv/bin/python ops/docs/gen_cli_reference.py          # rewrite docs/cli.md
    .venv/bin/python ops/docs/gen_cli_reference.py --check  # exit 1 if docs/cli.md is out of date

tests/ops/test_generated_docs.py regenerates the text in memory and fails when the committed
file differs, so the reference cannot drift from the code: after adding or changing a command,
run the first line above.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "docs" / "cli.md"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # _generated, also when loaded by a test

import click
from _generated import generate

from ceso.cli.global_options import is_global
from ceso.cli.root import cli

HEADER = """\
# ceso command reference

Generated from the Click commands by `ops/docs/gen_cli_reference.py`; do not edit by hand
(run `.venv/bin/python ops/docs/gen_cli_reference.py` after changing a command). `ceso COMMAND
--help` prints the same text.

Global options (`--config`, `--json`, `--dry-run`, `--progress`, `--verbose`) are listed once, under `ceso`;
every command takes them, before or after its name: `ceso --json vm list` or `ceso vm list --json`.
"""


def _paragraphs(text: str | None) -> str:
    """Click's help text as Markdown: ``\\b`` blocks stay as written, other paragraphs are joined."""
    if not text:
        return ""
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        if lines and lines[0].strip() == "\b":
            out.append("\n".join(line.rstrip() for line in lines[1:]))
        else:
            out.append(" ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _command(command: click.Command, ctx: click.Context, level: int) -> list[str]:
    lines = [f"{'#' * level} `{ctx.command_path}`", ""]
    pieces = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```", f"{ctx.command_path} {pieces}".rstrip(), "```", ""]
    if help_text := _paragraphs(command.help):
        lines += [help_text, ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    if arguments:
        names = ", ".join(
            f"`{p.human_readable_name}`" + ("" if p.required else " (optional)") for p in arguments
        )
        lines += [f"Arguments: {names}", ""]
    options = [
        rec
        for p in command.params
        if isinstance(p, click.Option)
        and (ctx.parent is None or not is_global(p))
        and (rec := p.get_help_record(ctx)) is not None
    ]
    if options:
        lines += ["| option | description |", "|---|---|"]
        lines += [f"| `{_escape(opts)}` | {_escape(text)} |" for opts, text in options]
        lines.append("")
    if command.epilog:
        lines += [_paragraphs(command.epilog), ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            lines += _command(sub, click.Context(sub, info_name=name, parent=ctx), level + 1)
    return lines


def render() -> str:
    """The whole of docs/cli.md."""
    ctx = click.Context(cli, info_name="ceso")
    return HEADER + "\n" + "\n".join(_command(cli, ctx, 2)).rstrip() + "\n"


def main() -> int:
    return generate(
        OUTPUT,
        render,
        description="Write docs/cli.md from the Click commands.",
        script="ops/docs/gen_cli_reference.py",
    )


if __name__ == "__main__":
    sys.exit(main())
