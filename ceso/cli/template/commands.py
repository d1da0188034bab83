"""``ceso template add/list/validate/remove`` (small, read-mostly commands kept together)."""

from __future__ import annotations

from typing import Any

import click

from ceso.cli.application import Application, pass_app


def _show(app: Application, t: dict[str, Any]) -> None:
    def human() -> None:
        click.echo(f"template {t['name']} on {t['host']}: {t['status']}")
        for c in t["checks"]:
            click.echo(f"  {c['result']:<11} {c['check']}: {c['detail']}")

    app.emit(t, human)


@click.command()
@click.argument("vm")
@click.option("--host", required=True, help="The host the VM is on.")
@pass_app
def add(app: Application, vm: str, host: str) -> None:
    """Register powered-off VM as a template and validate it."""
    from ceso.vm.templates import add_template, template_to_dict

    _show(app, template_to_dict(add_template(app.runtime, vm, host)))


@click.command("list")
@click.option("--host", help="Only templates on this host.")
@pass_app
def list_(app: Application, host: str | None) -> None:
    """List templates and their validation status."""
    from sqlmodel import Session

    from ceso.vm.templates import list_templates, template_to_dict

    with Session(app.runtime.engine) as session:
        rows = [template_to_dict(t) for t in list_templates(session, host)]
    app.emit(
        rows,
        lambda: app.table(
            ["name", "host", "status", "validated"],
            [[r["name"], r["host"], r["status"], r["validated_at"]] for r in rows],
        ),
    )


@click.command()
@click.argument("name")
@click.option("--host", help="Host of the template (optional when the name is unique).")
@pass_app
def validate(app: Application, name: str, host: str | None) -> None:
    """Check a template again (powered off, no snapshots, thin disks, vmxnet3, Linux, tools, firmware).

    Exits 1 when a check failed.
    """
    from ceso.errors import CesoError
    from ceso.vm.templates import template_to_dict, validate_template

    row = template_to_dict(validate_template(app.runtime, name, host))
    _show(app, row)
    if row["status"] == "failed":
        raise CesoError(
            f"template {name} failed validation", code="template_invalid", details={"reported": True}
        )


@click.command()
@click.argument("name")
@click.option("--host", help="Host of the template (optional when the name is unique).")
@pass_app
def remove(app: Application, name: str, host: str | None) -> None:
    """Forget a template (the VM is not touched)."""
    from ceso.vm.templates import remove_template

    t = remove_template(app.runtime, name, host)
    app.emit(
        {"name": t.name, "host": t.host, "removed": True}, lambda: click.echo(f"template {t.name} removed")
    )
