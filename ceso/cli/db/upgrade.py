"""``ceso db upgrade``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.option("--revision", default="heads", show_default=True, help="Target revision.")
@pass_app
def upgrade(app: Application, revision: str) -> None:
    """Create or upgrade the database schema to the newest (or a given) revision."""
    from ceso.db.engine import get_engine
    from ceso.db.migrate import current_revision
    from ceso.db.migrate import upgrade as run_upgrade

    settings = app.runtime.settings
    engine = get_engine(settings.database_url)
    before = current_revision(engine)
    if not app.dry_run:
        run_upgrade(engine, revision)
    after = current_revision(engine)
    url = engine.url.render_as_string(hide_password=True)
    app.emit(
        {"database": url, "from": before, "to": after, "dry_run": app.dry_run},
        lambda: click.echo(f"{url}: schema {before or 'empty'} -> {after or 'empty'}"),
    )
