"""``ceso agent request-promotion`` (as an agent) and ``ceso agent requests`` (as an operator)."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command("request-promotion")
@click.option("--mode", type=click.Choice(["standard", "admin"]), required=True, help="The mode wanted.")
@click.option("--for", "for_", metavar="DURATION", help="How long, e.g. 30m or 2h (default: configured).")
@click.option("--reason", required=True, help="What the promotion is for (shown to the operator).")
@pass_app
def request_promotion(app: Application, mode: str, for_: str | None, reason: str) -> None:
    """Ask an operator for a higher mode for a while (run with CESO_AGENT_TOKEN set)."""
    from ceso.security.durations import parse_duration
    from ceso.security.promotions import promotion_to_dict
    from ceso.security.promotions import request_promotion as request

    seconds = parse_duration(for_) if for_ else None
    promo = promotion_to_dict(request(app.runtime, app.principal, mode=mode, seconds=seconds, reason=reason))
    app.emit(
        promo,
        lambda: click.echo(
            f"promotion request {promo['id']}: {promo['mode']} for {promo['for']} is pending; "
            f"an operator approves it with `ceso agent approve {promo['id']}`"
        ),
    )


@click.command()
@click.option("--all", "all_", is_flag=True, help="Also decided, expired and revoked requests.")
@click.option("--agent", "agent_name", metavar="NAME", help="Only this agent's requests.")
@pass_app
def requests(app: Application, all_: bool, agent_name: str | None) -> None:
    """List promotion requests (pending ones by default), newest first."""
    from sqlmodel import Session

    from ceso.security.promotions import list_promotions, promotion_to_dict

    with Session(app.runtime.engine) as session:
        rows = [
            promotion_to_dict(p) for p in list_promotions(session, pending_only=not all_, agent=agent_name)
        ]
    app.emit(
        rows,
        lambda: app.table(
            ["id", "agent", "mode", "for", "state", "reason", "requested", "expires"],
            [
                [
                    r["id"],
                    r["agent"],
                    r["mode"],
                    r["for"],
                    r["state"],
                    r["reason"],
                    r["requested_at"],
                    r["expires_at"],
                ]
                for r in rows
            ],
        ),
    )
