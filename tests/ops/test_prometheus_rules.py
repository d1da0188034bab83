"""ops/prometheus: the config and the alert rules pass promtool, and the rules' unit tests pass."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.ops.prom import REPO, tool

PROM_DIR = REPO / "ops" / "prometheus"


def promtool(*args: str, cwd: Path = REPO) -> str:
    proc = subprocess.run([tool("promtool"), *args], capture_output=True, text=True, cwd=cwd, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def test_alert_rules_pass_promtool_check() -> None:
    out = promtool("check", "rules", str(PROM_DIR / "alerts.yml"))
    assert "SUCCESS" in out


def test_alert_rules_unit_tests_pass() -> None:
    tests = sorted((PROM_DIR / "tests").glob("*.yml"))
    assert tests, "no promtool unit tests in ops/prometheus/tests"
    out = promtool("test", "rules", *(str(t) for t in tests))
    assert "SUCCESS" in out and "FAILED" not in out


def test_every_alert_has_a_unit_test_and_a_runbook_section() -> None:
    rules = [r for g in yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"] for r in g["rules"]]
    tested = set()
    for path in (PROM_DIR / "tests").glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t.get("exp_alerts")}
    names = {r["alert"] for r in rules}
    assert names - tested == set(), "alerts without a firing unit test"
    runbook = (REPO / "docs" / "operations.md").read_text()
    anchors = {_anchor(line) for line in runbook.splitlines() if line.startswith("#")}
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        doc, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert doc == "docs/operations.md" and anchor in anchors, (rule["alert"], anchor)
    # The minimum set of alerts.
    assert {
        "CesoWorkerDown",
        "CesoQueueNotDraining",
        "CesoJobFailureRate",
        "CesoBackupMissing",
        "CesoBackupFailed",
        "CesoLockWaitsHigh",
        "CesoAgentRefusalsSpiking",
    } <= names


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = heading.lstrip("#").strip().lower()
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def test_stack_config_is_valid_and_scrapes_workers_cesod_and_flower() -> None:
    out = promtool("check", "config", str(PROM_DIR / "prometheus.yml"))
    assert "SUCCESS" in out
    config = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {c["job_name"]: c for c in config["scrape_configs"]}
    assert {"ceso-workers", "cesod", "flower"} <= set(jobs)
    assert config["rule_files"] == ["alerts.yml"]
