"""``ceso audit verify``."""

from __future__ import annotations

import click

from ceso.cli.application import Application, pass_app


@click.command()
@pass_app
def verify(app: Application) -> None:
    """Check the hash chain: report every changed, removed or reordered record (exit 1 if any).

    Keep the head hash it prints somewhere else: it anchors the chain.
    """
    from ceso.audit.verify import verify_chain
    from ceso.errors import CesoError

    report = verify_chain(app.runtime.engine)
    body = report.to_dict()

    def human() -> None:
        head = f"head {report.head_seq} {report.head_hash}"
        if report.ok:
            click.echo(f"audit chain intact: {report.records} records, {head}")
            return
        for problem in report.problems:
            click.echo(f"record {problem.seq}: {problem.problem}: {problem.message}", err=True)
        click.echo(
            f"audit chain BROKEN: {len(report.problems)} problem(s) in {report.records} records, {head}",
            err=True,
        )

    app.emit(body, human)
    if not report.ok:
        raise CesoError(
            f"audit chain broken: {len(report.problems)} problem(s)",
            code="audit_broken",
            details={"reported": True},
        )
