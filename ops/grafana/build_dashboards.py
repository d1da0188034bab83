"""Build ceso's Grafana dashboards (ops/grafana/dashboards/*.json) from the panel tables below.

    .venv/bin/python ops/grafana/build_dashboards.py          # rewrite the JSON files
    .venv/bin/python ops/grafana/build_dashboards.py --check  # exit 1 if they are out of date

The JSON files are committed and provisioned into Grafana by
ops/grafana/provisioning/dashboards/ceso.yml. tests/ops/test_dashboards.py checks that the
files match this script, that every query parses in a real Prometheus, and that every query
returns data after a real workload. Queries may use only the variables Grafana fills in and
that the test knows: ``$__rate_interval``, ``$__range``, ``$host`` and ``$agent``. The
Prometheus data source is itself a variable (``$datasource``, defaulting to the provisioned one),
so the dashboards import into a Grafana whose Prometheus has another uid.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
PROVISIONED_UID = "ceso-prometheus"  # provisioning/datasources/prometheus.yml
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# The success criteria of the product (docs/architecture.md):
# create <= 90 s, clone of an 80 GB thin VM <= 300 s, backup of 100 GB < 600 s.
CRITERIA = (("vm.create", 90), ("vm.clone", 300), ("backup.create", 600))

H = 'host=~"$host"'


@dataclass
class Target:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass
class Panel:
    title: str
    description: str
    targets: list[Target]
    kind: str = "timeseries"  # timeseries, stat, table, bargauge
    unit: str = "short"
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float, str]] = field(default_factory=list)
    threshold_lines: bool = False
    decimals: int | None = None


@dataclass
class Row:
    title: str


def quantile(q: float, metric: str, by: str, selector: str) -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[$__rate_interval])))"
    )


def within_criterion(kind: str, seconds: int) -> str:
    sel = f'kind="{kind}", outcome="succeeded", {H}'
    return (
        f'sum(increase(ceso_job_duration_seconds_bucket{{{sel}, le="{seconds:.1f}"}}[$__range]))'
        f" / sum(increase(ceso_job_duration_seconds_count{{{sel}}}[$__range]))"
    )


OPERATIONS: list[Panel | Row] = [
    Row("Jobs"),
    Panel(
        "Jobs by state",
        "Jobs in SQL by state on the selected hosts, computed at scrape time (max over exporters: "
        "every worker reports the same table).",
        [
            Target(
                f"sum by (state) (max by (state, host) (ceso_jobs_in_state{{{H}}}))",
                "{{state}}",
                instant=True,
            )
        ],
        kind="stat",
        width=8,
    ),
    Panel(
        "Job outcomes per minute",
        "Jobs that reached an outcome, by kind and outcome.",
        [
            Target(
                f"sum by (kind, outcome) (rate(ceso_jobs_total{{{H}}}[$__rate_interval])) * 60",
                "{{kind}} {{outcome}}",
            )
        ],
        width=8,
    ),
    Panel(
        "Failure ratio by kind",
        "Failed jobs as a share of all finished jobs of a kind (alert CesoJobFailureRate: > 10 %).",
        [
            Target(
                f'sum by (kind) (rate(ceso_jobs_total{{outcome="failed", {H}}}[$__rate_interval]))'
                f" / sum by (kind) (rate(ceso_jobs_total{{{H}}}[$__rate_interval]))",
                "{{kind}}",
            )
        ],
        unit="percentunit",
        width=8,
        thresholds=[(0.1, "red")],
        threshold_lines=True,
    ),
    Panel(
        "Jobs finished in the time range",
        "Outcomes of the selected range by kind and host.",
        [
            Target(
                f"sum by (kind, host, outcome) (increase(ceso_jobs_total{{{H}}}[$__range]))",
                instant=True,
            )
        ],
        kind="table",
        width=24,
        decimals=0,
    ),
    Row("Durations against the success criteria"),
    Panel(
        "Job duration p95 and p50 by kind",
        "Successful jobs from claim to outcome. Lines: the success criteria, create 90 s, "
        "clone 300 s, backup 600 s.",
        [
            Target(
                quantile(0.95, "ceso_job_duration_seconds", "kind", f'outcome="succeeded", {H}'),
                "p95 {{kind}}",
            ),
            Target(
                quantile(0.5, "ceso_job_duration_seconds", "kind", f'outcome="succeeded", {H}'),
                "p50 {{kind}}",
            ),
        ],
        unit="s",
        width=12,
        thresholds=[(90, "orange"), (300, "red"), (600, "purple")],
        threshold_lines=True,
    ),
    Panel(
        "Within the success criterion",
        "Share of successful jobs of the range that finished within their criterion.",
        [Target(within_criterion(kind, s), f"{kind} within {s} s", instant=True) for kind, s in CRITERIA],
        kind="stat",
        unit="percentunit",
        width=6,
        thresholds=[(0.0, "red"), (0.99, "green")],
    ),
    Panel(
        "Queue wait p95 by kind",
        "Time from submit to claim: how long jobs wait for a worker.",
        [Target(quantile(0.95, "ceso_job_queue_wait_seconds", "kind", H), "{{kind}}")],
        unit="s",
        width=6,
    ),
    Row("Queues, locks and workers"),
    Panel(
        "Queue depth per host",
        "Job messages waiting in each host's Redis queue (alerts CesoQueueNotDraining, CesoQueueHigh).",
        [Target(f"max by (host) (ceso_queue_depth{{{H}}})", "{{host}}")],
        width=10,
    ),
    Panel(
        "Lock wait p95 by kind",
        "Time jobs waited for their VM and datastore locks (alert CesoLockWaitsHigh: > 60 s).",
        [Target(quantile(0.95, "ceso_lock_wait_seconds", "kind", H), "{{kind}}")],
        unit="s",
        width=8,
    ),
    Panel(
        "Workers up by host",
        "1 when Prometheus scraped a worker of the host, 0 when none answers (alert CesoWorkerDown). "
        "A worker names its hosts in ceso_worker_host; the last hour's names keep a dead worker's "
        "hosts on the panel.",
        [
            Target(
                'max by (host) (up{job="ceso-workers"} * on (instance, job) group_right '
                f"last_over_time(ceso_worker_host{{{H}}}[1h]))",
                "{{host}}",
                instant=True,
            )
        ],
        kind="stat",
        width=6,
        thresholds=[(0, "red"), (1, "green")],
    ),
    Row("Backups"),
    Panel(
        "Backup throughput",
        "Bytes per second read from hosts and stored on targets, by host, target and stage.",
        [
            Target(
                f"sum by (host, target, stage) (rate(ceso_backup_bytes_total{{{H}}}[$__rate_interval]))",
                "{{host}} {{target}} {{stage}}",
            )
        ],
        unit="Bps",
        width=12,
    ),
    Panel(
        "Age of the last good backup per VM",
        "Time since each protected VM's last successful backup (alert CesoBackupMissing: over 26 h).",
        [
            Target(
                f"time() - max by (vm, host) (ceso_last_successful_backup_timestamp_seconds{{{H}}})",
                "{{vm}} ({{host}})",
                instant=True,
            )
        ],
        kind="bargauge",
        unit="s",
        width=12,
        thresholds=[(0, "green"), (24 * 3600, "orange"), (26 * 3600, "red")],
    ),
    Panel(
        "Age of the last passed restore drill per VM",
        "Time since each drilled VM last passed a restore drill (`backup drill`; a VM whose every drill "
        "failed shows its age since 1970; alert CesoNoSuccessfulDrill: over 8 days).",
        [
            Target(
                f"time() - max by (vm, host) (ceso_last_successful_drill_timestamp_seconds{{{H}}})",
                "{{vm}} ({{host}})",
                instant=True,
            )
        ],
        kind="bargauge",
        unit="s",
        width=12,
        thresholds=[(0, "green"), (7 * 86400, "orange"), (8 * 86400, "red")],
    ),
    Panel(
        "Restore drills by outcome",
        "Restore drills of the range by outcome (passed, failed), from the catalog.",
        [
            Target(
                f"sum by (outcome) (increase(ceso_backup_drills_total{{{H}}}[$__range]))",
                "{{outcome}}",
                instant=True,
            )
        ],
        kind="stat",
        width=12,
        decimals=0,
    ),
    Panel(
        "Backup jobs by outcome",
        "Backup, restore and prune jobs of the range by kind and outcome (alert CesoBackupFailed).",
        [
            Target(
                f'sum by (kind, outcome) (increase(ceso_jobs_total{{kind=~"backup[.].*", {H}}}[$__range]))',
                "{{kind}} {{outcome}}",
                instant=True,
            )
        ],
        kind="stat",
        width=24,
        height=5,
        decimals=0,
    ),
    Row("ESXi API"),
    Panel(
        "vSphere request latency p95 by method",
        "Duration of single vSphere API requests.",
        [Target(quantile(0.95, "ceso_esxi_request_duration_seconds", "method", H), "{{method}}")],
        unit="s",
        width=9,
    ),
    Panel(
        "vSphere faults per minute",
        "Failed vSphere requests by host and fault (alert CesoEsxiApiErrors).",
        [
            Target(
                f"sum by (host, fault) (rate(ceso_esxi_errors_total{{{H}}}[$__rate_interval])) * 60",
                "{{host}} {{fault}}",
            )
        ],
        width=9,
    ),
    Panel(
        "vSphere sessions and logins",
        "Open pooled sessions per host, and logins (login, relogin) in each interval.",
        [
            Target(f"sum by (host) (ceso_esxi_sessions{{{H}}})", "sessions {{host}}"),
            Target(
                f"sum by (host, event) (increase(ceso_esxi_logins_total{{{H}}}[$__rate_interval]))",
                "{{event}} {{host}}",
            ),
        ],
        width=6,
    ),
]

A = 'agent=~"$agent"'

AGENTS: list[Panel | Row] = [
    Row("Operations"),
    Panel(
        "Operations per minute by agent and mode",
        "Operations agents attempted, by agent and sandbox mode.",
        [
            Target(
                f"sum by (agent, mode) (rate(ceso_agent_operations_total{{{A}}}[$__rate_interval])) * 60",
                "{{agent}} ({{mode}})",
            )
        ],
        width=12,
    ),
    Panel(
        "Operations in the time range",
        "By agent, mode, operation and outcome.",
        [
            Target(
                f"sum by (agent, mode, operation, outcome) (increase(ceso_agent_operations_total{{{A}}}[$__range]))",
                instant=True,
            )
        ],
        kind="table",
        width=12,
        decimals=0,
    ),
    Row("Refusals and promotions"),
    Panel(
        "Refused operations per minute",
        "Operations the sandbox refused, by agent, mode and operation (alert CesoAgentRefusalsSpiking).",
        [
            Target(
                f'sum by (agent, mode, operation) (rate(ceso_agent_operations_total{{outcome="refused", {A}}}[$__rate_interval])) * 60',
                "{{agent}} ({{mode}}) {{operation}}",
            )
        ],
        width=10,
    ),
    Panel(
        "Refusal ratio by agent",
        "Refused operations as a share of all of an agent's operations.",
        [
            Target(
                f'sum by (agent) (rate(ceso_agent_operations_total{{outcome="refused", {A}}}[$__rate_interval]))'
                f" / sum by (agent) (rate(ceso_agent_operations_total{{{A}}}[$__rate_interval]))",
                "{{agent}}",
            )
        ],
        unit="percentunit",
        width=7,
    ),
    Panel(
        "Active promotions",
        "Promotions approved by an operator and not yet expired.",
        [Target("max without (instance, job) (ceso_promotions_active)", "active", instant=True)],
        kind="stat",
        width=7,
        thresholds=[(0, "green"), (1, "orange")],
    ),
]


def _datasource_variable() -> dict[str, Any]:
    """The Prometheus data source, chosen in Grafana; the provisioned one by default."""
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {"selected": True, "text": "Prometheus", "value": PROVISIONED_UID},
        "hide": 0,
        "refresh": 1,
        "includeAll": False,
        "multi": False,
        "regex": "",
    }


def _variable(name: str, label: str, metric: str) -> dict[str, Any]:
    query = f"label_values({metric}, {name})"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-values"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _panel_json(panel: Panel, pid: int, x: int, y: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in panel.thresholds]
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": {"mode": "absolute", "steps": steps}}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    options: dict[str, Any] = {}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 10,
            "showPoints": "never",
            "thresholdsStyle": {"mode": "line" if panel.threshold_lines else "off"},
        }
        options = {
            "legend": {
                "displayMode": "table",
                "placement": "bottom",
                "showLegend": True,
                "calcs": ["lastNotNull", "max"],
            },
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    elif panel.kind in ("stat", "bargauge"):
        defaults["color"] = {"mode": "thresholds"}
        options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
        if panel.kind == "bargauge":
            options |= {"orientation": "horizontal", "displayMode": "gradient"}
    else:  # table
        options = {"showHeader": True}
    body: dict[str, Any] = {
        "id": pid,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DATASOURCE,
                "expr": t.expr,
                "legendFormat": t.legend or "__auto",
                "instant": t.instant,
                "range": not t.instant,
                **({"format": "table"} if panel.kind == "table" else {}),
            }
            for i, t in enumerate(panel.targets)
        ],
    }
    if panel.kind == "table":
        body["transformations"] = [{"id": "organize", "options": {"excludeByName": {"Time": True}}}]
    return body


def dashboard(
    uid: str, title: str, description: str, items: list[Panel | Row], variables: list[dict[str, Any]]
) -> dict[str, Any]:
    """The dashboard JSON of ``items``, laid out left to right in a 24-column grid."""
    panels: list[dict[str, Any]] = []
    x = y = row_height = 0
    for pid, item in enumerate(items, start=1):
        if isinstance(item, Row):
            y += row_height if x else 0
            panels.append(
                {
                    "id": pid,
                    "type": "row",
                    "title": item.title,
                    "collapsed": False,
                    "panels": [],
                    "gridPos": {"x": 0, "y": y, "w": 24, "h": 1},
                }
            )
            x, y, row_height = 0, y + 1, 0
            continue
        if x + item.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(item, pid, x, y))
        x += item.width
        row_height = max(row_height, item.height)
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["ceso"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [_datasource_variable(), *variables]},
        "panels": panels,
    }


def build() -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON, for every dashboard."""
    return {
        "ceso-operations.json": dashboard(
            "ceso-operations",
            "ceso operations",
            "Jobs, durations against the success criteria, queues, locks, backups and the ESXi API.",
            OPERATIONS,
            [_variable("host", "ESXi host", "ceso_jobs_total")],
        ),
        "ceso-agents.json": dashboard(
            "ceso-agents",
            "ceso agents",
            "What AI agents do through cesod: operations by agent and sandbox mode, refusals, promotions.",
            AGENTS,
            [_variable("agent", "Agent", "ceso_agent_operations_total")],
        ),
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    args = parser.parse_args()
    stale = []
    for name, data in build().items():
        path = OUT / name
        text = render(data)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(
            "out of date (run .venv/bin/python ops/grafana/build_dashboards.py): " + ", ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
