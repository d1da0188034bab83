"""Write ceso/cli/fast_args_spec.py, the argument table of the CLI's fast path, from the click commands.

    .venv/bin/python ops/dev/gen_fast_args_spec.py          # rewrite the table
    .venv/bin/python ops/dev/gen_fast_args_spec.py --check  # exit 1 if it is out of date

:mod:`ceso.cli.fast_args` parses the commands cesod can run (``ceso.cli.via_cesod.FORWARDED``)
without click, from this table. tests/cli/test_fast_args.py regenerates it in memory and fails
when the committed file differs: after changing an option of a forwarded command, run the first
line above. A parameter the fast parser cannot reproduce exactly (a callback, a prompt, an
environment variable, a type it does not know) stops the generator with an error, so a new kind of
option is never parsed differently from click.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "ceso" / "cli" / "fast_args_spec.py"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "ops" / "docs"))  # _generated, also when loaded by a test

import click
from _generated import generate

from ceso.cli.options import Seconds
from ceso.cli.root import cli
from ceso.cli.via_cesod import FORWARDED
from ceso.security.operations import operation_for_command

HEADER = '''\
"""The argument table of the CLI's fast path (:mod:`ceso.cli.fast_args`).

Generated from the click commands by ``ops/dev/gen_fast_args_spec.py``; do not edit by hand.

``ROOT``: the ``ceso`` group's options the fast path accepts, and the environment variable of
``--config``. ``COMMANDS``: per command path, its operation, its positional arguments
(name and type, in order), the options that must be given, click's value for every option not
given, and each option string as (parameter, kind, type or flag value): kind ``value``,
``multiple`` (repeatable; a tuple), ``pairs`` (repeatable, two values each; a tuple of pairs)
or ``flag`` (the value it sets).
"""

from __future__ import annotations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing: the fast path is timed
if TYPE_CHECKING:
    from typing import Any

'''


class UnsupportedError(Exception):
    """A parameter the fast parser cannot reproduce exactly."""


def _type(param: click.Parameter) -> tuple[Any, ...]:
    t = param.type
    if type(t) is click.types.StringParamType:
        return ("str",)
    if type(t) is click.types.IntParamType:
        return ("int",)
    if type(t) is click.types.FloatParamType:
        return ("float",)
    if type(t) in (click.FloatRange, Seconds) and not t.clamp:  # the fast parser declines nan and inf
        return ("float_range", t.min, t.max, t.min_open, t.max_open)
    if type(t) is click.Choice and all(isinstance(c, str) for c in t.choices):
        return ("choice", tuple(t.choices))
    if (
        type(t) is click.Path
        and not t.exists
        and t.file_okay
        and t.readable
        and not t.writable
        and not t.executable
        and not t.resolve_path
        and not t.allow_dash
        and t.type is None
    ):
        return ("path", t.dir_okay)
    raise UnsupportedError(f"{param.name}: type {t!r}")


def _check_plain(param: click.Parameter) -> None:
    pairs = isinstance(param, click.Option) and param.multiple and param.nargs == 2  # --disk-grow DISK SIZE
    if (
        param.callback is not None
        or param.is_eager
        or param.envvar
        or (param.nargs != 1 and not pairs)
        or not param.expose_value
    ):
        raise UnsupportedError(f"{param.name}: callback, eager, envvar, nargs or hidden value")
    if isinstance(param, click.Option) and (param.prompt or param.count or param.deprecated):
        raise UnsupportedError(f"{param.name}: prompt, count or deprecated")


def _options(command: click.Command) -> dict[str, tuple[Any, ...]]:
    table: dict[str, tuple[Any, ...]] = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        _check_plain(param)
        if param.is_flag:
            if not param.is_bool_flag:  # a flag that sets some other value
                raise UnsupportedError(f"{param.name}: flag value {param.flag_value!r}")
            table.update({opt: (param.name, "flag", True) for opt in param.opts})
            table.update({opt: (param.name, "flag", False) for opt in param.secondary_opts})
        else:
            kind = ("pairs" if param.nargs == 2 else "multiple") if param.multiple else "value"
            table.update({opt: (param.name, kind, _type(param)) for opt in param.opts + param.secondary_opts})
    return dict(sorted(table.items()))


def _defaults(command: click.Command, name: str) -> dict[str, Any]:
    """click's value of every option left out: parse the least valid command line."""
    args: list[str] = []
    for param in command.params:
        if isinstance(param, click.Argument):
            choices = getattr(param.type, "choices", None)
            args.append(str(choices[0]) if choices else "x")
        elif param.required:
            args += [param.opts[0], "x"]
    ctx = command.make_context(name, args)
    given = {p.name for p in command.params if isinstance(p, click.Argument) or p.required}
    return {key: value for key, value in sorted(ctx.params.items()) if key not in given}


def _command(words: tuple[str, ...]) -> click.Command:
    ctx = click.Context(cli)
    command: click.Command | None = cli
    for word in words:
        assert isinstance(command, click.Group)
        command = command.get_command(ctx, word)
    assert command is not None, words
    return command


def spec() -> tuple[dict[str, Any], dict[tuple[str, ...], dict[str, Any]]]:
    """``(ROOT, COMMANDS)`` from the click commands; UnsupportedError for a parameter the table cannot hold."""
    root_params = {p.name: p for p in cli.params}
    config, json_flag = root_params["config"], root_params["json_output"]
    assert isinstance(config, click.Option) and isinstance(json_flag, click.Option)
    if config.envvar is None or config.callback or json_flag.callback or not json_flag.is_flag:
        raise UnsupportedError("the ceso group's --config/--json changed")
    root = {
        "config_envvar": config.envvar,
        "options": {"--config": ("config", "value", _type(config)), "--json": ("json_output", "flag", True)},
    }
    commands: dict[tuple[str, ...], dict[str, Any]] = {}
    for operation in sorted(FORWARDED):
        words = tuple(operation.split("."))
        if operation_for_command(list(words)).name != operation:
            raise UnsupportedError(f"`ceso {' '.join(words)}` is not operation {operation}")
        command = _command(words)
        arguments = []
        for param in command.params:
            if isinstance(param, click.Argument):
                _check_plain(param)
                if not param.required:
                    raise UnsupportedError(f"{param.name}: optional argument")
                arguments.append((param.name, _type(param)))
        commands[words] = {
            "operation": operation,
            "arguments": arguments,
            "required": sorted(p.name for p in command.params if isinstance(p, click.Option) and p.required),
            "defaults": _defaults(command, words[-1]),
            "options": _options(command),
        }
    return root, commands


def _literal(value: Any, indent: int) -> str:  # noqa: PLR0911  (one return per kind of value)
    """``value`` as Python source in ruff's format (one item a line in dicts and lists)."""
    pad = "    " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = "".join(f"{pad}    {_literal(k, 0)}: {_literal(v, indent + 1)},\n" for k, v in value.items())
        return "{\n" + items + pad + "}"
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v, indent) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + "".join(f"{pad}    {_literal(v, indent + 1)},\n" for v in value) + pad + "]"
    if isinstance(value, str):
        assert value.isascii() and value.isprintable() and "\\" not in value, value
        return json.dumps(value)
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    raise UnsupportedError(f"cannot write {value!r}")


def render() -> str:
    root, commands = spec()
    return (
        HEADER
        + f"ROOT: dict[str, Any] = {_literal(root, 0)}\n\n"
        + f"COMMANDS: dict[tuple[str, ...], dict[str, Any]] = {_literal(commands, 0)}\n"
    )


if __name__ == "__main__":
    sys.exit(
        generate(OUTPUT, render, description=__doc__.splitlines()[0], script="ops/dev/gen_fast_args_spec.py")
    )
