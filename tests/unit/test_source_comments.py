"""Docstrings and comments name only files of this repository, and carry no measured figures.

A reference to a file elsewhere (a style guide, another project's source) cannot be followed by
a reader of the repository; a measured figure in a comment goes stale while the code around it
does not change. Figures live in docs/benchmarks.md, which comments may name.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

#: A path-like name with the suffix of a source or documentation file.
FILE_NAME = re.compile(r"(?<![\w/.<-])((?:[\w.-]+/)*[\w-]+(?:\.[\w-]+)*\.(?:py|md|rst|go|c|h|rs|js|ts))\b")
#: An approximate or measured figure: "~25 ms", "~19 MiB", "10x faster", "(measured: 43 -> 0.5 ms)".
FIGURE = re.compile(
    r"~\s?\d[\d.,]*\s?(?:ms|µs|us|s|MiB|GiB|KiB|MB|GB|%|x)\b"
    r"|\b\d+(?:\.\d+)?\s?x (?:faster|slower)\b"
    r"|\bmeasured\b[^.]*\d",
    re.IGNORECASE,
)


def _repo_files() -> set[str]:
    """Every file of the working tree that git does not ignore, relative to the repository."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line for line in out.splitlines() if (REPO / line).exists()}


def _sources(files: set[str], *dirs: str) -> list[Path]:
    return sorted(REPO / f for f in files if f.endswith(".py") and f.startswith(tuple(d + "/" for d in dirs)))


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and every module, class and function docstring."""
    source = path.read_text(encoding="utf-8")
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.body[0].lineno, doc


def test_comments_name_only_files_of_the_repository() -> None:
    files = _repo_files()
    basenames = {name.rpartition("/")[2] for name in files}
    foreign = []
    for path in _sources(files, "ceso", "workers", "tests", "benchmarks", "ops"):
        for line, text in _prose(path):
            for name in FILE_NAME.findall(text):
                known = name in files or any(f.endswith("/" + name) for f in files)
                if not known and not ("/" not in name and name in basenames):
                    foreign.append(f"{path.relative_to(REPO)}:{line}: {name}")
    assert foreign == []


def test_no_measured_figures_in_comments() -> None:
    found: dict[str, list[str]] = {}
    for path in _sources(_repo_files(), "ceso", "workers"):
        rel = path.relative_to(REPO).as_posix()
        for line, text in _prose(path):
            found.setdefault(rel, []).extend(f"{rel}:{line}: {m.group(0)}" for m in FIGURE.finditer(text))
    new = sorted(hit for hits in found.values() for hit in hits)
    assert new == [], "figures belong in docs/benchmarks.md:\n" + "\n".join(new)


def test_the_patterns_catch_what_they_are_for() -> None:
    assert FILE_NAME.findall("cites STYLE.md #3 and libvirt's src/vmx/vmx.c") == ["STYLE.md", "src/vmx/vmx.c"]
    assert FILE_NAME.findall("see ceso.esxi.vmops and <malloc.h>") == []
    hits = [m.group(0) for m in FIGURE.finditer("~25 ms of a start; 10x faster; (measured: 43 -> 0.5 ms)")]
    assert hits[:2] == ["~25 ms", "10x faster"] and hits[2].startswith("measured: 43")
    assert FIGURE.search("every 50 ms; default 30 s; 512 KiB jobs") is None
