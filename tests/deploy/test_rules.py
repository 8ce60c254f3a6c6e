"""The alert rules and the dashboard shipped with the chart: promtool checks the rules and
runs their unit tests (``alerts_test.yaml``); both name only metrics the gateway exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.audit.metrics import AuditMetrics
from gateway.sinks.metrics import Metrics
from tests.deploy.chart import CHART
from tests.deploy.commands import argv
from tests.deploy.podman import REPO

RULES = CHART / "files" / "alerts.yaml"
RULE_TESTS = Path(__file__).with_name("alerts_test.yaml")
DASHBOARD = CHART / "files" / "dashboard.json"
_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "info": ("_info",),
}


def promtool(name: str, replace: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 — the status is the result
        argv(name, replace), capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_rules_pass_promtool_check() -> None:
    result = promtool("check-rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    result = promtool("test-rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def broken_copy(tmp_path: Path, old: str, new: str) -> tuple[Path, Path]:
    """The rules with ``old`` replaced, and their unit tests pointing at that copy."""
    rules = tmp_path / "alerts.yaml"
    text = RULES.read_text()
    assert old in text
    rules.write_text(text.replace(old, new))
    tests = tmp_path / "alerts_test.yaml"
    tests.write_text(
        RULE_TESTS.read_text().replace("../../charts/mado-gateway/files/alerts.yaml", str(rules))
    )
    return rules, tests


def test_promtool_check_fails_a_rule_that_does_not_parse(tmp_path: Path) -> None:
    rules, _ = broken_copy(
        tmp_path,
        "mado_gateway_registry_last_reload_successful == 0",
        "mado_gateway_registry_last_reload_successful == ",
    )
    result = promtool("check-rules", {"charts/mado-gateway/files/alerts.yaml": str(rules)})
    assert result.returncode == 1
    assert "MadoGatewayReloadFailed" in result.stdout + result.stderr


def test_unit_tests_fail_when_a_threshold_changes(tmp_path: Path) -> None:
    # 10 % of 5xx no longer alerts at a 50 % threshold: the error-ratio test must notice
    _, tests = broken_copy(tmp_path, "> 0.05", "> 0.5")
    result = promtool("test-rules", {"tests/deploy/alerts_test.yaml": str(tests)})
    assert result.returncode == 1
    assert "MadoGatewayErrorRatio" in result.stdout + result.stderr


def exported_names() -> set[str]:
    """Every sample name the gateway's metrics can expose."""
    registry = CollectorRegistry()
    Metrics(registry, version="test")
    AuditMetrics(registry)
    names: set[str] = set()
    for family in registry.collect():
        suffixes = _SUFFIXES.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def named_metrics(text: str) -> set[str]:
    return set(re.findall(r"\bmado_gateway_[a-z0-9_]+", text))


def dashboard_metrics(text: str) -> set[str]:
    """The metrics a dashboard's queries (and template variables) name."""
    dashboard = json.loads(text)
    expressions = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    return named_metrics("\n".join(expressions)) | named_metrics(
        json.dumps(dashboard["templating"])
    )


def test_rules_and_dashboard_name_only_exported_metrics() -> None:
    exported = exported_names()
    assert "mado_gateway_requests_total" in exported
    assert named_metrics(RULES.read_text()) - exported == set()
    used = dashboard_metrics(DASHBOARD.read_text())
    assert used - exported == set()
    # what the dashboard is for: requests, errors by reason, first byte, bytes, streams,
    # audit queue and journal, reloads
    for needed in (
        "mado_gateway_requests_total",
        "mado_gateway_upstream_errors_total",
        "mado_gateway_time_to_first_byte_seconds_bucket",
        "mado_gateway_relayed_bytes_total",
        "mado_gateway_in_flight_requests",
        "mado_gateway_audit_queue_depth",
        "mado_gateway_audit_queue_bytes",
        "mado_gateway_audit_journal_full",
        "mado_gateway_registry_reloads_total",
    ):
        assert needed in used, needed


def test_a_metric_renamed_in_the_dashboard_is_caught() -> None:
    renamed = DASHBOARD.read_text().replace(
        "mado_gateway_in_flight_requests", "mado_gateway_in_flight"
    )
    assert dashboard_metrics(renamed) - exported_names() == {"mado_gateway_in_flight"}


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            assert 'instance=~"$instance"' in target["expr"]
