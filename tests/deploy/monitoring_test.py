"""Checks of the monitoring component: the alerts and the Grafana dashboard read only metrics
the service exports, every alert has its runbook, and the rules parse (promtool, where it is
installed; .ci/kubernetes-check installs it from Debian's prometheus package)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path
from typing import Any

import yaml

from tests.deploy import kubernetes_test
from tests.deploy.kubernetes_test import DEPLOY, documents, manifest

MONITORING = DEPLOY / "components" / "monitoring"
# The names a PromQL expression here may read: the service's families and prometheus_client's
# process, platform and garbage-collector collectors.
METRIC = re.compile(r"\b((?:plugboard|process|python)_[a-z0-9_]+)\b")
REQUIRED_ALERTS = {
    "PyServiceErrorRate",
    "PyServiceTimeoutRate",
    "PyServiceAnswersLost",
    "PyServiceWorkerThreadsOverrun",
    "PyServiceReconnectStorm",
    "PyServiceMemoryNearLimit",
    "PyServiceNoReplicaJoined",
    "PyServiceCatalogMismatch",
    "PyServiceUpgradeRefused",
}


def rules() -> list[dict[str, Any]]:
    """Every rule of the PrometheusRule."""
    spec = manifest(MONITORING, "PrometheusRule")["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard."""
    with (MONITORING / "dashboard.json").open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
        return loaded


def dashboard_expressions() -> list[str]:
    """The PromQL of every panel and template variable of the dashboard."""
    board = dashboard()
    expressions = [
        target["expr"] for panel in board["panels"] for target in panel.get("targets", [])
    ]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            expressions.append(variable["query"]["query"])
    return expressions


class AlertsAndDashboardTest(unittest.TestCase):
    exported: set[str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.exported = kubernetes_test.MonitoringTest.exported_metric_names()

    def assert_exported(self, expressions: list[str]) -> None:
        used = {name for expression in expressions for name in METRIC.findall(expression)}
        self.assertTrue(used)
        self.assertEqual(used - self.exported, set())

    def test_the_alerts_read_only_exported_metrics(self) -> None:
        self.assert_exported([rule["expr"] for rule in rules()])

    def test_the_dashboard_reads_only_exported_metrics(self) -> None:
        expressions = dashboard_expressions()
        self.assert_exported(expressions)
        for required in (
            "plugboard_requests_total",
            "plugboard_request_duration_seconds_bucket",
            "plugboard_requests_in_flight",
            "plugboard_requests_waiting",
            "plugboard_responses_kept",
            "plugboard_reconnects_total",
            "process_resident_memory_bytes",
        ):
            self.assertTrue(any(required in e for e in expressions), required)

    def test_every_alert_is_there_with_a_severity_a_summary_and_a_runbook(self) -> None:
        found = {rule["alert"]: rule for rule in rules()}
        self.assertEqual(set(found), REQUIRED_ALERTS)
        for name, rule in found.items():
            with self.subTest(alert=name):
                self.assertIn(rule["labels"]["severity"], ("warning", "critical"))
                self.assertTrue(rule["annotations"]["summary"])
                self.assertGreater(len(rule["annotations"]["runbook"]), 100)

    def test_the_dashboard_is_a_configmap_of_the_component(self) -> None:
        [kustomization] = documents(MONITORING / "kustomization.yaml")
        [generated] = kustomization["configMapGenerator"]
        self.assertEqual(generated["files"], ["dashboard.json"])
        self.assertEqual(generated["options"]["labels"]["grafana_dashboard"], "1")
        panels = [panel for panel in dashboard()["panels"] if panel["type"] != "row"]
        self.assertEqual(
            len({panel["id"] for panel in dashboard()["panels"]}), len(dashboard()["panels"])
        )
        self.assertTrue(all(panel["targets"] for panel in panels))

    @unittest.skipUnless(shutil.which("promtool"), "promtool is not installed here")
    def test_promtool_checks_the_rules(self) -> None:
        spec = manifest(MONITORING, "PrometheusRule")["spec"]
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "rules.yaml"
            path.write_text(yaml.safe_dump({"groups": spec["groups"]}), encoding="utf-8")
            result = subprocess.run(
                ["promtool", "check", "rules", str(path)],
                capture_output=True,
                text=True,
                timeout=60,
            )
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(f"SUCCESS: {len(rules())} rules found", result.stdout)


if __name__ == "__main__":
    unittest.main()
