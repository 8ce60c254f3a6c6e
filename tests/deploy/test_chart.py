"""The Helm chart: lint --strict, values.schema.json, the rendered manifests validated strictly
against the oldest and newest Kubernetes the chart supports, the ServiceMonitor against the
Prometheus Operator's CRD, checkov, and what each object must say."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml

from tests.deploy.chart import CHART, Rendered, lint_errors, notes, of_kind, one, render, template
from tests.deploy.commands import argv
from tests.deploy.podman import REPO
from tests.samples import shared_file

BIN = Path(sys.executable).parent
CHECKOV = REPO / ".venv" / "checkov" / "bin" / "checkov"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
MONITORING = "monitoring.coreos.com/v1"

# Every optional part switched on: TLS with client certificates, credentials, a journal per
# pod, egress to upstreams and the audit repository, the Prometheus Operator's objects.
EVERYTHING: dict[str, Any] = {
    "tls": {"enabled": True, "certificate": PEM, "key": KEY, "clientAuth": True, "clientCa": PEM},
    "credentials": {"files": {"pacs-a-password": "s3cret", "arr.key": KEY}},
    "auditJournal": {"persistence": {"enabled": True, "storageClassName": "fast", "size": "2Gi"}},
    "networkPolicy": {
        "ingressFrom": [{"namespaceSelector": {"matchLabels": {"name": "viewers"}}}],
        "egress": {
            "upstreams": [{"cidr": "10.20.0.0/16", "ports": [{"port": 443, "protocol": "TCP"}]}],
            "auditRepository": [
                {"cidr": "10.30.0.5/32", "ports": [{"port": 6514, "protocol": "TCP"}]}
            ],
        },
    },
    "metrics": {
        "serviceMonitor": {"enabled": True, "tlsConfig": {"insecureSkipVerify": True}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboard": {"enabled": True},
    },
    "image": {"digest": "sha256:" + "ab" * 32},
}
FIXED_REPLICAS: dict[str, Any] = {"autoscaling": {"enabled": False}, "replicaCount": 3}
VALUE_SETS = {"defaults": {}, "everything": EVERYTHING, "fixed-replicas": FIXED_REPLICAS}


def kubernetes_objects(rendered: Rendered) -> Rendered:
    """What kubernetes-validate has schemas for (not the Prometheus Operator's kinds)."""
    return [doc for doc in rendered if doc["apiVersion"] != MONITORING]


def workload(rendered: Rendered) -> dict[str, Any]:
    found = of_kind(rendered, "Deployment") + of_kind(rendered, "StatefulSet")
    assert len(found) == 1
    return found[0]


def pod_spec(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = workload(rendered)["spec"]["template"]["spec"]
    return spec


def config_of(rendered: Rendered) -> dict[str, Any]:
    """The gateway's configuration file, from the ConfigMap that holds it."""
    (configmap,) = [d for d in of_kind(rendered, "ConfigMap") if "config.yaml" in d["data"]]
    config: dict[str, Any] = yaml.safe_load(configmap["data"]["config.yaml"])
    return config


def test_lint_strict_is_clean() -> None:
    assert lint_errors() == []
    assert lint_errors(values=EVERYTHING) == []


def test_lint_fails_a_broken_template(tmp_path: Path) -> None:
    chart = tmp_path / "mado-gateway"
    shutil.copytree(CHART, chart)
    service = chart / "templates" / "service.yaml"
    service.write_text(
        service.read_text().replace("{{ .Values.service.type }}", "{{ .Values.service.type")
    )
    errors = lint_errors(chart)
    assert any("service.yaml" in error for error in errors), errors


@pytest.mark.parametrize("kube_version", ["1.25.0", "1.37.0"])
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_manifests_validate_strictly(name: str, kube_version: str, tmp_path: Path) -> None:
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(kubernetes_objects(render(VALUE_SETS[name]))))
    command = "validate-oldest" if kube_version == "1.25.0" else "validate-newest"
    words = argv(command, {"rendered.yaml": str(rendered)})
    result = subprocess.run(  # noqa: PLW1510 — the status is asserted with the output
        [str(BIN / words[0]), *words[1:]], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"against version {kube_version[:4]}" in result.stdout


def test_strict_validation_fails_an_unknown_field(tmp_path: Path) -> None:
    objects = kubernetes_objects(render())
    for doc in objects:
        if doc["kind"] == "Deployment":
            doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(objects))
    words = argv("validate-newest", {"rendered.yaml": str(rendered)})
    result = subprocess.run(  # noqa: PLW1510
        [str(BIN / words[0]), *words[1:]], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "httpGett" in result.stdout + result.stderr


BAD_VALUES = {
    "unknown key": {"replicas": 2},
    "privileged port": {"containerPort": 80},
    "writable root filesystem": {"securityContext": {"readOnlyRootFilesystem": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "root filesystem left to the image": {"securityContext": {"readOnlyRootFilesystem": None}},
    "digest that is a tag": {"image": {"digest": "latest"}},
    "CPU target over 100 %": {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
    "egress without a network": {
        "networkPolicy": {"egress": {"upstreams": [{"ports": [{"port": 443}]}]}}
    },
    "scrape interval in words": {"metrics": {"serviceMonitor": {"interval": "30 seconds"}}},
    "configuration without upstreams": {"config": {"upstreams": None}},
}


@pytest.mark.parametrize("values", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_refuses_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError):
        template(values)


def test_the_rendered_configuration_passes_check_config(tmp_path: Path) -> None:
    config = config_of(render())
    assert config["server"]["host"] == "0.0.0.0"
    assert config["server"]["port"] == 8080
    assert config["audit"]["journal"]["directory"] == "/var/lib/mado-gateway/audit-journal"
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(  # noqa: PLW1510
        [sys.executable, "-m", "gateway", "check-config", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    mounts = {m["mountPath"] for m in pod_spec(render())["containers"][0]["volumeMounts"]}
    assert {"/etc/mado-gateway/config", "/var/lib/mado-gateway", "/tmp"} <= mounts


def checksum(values: dict[str, Any]) -> str:
    annotations = workload(render(values))["spec"]["template"]["metadata"]["annotations"]
    return str(annotations["checksum/config"])


def test_a_configuration_change_rolls_the_pods() -> None:
    other = {"config": {**yaml.safe_load((CHART / "values.yaml").read_text())["config"]}}
    other["config"]["self"] = {**other["config"]["self"], "audit_source_id": "another"}
    assert checksum({}) == checksum({})
    assert checksum(other) != checksum({})


def test_pod_runs_unprivileged_with_probes_resources_and_spread() -> None:
    rendered = render(FIXED_REPLICAS)
    deployment = one(rendered, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    spec = pod_spec(rendered)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["memory"] == "1536Mi"
    keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
    assert keys == ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["audit-journal"]["emptyDir"] == {"sizeLimit": "512Mi"}
    assert of_kind(rendered, "HorizontalPodAutoscaler") == []
    assert one(render(), "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 6
    assert "replicas" not in one(render(), "Deployment")["spec"]  # the HPA owns it
    assert one(rendered, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_tls_and_credentials_come_from_secrets_mounted_as_files() -> None:
    rendered = render(EVERYTHING)
    secrets = {s["metadata"]["name"]: s for s in of_kind(rendered, "Secret")}
    tls = secrets["mado-mado-gateway-tls"]
    assert tls["type"] == "kubernetes.io/tls"
    assert set(tls["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert set(secrets["mado-mado-gateway-credentials"]["data"]) == {"pacs-a-password", "arr.key"}
    server = config_of(rendered)["server"]
    assert server["tls"] == {
        "cert_file": "/etc/mado-gateway/tls/tls.crt",
        "key_file": "/etc/mado-gateway/tls/tls.key",
        "client_ca_file": "/etc/mado-gateway/tls/ca.crt",
    }
    container = pod_spec(rendered)["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/etc/mado-gateway/tls"]["readOnly"] is True
    assert mounts["/run/secrets/mado-gateway"]["readOnly"] is True
    # the kubelet has no client certificate: mutual TLS probes are TCP connections
    assert container["readinessProbe"]["tcpSocket"] == {"port": 8080}
    assert "s3cret" not in yaml.safe_dump(config_of(rendered))
    https = render({"tls": {**EVERYTHING["tls"], "clientAuth": False}})
    probe = pod_spec(https)["containers"][0]["readinessProbe"]["httpGet"]
    assert probe == {"path": "/readyz", "port": 8080, "scheme": "HTTPS"}


def test_existing_secrets_are_used_not_made() -> None:
    rendered = render(
        {
            "tls": {"enabled": True, "existingSecret": "gw-tls"},
            "credentials": {"existingSecret": "gw-credentials"},
        }
    )
    assert of_kind(rendered, "Secret") == []
    names = {v.get("secret", {}).get("secretName") for v in pod_spec(rendered)["volumes"]}
    assert {"gw-tls", "gw-credentials"} <= names


def test_persistence_gives_each_pod_a_claim_of_its_own() -> None:
    rendered = render(EVERYTHING)
    statefulset = one(rendered, "StatefulSet")
    assert of_kind(rendered, "Deployment") == []
    (claim,) = statefulset["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "audit-journal"
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert "audit-journal" not in {v["name"] for v in pod_spec(rendered)["volumes"]}
    assert one(rendered, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == (
        "StatefulSet"
    )


def test_network_policy_lets_out_only_upstreams_audit_repository_and_dns() -> None:
    policy = one(render(EVERYTHING), "NetworkPolicy")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    blocks = [
        peer["ipBlock"]["cidr"]
        for rule in policy["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    assert blocks == ["10.20.0.0/16", "10.30.0.5/32"]
    dns = policy["egress"][-1]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert len(policy["egress"]) == 3
    assert policy["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"name": "viewers"}}}
    ]
    closed = one(render(), "NetworkPolicy")["spec"]
    assert len(closed["egress"]) == 1  # DNS alone until upstreams are listed
    assert "allows no upstream yet" in notes()


def strict(schema: Any) -> Any:
    """An OpenAPI v3 schema of a CRD with unknown fields refused (as `kubectl apply
    --validate=strict` does) and Kubernetes' int-or-string understood."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: strict(value) for key, value in schema.items()}
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        schema["additionalProperties"] = False
    return schema


@pytest.fixture(scope="module")
def servicemonitor_schema() -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(
        shared_file("schemas/kubernetes/monitoring.coreos.com_servicemonitors.yaml").read_text()
    )
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def test_service_monitor_matches_the_operator_crd(
    servicemonitor_schema: jsonschema.Draft7Validator,
) -> None:
    for values in ({"metrics": {"serviceMonitor": {"enabled": True}}}, EVERYTHING):
        monitor = one(render(values), "ServiceMonitor")
        errors = [error.message for error in servicemonitor_schema.iter_errors(monitor)]
        assert errors == []
    # the admin listener (plain HTTP, its own port), even when the public port is HTTPS
    assert monitor["spec"]["endpoints"][0]["scheme"] == "http"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert of_kind(render(), "ServiceMonitor") == []  # only behind its value
    broken = copy.deepcopy(monitor)
    broken["spec"]["endpoints"][0]["intervall"] = "30s"
    broken["spec"]["endpoints"][0]["scheme"] = "tcp"
    messages = [error.message for error in servicemonitor_schema.iter_errors(broken)]
    assert any("intervall" in message for message in messages)
    assert any("'tcp'" in message for message in messages)


def test_prometheus_rule_and_dashboard_are_the_shipped_files() -> None:
    rendered = render(EVERYTHING)
    rule = one(rendered, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    dashboard = [
        d for d in of_kind(rendered, "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard[0]["data"]["mado-gateway.json"].strip() == (
        (CHART / "files" / "dashboard.json").read_text().strip()
    )


def checkov(rendered: Rendered, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(kubernetes_objects(rendered)))
    words = argv("checkov", {"rendered.yaml": str(path)})
    return subprocess.run(  # noqa: PLW1510
        [str(CHECKOV), *words[1:]], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("name", ["defaults", "everything"])
def test_checkov_passes_with_each_skip_justified(name: str, tmp_path: Path) -> None:
    rendered = render(VALUE_SETS[name])
    result = checkov(rendered, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Failed checks: 0" in result.stdout
    skips = {
        key: value
        for doc in rendered
        for key, value in doc["metadata"].get("annotations", {}).items()
        if key.startswith("checkov.io/skip")
    }
    assert skips  # the chart says why for each check it skips
    for value in skips.values():
        check, _, reason = value.partition("=")
        assert check.startswith("CKV_K8S_")
        assert len(reason.split()) >= 8, value


def test_checkov_fails_a_pod_running_as_root(tmp_path: Path) -> None:
    result = checkov(render({"podSecurityContext": {"runAsUser": 0}}), tmp_path)
    assert result.returncode == 1
    assert "CKV_K8S_40" in result.stdout  # containers should run as a high UID
