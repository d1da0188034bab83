"""Every ``ceso …`` command line in README.md and docs/*.md parses with the real click tree.

The examples are synopses: ``[--host esxi-a]`` is an optional part, ``on|off`` a choice and
``list | status ID`` several commands on one line. Each is expanded (brackets dropped, the
first choice taken, each command of a line on its own) and handed to click as the CLI would
parse it: every command and option must exist and take the values written. Nothing runs; the
global options' callbacks only set the Application of the parse.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest

from ceso.cli.root import cli

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted(p for p in (REPO / "docs").glob("*.md") if p.name != "cli.md")]
#: Words the examples write for a value, and a value click takes for them.
PLACEHOLDERS = {"SEQ": "1", "ID": "1"}


def _code_lines(text: str) -> list[str]:
    """The command lines of fenced code blocks, continuation lines joined, prompts dropped."""
    lines: list[str] = []
    fenced = False
    pending = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            continue
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        lines.append(line.removeprefix("$ "))
    return lines


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line


def _split_top(line: str, sep: str) -> list[str]:
    """``line`` split on ``sep`` outside brackets and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0 and line.startswith(sep, i):
            parts.append(line[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(line[start:])
    return [p.strip() for p in parts]


def _unbracket(piece: str) -> str:
    """Optional parts' brackets dropped, and of ``[a | b]`` only ``a`` kept; quoted text untouched
    (``'[datastore1] iso/x.iso'`` is a value)."""
    out: list[str] = []
    depth, quote, skip_to = 0, "", -1
    i = 0
    while i < len(piece):
        ch = piece[i]
        if quote:
            quote = "" if ch == quote else quote
            if skip_to < 0:
                out.append(ch)
        elif ch in "'\"":
            quote = ch
            if skip_to < 0:
                out.append(ch)
        elif ch == "[" and (i == 0 or piece[i - 1] in " [") and piece[i + 1 : i + 2] not in ("", " "):
            depth += 1
            if skip_to < 0:
                out.append(" ")
        elif ch == "]" and depth:
            if skip_to == depth:
                skip_to = -1
            depth -= 1
            if skip_to < 0:
                out.append(" ")
        elif depth and skip_to < 0 and piece.startswith(" | ", i):
            skip_to = depth  # the other choices of this optional part
        elif skip_to < 0:
            out.append(ch)
        i += 1
    return "".join(out)


def _words(piece: str) -> list[str]:
    """A synopsis piece as argv: optional brackets dropped, the first of ``a|b`` choices taken."""
    words = []
    tokens = shlex.split(_unbracket(piece))
    while tokens:
        word = tokens.pop(0)
        if word in ("<", ">", "2>"):
            tokens = tokens[1:]  # a shell redirection and its file
            continue
        if "|" in word and not word.startswith("--"):
            word = word.split("|")[0]
        words.append(PLACEHOLDERS.get(word, word))
    while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
        words.pop(0)  # VAR=value before the command
    if words and words[-1] == "&":
        words.pop()
    return words


def examples() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for raw in _code_lines(doc.read_text(encoding="utf-8")):
            line = _strip_comment(raw)
            body = re.sub(r"^([A-Z_]+=\S*\s+)*", "", line)
            if not body.startswith("ceso ") or "─" in body:  # a diagram's box, not a command
                continue
            pieces = _split_top(body, " | ")
            first = _words(pieces[0])
            found.append((f"{doc.name}: {line}", first))
            for piece in pieces[1:]:
                words = _words(piece)
                top = words[0] in cli.list_commands(click.Context(cli))
                found.append(
                    (f"{doc.name}: {line}", ["ceso", *words] if top else [*_group_of(first), *words])
                )
    return found


def _group_of(argv: list[str]) -> list[str]:
    """The words of ``argv`` up to the group of its command (``ceso vm snapshot list x`` → ``ceso vm snapshot``)."""
    group: click.Command = cli
    path = ["ceso"]
    ctx = click.Context(cli)
    for word in argv[1:]:
        if not isinstance(group, click.Group) or word.startswith("-"):
            continue
        sub = group.get_command(ctx, word)
        if sub is None:
            break
        if not isinstance(sub, click.Group):
            break
        path.append(word)
        group = sub
    return path


def parse(argv: list[str]) -> click.Command:
    """Parse ``argv`` (starting with ``ceso``) as the CLI does, down to its command; the command.

    click's UsageError/BadParameter on anything it refuses."""
    assert argv[0] == "ceso", argv
    ctx = cli.make_context("ceso", argv[1:])
    command: click.Command = cli
    args = _rest(ctx)
    while isinstance(command, click.Group):
        if not args:
            raise click.UsageError(f"{ctx.command_path} needs a command", ctx)
        name, sub, rest = command.resolve_command(ctx, args)
        assert sub is not None and name is not None
        ctx = sub.make_context(name, rest, parent=ctx)
        command = sub
        args = _rest(ctx) if isinstance(sub, click.Group) else []
    return command


def _rest(ctx: click.Context) -> list[str]:
    """What a group left for its command (click 8.2 deprecates the attribute that holds part of it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return [*ctx.protected_args, *ctx.args]


ALL = examples()


def test_the_docs_hold_examples() -> None:
    lines = {line for line, _ in ALL}
    assert len(ALL) > 60 and any("vm list" in line for line in lines)


@pytest.mark.parametrize(("line", "argv"), ALL, ids=[f"{i}" for i in range(len(ALL))])
def test_example_parses(line: str, argv: list[str]) -> None:
    try:
        parse(argv)
    except click.ClickException as exc:
        pytest.fail(f"{line}\n  parsed as: {shlex.join(argv)}\n  click: {exc.format_message()}")


def test_a_wrong_example_is_caught() -> None:
    with pytest.raises(click.UsageError):
        parse(["ceso", "vm", "list", "--jason"])
    with pytest.raises(click.UsageError):
        parse(["ceso", "vm", "info"])  # NAME missing
    with pytest.raises(click.UsageError):
        parse(["ceso", "vm", "info", "web-01", "extra"])
