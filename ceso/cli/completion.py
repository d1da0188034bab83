"""``ceso completion bash|zsh|fish``: the code that makes a shell complete ceso's words.

Commands and options come from click; names from :mod:`ceso.cli.name_completion`.
"""

from __future__ import annotations

import click

from ceso.cli.name_completion import SHELLS

__all__ = ["completion"]


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the code that makes SHELL complete ceso's commands, options and names.

    \b
    bash:  eval "$(ceso completion bash)"    (in ~/.bashrc)
    zsh:   eval "$(ceso completion zsh)"     (in ~/.zshrc)
    fish:  ceso completion fish > ~/.config/fish/completions/ceso.fish

    Host, template and target names come from the database; VM names from the last
    `ceso vm list` (kept 10 minutes) and the registered templates. A tab never calls a host.
    """
    from click.shell_completion import get_completion_class

    from ceso.cli.root import cli

    cls = get_completion_class(shell)
    assert cls is not None  # every name of SHELLS is one of click's
    click.echo(cls(cli, {}, "ceso", "_CESO_COMPLETE").source())
