"""The shipped alert rules are valid, pass their unit tests and use only metric names /metrics exposes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from cadence.ops import metrics

BASE_DIR = Path(__file__).resolve().parent.parent.parent
RULES = BASE_DIR / "deploy" / "prometheus"
# Exposed by other processes or by Prometheus itself, not by the ops collector.
ELSEWHERE = {"up", "cadence_event_intake_lag_seconds"}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: apt-get install prometheus (.ci/run does)")
    return found


def test_promtool_checks_the_rules():
    result = subprocess.run(
        [promtool(), "check", "rules", "alerts.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_unit_tests_pass():
    result = subprocess.run(
        [promtool(), "test", "rules", "alerts_test.yml"], cwd=RULES, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_every_metric_an_alert_reads_is_one_metrics_exposes():
    exposed = {family.name for family in text_string_to_metric_families(_exposition())}
    exposed |= (
        {f"{name}_bucket" for name in exposed}
        | {f"{name}_sum" for name in exposed}
        | {f"{name}_count" for name in exposed}
    )
    rules = yaml.safe_load((RULES / "alerts.yml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {
        name
        for expr in expressions
        for name in re.findall(r"\b([a-z_][a-z0-9_]*)\s*(?:\{|>|<|=|!|\)|$)", expr)
        if name.startswith("cadence_") or name == "up"
    }

    assert used - exposed - ELSEWHERE == set()
    assert {"cadence_last_tick_age_seconds", "cadence_queue_depth", "cadence_sends_braked"} <= used


def _exposition() -> str:
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry()).decode()


@pytest.mark.django_db
def test_the_grafana_dashboard_reads_only_metrics_that_are_exposed(client):
    import json

    from cadence.ops.http_metrics import http_exposition

    client.get("/subscribe/")
    client.get("/no-such-page/")
    families = list(text_string_to_metric_families(_exposition() + http_exposition().decode()))
    exposed = {family.name for family in families} | {sample.name for family in families for sample in family.samples}
    dashboard = json.loads((BASE_DIR / "deploy" / "grafana" / "cadence.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\b((?:cadence|django)_[a-z0-9_]+)\{", expr)}

    assert used and used - exposed - ELSEWHERE == set()
