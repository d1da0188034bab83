"""``ceso host check``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@click.argument("name")
@pass_app
def check(app: Application, name: str) -> None:
    """Log in to host NAME, probe what it allows (license, API writes, SSH) and record it.

    Shows product, API version, datastores, networks, VM count and the
    capabilities that decide each job's route (stored in SQL).
    """
    from ceso.hosts.registry import check_host
    from ceso.jobs.liveness import workers_by_host

    facts = check_host(app.runtime, name)
    facts["workers"] = workers_by_host(app.runtime, [name])[name]

    def human() -> None:
        click.echo(f"{facts['name']}: {facts['product']} (API {facts['api_version']}, {facts['api_type']})")
        click.echo(f"  VMs: {facts['vm_count']}   networks: {', '.join(facts['networks']) or '-'}")
        for ds in facts["datastores"]:
            free, cap = (ds["free_bytes"] or 0) / 2**30, (ds["capacity_bytes"] or 0) / 2**30
            click.echo(f"  datastore {ds['name']} ({ds['type']}): {free:.1f} GiB free of {cap:.1f} GiB")
        caps = facts.get("capabilities") or {}
        editions = ", ".join(lic["name"] for lic in caps.get("license", {}).get("licenses", [])) or "-"
        writes = {True: "allowed", False: "refused", None: "unknown"}[caps.get("api_writes")]
        click.echo(f"  license: {editions}   API writes: {writes} ({caps.get('api_writes_signal')})")
        ssh = caps.get("ssh") or {}
        if ssh.get("configured"):
            tools = ", ".join(t for t, ok in (ssh.get("commands") or {}).items() if ok) or "none"
            state = (
                "logged in" if ssh.get("authenticated") else (ssh.get("error") or {}).get("message", "failed")
            )
            click.echo(f"  ssh: {state}; tools: {tools}   route: {facts.get('route')}")
        else:
            click.echo(f"  ssh: not configured   route: {facts.get('route')}")
        if caps.get("hardware_versions"):
            click.echo(f"  virtual hardware: {', '.join(caps['hardware_versions'])}")
        workers = facts["workers"]
        if workers is None:
            click.echo("  workers: unknown (Redis unreachable)")
        else:
            shown = ", ".join(f"{w['id']} (beat {w['last_beat_s']} s ago)" for w in workers)
            click.echo(f"  workers: {shown or f'none: its jobs wait until `ceso worker --host {name}` runs'}")

    app.emit(facts, human)
