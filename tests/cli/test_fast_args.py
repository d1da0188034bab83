"""The fast path's parser gives exactly what click gives, or declines; its table is current.

:func:`ceso.cli.fast_args.parse_forwarded` stands in for click on the commands a local cesod
runs. What click makes of an argument list is read where the CLI itself hands it on: the
sandbox check passes the parsed parameters to :func:`ceso.cli.via_cesod.forward`, which these
tests replace with a recorder. For every argument list, the fast parser's answer must equal
that record, or be None (click then parses it, and prints its own errors and help).
"""

from __future__ import annotations

import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from ceso.cli import fast_args_spec
from ceso.cli.echo import echo
from ceso.cli.fast_args import parse_forwarded
from ceso.cli.root import invoke
from tests.ops.prom import REPO
from tests.support.scripts import load_script

GENERATOR = REPO / "ops" / "dev" / "gen_fast_args_spec.py"


def test_the_table_is_generated_from_the_current_click_commands() -> None:
    expected = load_script(GENERATOR).render()
    assert Path(fast_args_spec.__file__).read_text(encoding="utf-8") == expected, (
        "ceso/cli/fast_args_spec.py is out of date; regenerate it with "
        "`.venv/bin/python ops/dev/gen_fast_args_spec.py` and commit the result"
    )


def test_the_generator_refuses_an_option_it_cannot_reproduce() -> None:
    generator = load_script(GENERATOR)
    command = click.Command(
        "x",
        params=[
            click.Option(["--size"], callback=lambda ctx, param, value: value),
            click.Option(["--level"], type=click.IntRange(1, 9)),
            click.Option(["--token"], envvar="TOKEN"),
        ],
    )
    for param in command.params:
        with pytest.raises(generator.UnsupportedError):
            generator._options(click.Command("x", params=[param]))


@pytest.fixture
def click_parse(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``args`` → what click hands the fast path (root params, operation, params), or None if
    click refuses the arguments or does not reach a forwarded command (help, a usage error)."""
    import ceso.cli.via_cesod as via_cesod

    seen: list[tuple[dict[str, Any], str, dict[str, Any]]] = []

    def record(app: Any, operation: str, params: dict[str, Any]) -> bool:
        if app.dry_run or app.verbose:
            return False  # not forwarded: the command would run in-process
        seen.append(({"config": app.config, "json_output": app.json_output}, operation, params))
        return True

    monkeypatch.setattr(via_cesod, "forward", record)

    def parse(args: list[str]) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
        seen.clear()
        try:
            invoke(list(args), json_output="--json" in args)
        except SystemExit:
            pass
        except Exception as exc:  # the command body ran: it was not forwarded
            del exc
        capsys.readouterr()
        return seen[0] if seen else None

    return parse


def _plain_cases(readable: str) -> list[list[str]]:
    """Argument lists in the plain forms the fast parser must take itself."""
    cases: list[list[str]] = []
    for words, spec in fast_args_spec.COMMANDS.items():
        positional = [
            type_[1][0] if type_[0] == "choice" else f"v{i}" for i, (_, type_) in enumerate(spec["arguments"])
        ]
        required = [arg for opt, (dest, _, _) in spec["options"].items() if dest in spec["required"]
                    for arg in (opt, "t1")]  # fmt: skip
        base = [*words, *positional, *required]
        cases += [
            base,
            ["--json", *base],
            ["--config", readable, *base],
            [f"--config={readable}", "--json", *base],
        ]
        for opt, (_, kind, type_) in spec["options"].items():
            if kind == "flag":
                cases.append([*base, opt])
                continue
            if kind == "pairs":
                cases += [[*base, opt, "1", "40G"], [*base, opt, "1", "40G", opt, "Hard disk 2", "100G"],
                          [*words, opt, "a=b", "2T", *positional, *required]]  # fmt: skip
                continue
            value = {"str": "val", "int": "3", "float": "2.5", "float_range": "7.5", "path": readable}.get(
                type_[0], type_[1][-1] if type_[0] == "choice" else "x"
            )
            cases += [
                [*base, opt, value],
                [*base, f"{opt}={value}"],
                [*words, opt, value, *positional, *required],
            ]
            if kind == "multiple":
                cases.append([*base, opt, value, opt, "second,third"])
            else:
                cases.append([*base, opt, "first", opt, value])
    return cases


def test_plain_argument_lists_parse_exactly_as_click_parses_them(click_parse: Any, tmp_path: Path) -> None:
    readable = tmp_path / "file.yaml"
    readable.write_text("#cloud-config\n")
    cases = _plain_cases(str(readable))
    assert len(cases) > 200
    for args in cases:
        expected = click_parse(args)
        if expected is None:  # click refuses it (an int option given "val"): the fast parser must too
            assert parse_forwarded(args) is None, args
            continue
        assert parse_forwarded(args) == expected, args


TRICKY = [
    ["vm", "create", "n", "--template", "t", "--help"],
    ["vm", "create", "--help"],
    ["--help"],
    ["--version"],
    ["--dry-run", "vm", "create", "n", "--template", "t"],
    ["-v", "vm", "create", "n", "--template", "t"],
    ["vm", "create", "n"],  # --template is required
    ["vm", "create", "--template", "t"],  # no NAME
    ["vm", "create", "n", "extra", "--template", "t"],
    ["vm", "create", "n", "--template"],
    ["vm", "create", "n", "--template", "--json"],  # click takes "--json" as the value
    ["vm", "create", "n", "--template", "t", "--json"],  # --json after the command: a usage error
    ["vm", "create", "n", "--templ", "t"],  # click does not take abbreviations
    ["vm", "create", "n", "--template", "t", "--"],
    ["vm", "create", "--", "-n", "--template", "t"],
    ["vm", "create", "-", "--template", "t"],
    ["vm", "create", "", "--template", "t"],
    ["vm", "create", "n", "--template", ""],
    ["vm", "create", "n", "--template=", "--ip", ""],
    ["vm", "create", "n", "--template", "t", "--cpus", "abc"],
    ["vm", "create", "n", "--template", "t", "--cpus", " 4 "],
    ["vm", "create", "n", "--template", "t", "--cpus", "\u0664"],  # an Arabic-Indic 4: int() takes it
    ["vm", "create", "n", "--template", "t", "--cpus", "1_000"],
    ["vm", "create", "n", "--template", "t", "--cpus", "-2"],
    ["vm", "create", "n", "--template", "t", "--cpus=-2"],
    ["vm", "create", "n", "--template", "t", "--timeout", "-1"],
    ["vm", "create", "n", "--template", "t", "--timeout=-1"],
    ["vm", "create", "n", "--template", "t", "--timeout", "nan"],
    ["vm", "create", "n", "--template", "t", "--timeout", "inf"],
    ["vm", "create", "n", "--template", "t", "--timeout", "1e3"],
    ["vm", "create", "n", "--template", "t", "--timeout", "0"],
    ["vm", "create", "n", "--template", "t", "--wait-ip-timeout", "0.5"],
    ["vm", "create", "n", "--template", "t", "--wait-ip-timeout", "1"],
    ["vm", "create", "n", "--template", "t", "--wait-ip=yes"],
    ["vm", "create", "n", "--template", "t", "--no-wait", "--wait"],
    ["vm", "create", "n", "--template", "t", "--userdata", "/"],  # a directory
    ["vm", "create", "n", "--template", "t", "--userdata", "/no/such/file"],
    ["vm", "create", "n", "--template", "t", "--userdata", "/etc/shadow"],  # unreadable unless root
    ["vm", "create", "n", "--template", "t", "-x"],
    ["vm", "create", "n\x1b[31m", "--template", "t"],
    ["vm", "power", "ON", "n"],
    ["vm", "power", "hibernate", "n"],
    ["vm", "power", "reboot", "n", "--timeout-guest", "10"],
    ["vm", "delete", "n", "-y"],
    ["vm", "delete", "n", "-yf"],
    ["vm", "delete", "n", "-y=1"],
    ["vm", "delete", "n", "--yes", "--force"],
    ["backup", "create", "vm1", "--hot", "--cold"],
    ["backup", "create", "vm1", "--compress", "ZSTD"],
    ["backup", "create", "vm1", "--level", "3", "--encrypt"],
    ["backup", "restore", "abc", "--as", "new", "--in-place"],
    ["backup", "key", "show"],
    ["vm", "reconfigure", "n", "--disk-grow=1", "40G"],
    ["vm", "reconfigure", "n", "--disk-grow", "1"],
    ["vm", "reconfigure", "n", "--disk-grow", "1", "-5G"],
    ["vm", "reconfigure", "n", "--disk-grow", "1", "40G", "--cpus", "4", "--eject-iso"],
    ["vm", "snapshot", "create", "n", "s1", "--memory", "--description", "before upgrade"],
    ["vm", "snapshot", "revert", "n"],
    ["vm", "snapshot", "delete", "n", "s1", "--children"],
    ["vm", "snapshot", "list", "n"],
    ["vm", "list"],
    ["vm", "reconfigure", "n", "--cpus", "2"],
    ["vm", "reconfigure", "n", "--nic", "x"],
    ["--config", "/", "vm", "create", "n", "--template", "t"],
    ["--config", "/no/such.yaml", "vm", "create", "n", "--template", "t"],
    ["--json", "--json", "vm", "create", "n", "--template", "t"],
    ["--json=1", "vm", "create", "n", "--template", "t"],
    ["vm", "--json", "create", "n", "--template", "t"],
]


@pytest.mark.parametrize("args", TRICKY, ids=lambda a: " ".join(a)[:60])
def test_unusual_argument_lists_are_parsed_as_click_does_or_declined(
    click_parse: Any, args: list[str]
) -> None:
    fast = parse_forwarded(args)
    if fast is not None:
        assert fast == click_parse(args)


@pytest.mark.parametrize("config_env", ["", "/no/such.yaml", "/"])
def test_the_config_variable_is_read_as_click_reads_it(
    click_parse: Any, monkeypatch: pytest.MonkeyPatch, config_env: str
) -> None:
    monkeypatch.setenv("CESO_CONFIG", config_env)
    for args in (
        ["vm", "delete", "n", "--yes"],
        ["--config", "/tmp/other.yaml", "vm", "delete", "n", "--yes"],
    ):
        fast = parse_forwarded(args)
        if fast is not None:
            assert fast == click_parse(args), args
    if config_env != "/":
        assert parse_forwarded(["vm", "delete", "n", "--yes"]) is not None


def test_random_argument_lists_are_parsed_as_click_does_or_declined(click_parse: Any) -> None:
    pool = [
        "vm", "create", "clone", "power", "delete", "backup", "restore", "on", "reset", "n1", "n2", "--template",
        "t", "--host", "h", "--cpus", "2", "x", "--memory", "4G", "--ip", "192.0.2.5/24", "--dns", "--search",
        "--wait", "--no-wait", "--timeout", "-1", "5", "--json", "--yes", "-y", "--force", "--hot", "--cold",
        "--as", "--level", "--compress", "gzip", "--timeout-guest", "--ssh-key", "--in-place", "--", "=",
        "--cpus=3", "--timeout=2", "--dry-run", "--config", "--wait-ip-timeout", "0.5", "1e9",
    ]  # fmt: skip
    rng = random.Random(20261126)
    taken = 0
    for _ in range(1500):
        head = rng.choice([["vm", "create", "n1", "--template", "t"], ["vm", "power", "on", "n1"],
                           ["vm", "delete", "n1"], ["backup", "create", "n1"], ["vm", "clone", "n1", "n2"], []])  # fmt: skip
        args = head + [rng.choice(pool) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.3:
            args = ["--json", *args]
        fast = parse_forwarded(args)
        if fast is not None:
            taken += 1
            assert fast == click_parse(args), args
    assert taken > 100  # the fast parser is not declining everything


class _Stream(io.TextIOWrapper):
    def isatty(self) -> bool:
        return False


@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "latin-1"])
@pytest.mark.parametrize("message", ["job 1 succeeded", "naïve ✓", "\x1b[31mred\x1b[0m", ""])
@pytest.mark.parametrize("err", [False, True])
def test_echo_writes_what_click_echo_writes(
    monkeypatch: pytest.MonkeyPatch, encoding: str, message: str, err: bool
) -> None:
    written = []
    for writer in (echo, click.echo):
        raw = io.BytesIO()
        stream = _Stream(raw, encoding=encoding, errors="strict")
        monkeypatch.setattr(sys, "stderr" if err else "stdout", stream)
        try:
            writer(message, err=err)
            stream.flush()
            written.append(("ok", raw.getvalue()))
        except UnicodeEncodeError as exc:
            written.append(("error", str(exc).encode()))
    assert written[0] == written[1]


@pytest.mark.parametrize(
    "args",
    [
        ["vm", "create", "n", "--template", "t", "--timeout", "nan"],
        ["vm", "create", "n", "--template", "t", "--wait-ip", "--wait-ip-timeout", "inf"],
        ["job", "wait", "0123abcd", "--timeout", "inf"],
        ["backup", "create", "vm1", "--timeout=NaN"],
    ],
)
def test_a_timeout_must_be_a_finite_number_of_seconds(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    # A deadline of nan never comes, and a socket refuses it as a timeout: a usage error before anything.
    from ceso.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["--json", *args])
    assert exited.value.code == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["code"] == "usage" and "finite number of seconds" in error["message"], error
