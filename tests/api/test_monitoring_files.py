"""The shipped alert rules and dashboard load, and name only metrics that /metrics exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "orchestrator-dashboard.json"


def exported(client) -> set[str]:  # type: ignore[no-untyped-def]
    text = client.get("/metrics").get_data(as_text=True)
    names = set()
    for family in text_string_to_metric_families(text):
        # a gauge with nothing to count now still declares its family
        names |= {family.name} | {sample.name for sample in family.samples}
    return names


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\borchestrator_[a-z_]+", expr))


def test_alert_rules_load_and_name_exported_metrics(client, worker):
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert {rule["alert"] for rule in rules} == {
        "OrchestratorWorkflowFailed",
        "OrchestratorWorkflowPastDeadline",
        "OrchestratorQueueBacklogGrowing",
        "OrchestratorSuccessRateLow",
        "OrchestratorCircuitOpen",
    }
    names = exported(client) | _histogram_and_counter_names(exported(client))
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "warning")
        assert rule["annotations"]["summary"]
        unknown = referenced(rule["expr"]) - names
        assert not unknown, f"{rule['alert']} names metrics nobody exports: {unknown}"


def test_the_dashboard_loads_and_names_exported_metrics(client, worker):
    dashboard = json.loads(DASHBOARD.read_text())
    names = exported(client) | _histogram_and_counter_names(exported(client))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert exprs
    for expr in exprs:
        assert not referenced(expr) - names, expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules():
    subprocess.run(["promtool", "check", "rules", str(RULES)], check=True)


def _histogram_and_counter_names(names: set[str]) -> set[str]:
    # A counter that has not moved yet in this process exports nothing: name every family the
    # code declares, with the suffixes Prometheus adds.
    from orchestrator import metrics

    declared = set()
    for metric in (
        metrics.WORKFLOWS_STARTED,
        metrics.WORKFLOWS_FINISHED,
        metrics.STEP_SECONDS,
        metrics.RETRIES,
        metrics.REDRIVES,
    ):
        for family in metric.describe():
            declared |= {
                family.name + suffix for suffix in ("", "_total", "_bucket", "_count", "_sum")
            }
    return names | declared
