"""Checks of deploy/kubernetes/: what the manifests promise, so an edit cannot drop it silently.

The manifests are read as YAML (no cluster, no kustomize): the probes, the grace period
against the service's own setting, the security settings, the Secret references, the
disruption budget, the autoscaler, the network policy, the catalog hash on the pods, and that
every kustomization lists every manifest beside it. CI also validates them against the
Kubernetes OpenAPI schemas and lints them (.ci/kubernetes-check).
"""

from __future__ import annotations

import re
import unittest
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from core.db.database import DatabaseSettings
from core.hub.client import PlugboardClient
from core.model.registry import discover
from core.model.runner import ActionRunner
from core.ops import metrics
from core.settings import PROJECT_ROOT, Settings
from tests.support import FIXTURE_ACTIONS

DEPLOY = PROJECT_ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
SECRET_EXAMPLE = "secret.example.yaml"
CATALOG_LABEL = "py-service/catalog-hash"

Manifest = dict[str, Any]


def documents(path: Path) -> list[Manifest]:
    """Every YAML document in `path`."""
    with path.open(encoding="utf-8") as handle:
        return [document for document in yaml.safe_load_all(handle) if document is not None]


def manifest(folder: Path, kind: str) -> Manifest:
    """The one manifest of `kind` among the files of `folder`."""
    found = [
        document
        for path in sorted(folder.glob("*.yaml"))
        for document in documents(path)
        if document.get("kind") == kind
    ]
    if len(found) != 1:
        raise AssertionError(f"expected one {kind} in {folder}, found {len(found)}")
    return found[0]


def kustomization_folders() -> Iterator[Path]:
    """Every folder under deploy/kubernetes that has a kustomization.yaml."""
    for path in sorted(DEPLOY.rglob("kustomization.yaml")):
        yield path.parent


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Whether a label selector with only matchLabels selects `labels`."""
    if set(selector) != {"matchLabels"}:
        raise AssertionError(f"expected a matchLabels selector, got {selector}")
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def quantity(value: str) -> float:
    """A Kubernetes resource quantity (the forms used here: 100m, 1, 128Mi, 1Gi) as a number."""
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi)?", str(value))
    if match is None:
        raise AssertionError(f"unexpected quantity {value!r}")
    factor = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]
    return float(match.group(1)) * factor


class ManifestsTestCase(unittest.TestCase):
    """Loads the base manifests once."""

    deployment: Manifest
    pod: Manifest
    container: Manifest
    config: dict[str, str]

    @classmethod
    def setUpClass(cls) -> None:
        cls.deployment = manifest(BASE, "Deployment")
        cls.pod = cls.deployment["spec"]["template"]
        containers = cls.pod["spec"]["containers"]
        assert len(containers) == 1, containers
        cls.container = containers[0]
        cls.config = manifest(BASE, "ConfigMap")["data"]

    def pod_labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.pod["metadata"]["labels"]
        return labels

    def health_port(self) -> int:
        ports = {port["name"]: port["containerPort"] for port in self.container["ports"]}
        return int(ports["health"])


class KustomizationTest(unittest.TestCase):
    def test_every_manifest_is_listed_and_every_listed_file_exists(self) -> None:
        folders = list(kustomization_folders())
        self.assertIn(DEPLOY, folders)
        self.assertIn(BASE, folders)
        for folder in folders:
            with self.subTest(folder=str(folder.relative_to(PROJECT_ROOT))):
                kustomization = documents(folder / "kustomization.yaml")[0]
                listed = kustomization.get("resources", [])
                for entry in listed:
                    target = (folder / entry).resolve()
                    self.assertTrue(
                        target.is_file() or (target / "kustomization.yaml").is_file(),
                        f"{entry} is listed but missing",
                    )
                beside = {
                    path.name
                    for path in folder.glob("*.yaml")
                    if path.name not in ("kustomization.yaml", SECRET_EXAMPLE)
                }
                self.assertEqual(beside - set(listed), set(), "manifests not listed")

    def test_the_default_entry_builds_on_base(self) -> None:
        self.assertEqual(documents(DEPLOY / "kustomization.yaml")[0]["resources"], ["base"])
        for overlay in ("catalog-change", "green"):
            kustomization = documents(DEPLOY / overlay / "kustomization.yaml")[0]
            self.assertEqual(kustomization["resources"], ["../base"], overlay)

    def test_the_example_secret_is_not_applied_and_holds_no_secret(self) -> None:
        secret = documents(BASE / SECRET_EXAMPLE)[0]
        self.assertEqual(secret["kind"], "Secret")
        for name, value in secret["stringData"].items():
            self.assertTrue(value.startswith("replace-with-"), f"{name} looks like a real value")
        for path in DEPLOY.rglob("*.yaml"):
            if path.name != SECRET_EXAMPLE:
                kinds = {document.get("kind") for document in documents(path)}
                self.assertNotIn("Secret", kinds, path)

    def test_every_optional_component_is_offered_in_base(self) -> None:
        text = (BASE / "kustomization.yaml").read_text(encoding="utf-8")
        for component in sorted((DEPLOY / "components").iterdir()):
            self.assertEqual(documents(component / "kustomization.yaml")[0]["kind"], "Component")
            self.assertIn(f"../components/{component.name}", text)

    def test_the_image_placeholder_is_rewritten(self) -> None:
        images = documents(BASE / "kustomization.yaml")[0]["images"]
        self.assertIn(self.container_image(), [image["name"] for image in images])

    @staticmethod
    def container_image() -> str:
        image: str = manifest(BASE, "Deployment")["spec"]["template"]["spec"]["containers"][0][
            "image"
        ]
        return image


class DeploymentTest(ManifestsTestCase):
    def test_probes_use_the_health_endpoints_on_the_health_port(self) -> None:
        port = self.health_port()
        self.assertEqual(port, int(self.config.get("HEALTH_PORT", "8080")))
        expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz"}
        expected["startupProbe"] = "/healthz"
        for probe, path in expected.items():
            with self.subTest(probe=probe):
                action = self.container[probe]["httpGet"]
                self.assertEqual(action["path"], path)
                self.assertIn(action["port"], ("health", port))
                self.assertLessEqual(self.container[probe]["timeoutSeconds"], 5)

    def test_the_grace_period_outlasts_the_drain(self) -> None:
        grace = Settings.from_env(self.config).shutdown_grace_seconds
        self.assertEqual(grace, float(self.config["SHUTDOWN_GRACE_SECONDS"]))
        self.assertGreater(self.pod["spec"]["terminationGracePeriodSeconds"], grace)
        # A preStop hook would eat into the same grace period.
        self.assertNotIn("preStop", self.container.get("lifecycle", {}))

    def test_the_config_map_holds_valid_settings_and_no_secret(self) -> None:
        Settings.from_env(self.config)  # raises SettingsError on a bad value
        env = {**self.config, "POSTGRES_PASSWORD": "x"}
        database = DatabaseSettings.from_environment(env)
        self.assertEqual(database.url.get_backend_name(), "postgresql")
        for secret in ("TOKEN", "POSTGRES_PASSWORD", "DATABASE_URL"):
            self.assertNotIn(secret, self.config)

    def test_secrets_come_from_the_secret_and_settings_from_the_config_map(self) -> None:
        secret = documents(BASE / SECRET_EXAMPLE)[0]
        env = {item["name"]: item for item in self.container["env"]}
        for name in ("TOKEN", "POSTGRES_PASSWORD"):
            with self.subTest(name=name):
                reference = env[name]["valueFrom"]["secretKeyRef"]
                self.assertNotIn("value", env[name])
                self.assertEqual(reference["name"], secret["metadata"]["name"])
                self.assertIn(reference["key"], secret["stringData"])
        config_map = manifest(BASE, "ConfigMap")["metadata"]["name"]
        self.assertEqual(self.container["envFrom"], [{"configMapRef": {"name": config_map}}])

    def test_runs_unprivileged_on_a_read_only_root(self) -> None:
        pod_security = self.pod["spec"]["securityContext"]
        self.assertIs(pod_security["runAsNonRoot"], True)
        self.assertEqual(pod_security["seccompProfile"], {"type": "RuntimeDefault"})
        dockerfile = (PROJECT_ROOT / "Dockerfile").read_text(encoding="utf-8")
        user = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE)
        assert user is not None
        self.assertEqual(pod_security["runAsUser"], int(user.group(1)))
        self.assertEqual(pod_security["runAsGroup"], int(user.group(2)))
        container_security = self.container["securityContext"]
        self.assertIs(container_security["readOnlyRootFilesystem"], True)
        self.assertIs(container_security["allowPrivilegeEscalation"], False)
        self.assertEqual(container_security["capabilities"], {"drop": ["ALL"]})
        self.assertIs(self.pod["spec"]["automountServiceAccountToken"], False)
        account = manifest(BASE, "ServiceAccount")
        self.assertEqual(self.pod["spec"]["serviceAccountName"], account["metadata"]["name"])
        self.assertIs(account["automountServiceAccountToken"], False)

    def test_tmp_is_a_writable_empty_dir(self) -> None:
        mounts = {mount["mountPath"]: mount["name"] for mount in self.container["volumeMounts"]}
        volumes = {volume["name"]: volume for volume in self.pod["spec"]["volumes"]}
        self.assertIn("emptyDir", volumes[mounts["/tmp"]])

    def test_resources_have_requests_below_limits(self) -> None:
        resources = self.container["resources"]
        for name in ("cpu", "memory"):
            with self.subTest(resource=name):
                request = quantity(resources["requests"][name])
                self.assertGreater(request, 0)
                self.assertLessEqual(request, quantity(resources["limits"][name]))

    def test_rolls_without_losing_a_joined_replica(self) -> None:
        spec = self.deployment["spec"]
        self.assertNotIn("replicas", spec, "the HorizontalPodAutoscaler owns the count")
        self.assertEqual(spec["strategy"]["type"], "RollingUpdate")
        self.assertEqual(spec["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
        self.assertTrue(selects(spec["selector"], self.pod_labels()))

    def test_the_pods_carry_the_hash_of_the_shipped_catalog(self) -> None:
        actions = discover(PROJECT_ROOT / "actions", ActionRunner)
        settings = Settings().with_hub("ws://localhost/websocket", "token")
        expected = PlugboardClient(settings, actions, events={}).catalog_hash
        self.assertEqual(
            self.pod_labels().get(CATALOG_LABEL),
            expected,
            "The action catalog changed: set the label py-service/catalog-hash in "
            "deploy/kubernetes/base/deployment.yaml to `python entrypoint.py actions --hash`, "
            "and release it with the catalog-change procedure (docs/deploying.md, Releases).",
        )


class DisruptionAndScalingTest(ManifestsTestCase):
    def test_the_disruption_budget_selects_the_pods(self) -> None:
        budget = manifest(BASE, "PodDisruptionBudget")
        self.assertTrue(selects(budget["spec"]["selector"], self.pod_labels()))
        self.assertEqual(budget["spec"]["selector"], self.deployment["spec"]["selector"])
        self.assertEqual(budget["spec"]["maxUnavailable"], 1)

    def test_the_autoscaler_targets_the_deployment(self) -> None:
        autoscaler = manifest(BASE, "HorizontalPodAutoscaler")["spec"]
        self.assertEqual(
            autoscaler["scaleTargetRef"],
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.deployment_name()},
        )
        self.assertGreaterEqual(autoscaler["minReplicas"], 2)
        self.assertGreaterEqual(autoscaler["maxReplicas"], autoscaler["minReplicas"])
        [metric] = autoscaler["metrics"]
        self.assertEqual(metric["resource"]["name"], "cpu")

    def test_the_keda_component_replaces_the_autoscaler(self) -> None:
        keda = DEPLOY / "components" / "keda"
        scaled = manifest(keda, "ScaledObject")["spec"]
        self.assertEqual(scaled["scaleTargetRef"]["name"], self.deployment_name())
        queries = [t["metadata"]["query"] for t in scaled["triggers"] if t["type"] == "prometheus"]
        self.assertEqual(len(queries), 1)
        self.assertIn("plugboard_requests_in_flight", queries[0])
        [patch] = documents(keda / "kustomization.yaml")[0]["patches"]
        deleted = yaml.safe_load(patch["patch"])
        self.assertEqual(deleted["$patch"], "delete")
        self.assertEqual(deleted["kind"], "HorizontalPodAutoscaler")
        self.assertEqual(deleted["metadata"]["name"], self.deployment_name())

    def deployment_name(self) -> str:
        name: str = self.deployment["metadata"]["name"]
        return name


class NetworkPolicyTest(ManifestsTestCase):
    def test_egress_only_to_dns_the_hub_and_the_database(self) -> None:
        policy = manifest(BASE, "NetworkPolicy")["spec"]
        self.assertTrue(selects(policy["podSelector"], self.pod_labels()))
        self.assertEqual(sorted(policy["policyTypes"]), ["Egress", "Ingress"])
        hub = urlsplit(self.config["WEBSOCKET_URL"])
        hub_port = hub.port or (443 if hub.scheme == "wss" else 80)
        allowed: set[tuple[int, str]] = set()
        for rule in policy["egress"]:
            self.assertTrue(rule.get("to"), f"an egress rule to anywhere: {rule}")
            self.assertTrue(rule.get("ports"), f"an egress rule on any port: {rule}")
            for peer in rule["to"]:
                cidr = peer.get("ipBlock", {}).get("cidr", "")
                self.assertNotIn(cidr, ("0.0.0.0/0", "::/0"))
            allowed |= {(port["port"], port["protocol"]) for port in rule["ports"]}
        expected = {(53, "UDP"), (53, "TCP"), (hub_port, "TCP")}
        expected.add((int(self.config["POSTGRES_PORT"]), "TCP"))
        self.assertEqual(allowed, expected)

    def test_ingress_only_to_the_health_port(self) -> None:
        policy = manifest(BASE, "NetworkPolicy")["spec"]
        for rule in policy["ingress"]:
            self.assertTrue(rule.get("from"))
            ports = [port["port"] for port in rule["ports"]]
            self.assertTrue(all(port in ("health", self.health_port()) for port in ports))


class CatalogChangeTest(ManifestsTestCase):
    def test_the_catalog_change_overlay_recreates_the_fleet(self) -> None:
        kustomization = documents(DEPLOY / "catalog-change" / "kustomization.yaml")[0]
        [patch] = kustomization["patches"]
        strategy = yaml.safe_load(patch["patch"])["spec"]["strategy"]
        # rollingUpdate must go: the API refuses it beside type Recreate.
        self.assertEqual(strategy, {"type": "Recreate", "rollingUpdate": None})

    def test_the_green_copy_has_its_own_names_labels_and_secret(self) -> None:
        kustomization = documents(DEPLOY / "green" / "kustomization.yaml")[0]
        self.assertEqual(kustomization["nameSuffix"], "-green")
        [labels] = kustomization["labels"]
        self.assertIs(labels["includeSelectors"], True)
        instance = labels["pairs"]["app.kubernetes.io/instance"]
        self.assertNotEqual(instance, self.pod_labels()["app.kubernetes.io/instance"])
        patches = "\n".join(patch["patch"] for patch in kustomization["patches"])
        for index, item in enumerate(self.container["env"]):
            if "secretKeyRef" in item.get("valueFrom", {}):
                self.assertIn(f"/env/{index}/valueFrom/secretKeyRef/name", patches)
        self.assertIn("value: py-service-green-secrets", patches)


class MonitoringTest(ManifestsTestCase):
    def test_the_pod_monitor_scrapes_metrics_on_the_health_port(self) -> None:
        monitoring = DEPLOY / "components" / "monitoring"
        monitor = manifest(monitoring, "PodMonitor")["spec"]
        self.assertTrue(selects(monitor["selector"], self.pod_labels()))
        [endpoint] = monitor["podMetricsEndpoints"]
        self.assertEqual((endpoint["port"], endpoint["path"]), ("health", "/metrics"))

    def test_the_alerts_read_metrics_the_service_exports(self) -> None:
        exported = self.exported_metric_names()
        rules = manifest(DEPLOY / "components" / "monitoring", "PrometheusRule")["spec"]
        expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
        keda = manifest(DEPLOY / "components" / "keda", "ScaledObject")["spec"]["triggers"]
        expressions += [t["metadata"]["query"] for t in keda if t["type"] == "prometheus"]
        used = {
            name for expression in expressions for name in re.findall(r"plugboard_\w+", expression)
        }
        self.assertTrue(used)
        self.assertEqual(used - exported, set())

    @staticmethod
    def exported_metric_names() -> set[str]:
        """The sample names /metrics serves, from an unconnected client that has counted one
        answer (a family without samples names none)."""
        settings = Settings().with_hub("ws://localhost/websocket", "token")
        client = PlugboardClient(settings, FIXTURE_ACTIONS, events={})
        client.executor.stats["Echo"].record(200, 0.001, None)
        text = metrics.render(client).decode()
        return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


if __name__ == "__main__":
    unittest.main()
