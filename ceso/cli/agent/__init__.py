"""``ceso agent``: agents, their tokens and their promotions."""

from __future__ import annotations

import click

from ceso.cli.agent.add import add
from ceso.cli.agent.decide import approve, deny, revoke_promotion
from ceso.cli.agent.list import list_, whoami
from ceso.cli.agent.request import request_promotion, requests
from ceso.cli.agent.revoke import revoke


@click.group()
def agent() -> None:
    """Register agents, and ask for, grant and end promotions to a higher mode.

    Modes: read-only (list, info, job status) < standard (create, clone, power,
    snapshots, backups) < admin (delete, hosts, agents, promotions, audit).
    """


for command in (add, list_, revoke, whoami, request_promotion, requests, approve, deny, revoke_promotion):
    agent.add_command(command)
