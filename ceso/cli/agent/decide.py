"""``ceso agent approve``, ``deny`` and ``revoke-promotion``: an operator's decisions."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


def _show(app: Application, promo: dict[str, object], verb: str) -> None:
    until = f" until {promo['expires_at']}" if promo.get("expires_at") and verb == "approved" else ""
    app.emit(
        promo,
        lambda: click.echo(
            f"promotion {promo['id']} of agent {promo['agent']} to {promo['mode']}: {verb}{until}"
        ),
    )


@click.command()
@click.argument("request_id", metavar="ID", type=int)
@click.option(
    "--for", "for_", metavar="DURATION", help="Grant this long instead of what was asked (e.g. 15m)."
)
@pass_app
def approve(app: Application, request_id: int, for_: str | None) -> None:
    """Approve promotion request ID, from now for what was asked (or --for); capped by the configured max."""
    from ceso.security.durations import parse_duration
    from ceso.security.promotions import approve_promotion, promotion_to_dict

    seconds = parse_duration(for_) if for_ else None
    _show(
        app,
        promotion_to_dict(approve_promotion(app.runtime, request_id, app.principal, seconds=seconds)),
        "approved",
    )


@click.command()
@click.argument("request_id", metavar="ID", type=int)
@pass_app
def deny(app: Application, request_id: int) -> None:
    """Deny pending promotion request ID."""
    from ceso.security.promotions import deny_promotion, promotion_to_dict

    _show(app, promotion_to_dict(deny_promotion(app.runtime, request_id, app.principal)), "denied")


@click.command("revoke-promotion")
@click.argument("request_id", metavar="ID", type=int)
@pass_app
def revoke_promotion(app: Application, request_id: int) -> None:
    """End approved promotion ID now (jobs of the agent still queued are then judged in its own mode)."""
    from ceso.security.promotions import promotion_to_dict
    from ceso.security.promotions import revoke_promotion as revoke

    _show(app, promotion_to_dict(revoke(app.runtime, request_id, app.principal)), "revoked")
