"""The chart's Deployment and ConfigMap, as rendered, run by ``podman kube play``: the pod
comes up with the chart's security context and serves a real retrieval from Orthanc.

The pod shares the host's network (``--network=host``), so that it reaches Orthanc on
127.0.0.1 and no traffic leaves the loopback interface. podman 4.3 turns every
``containerPort`` into a port mapping, which host networking cannot have ("PortMappings can
only be used with Bridge or slirp4netns networking"), so the container's ``ports`` list —
informational in Kubernetes, where it changes no reachability — is the one thing the test
removes from the rendered Deployment (:func:`without_port_list`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from peers.net import free_port, wait_http
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.deploy.chart import of_kind, render
from tests.deploy.commands import argv
from tests.deploy.podman import Podman
from tests.deploy.retrieval import assert_same_series, container_config


def without_port_list(deployment: dict[str, Any]) -> dict[str, Any]:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        assert [port["containerPort"] for port in container.pop("ports")]
    return deployment


def test_rendered_deployment_serves_a_retrieval_in_a_pod(
    podman: Podman, image: str, orthanc: OrthancServer, study: SyntheticStudy, tmp_path: Path
) -> None:
    port = free_port()
    repository, tag = image.rsplit(":", 1)
    values = {
        "image": {"repository": repository, "tag": tag},
        "containerPort": port,
        "config": container_config(orthanc, port),
        "autoscaling": {"enabled": False},
        "replicaCount": 1,
    }
    rendered = render(values)
    kept = [*of_kind(rendered, "ConfigMap"), without_port_list(*of_kind(rendered, "Deployment"))]
    assert [doc["kind"] for doc in kept] == ["ConfigMap", "Deployment"]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(kept))
    podman(*argv("kube-play", {"rendered.yaml": str(path)})[1:], timeout_s=120)
    try:
        url = f"http://127.0.0.1:{port}"
        (pod,) = json.loads(podman("pod", "ps", "--format", "json").stdout)
        try:
            wait_http(f"{url}/readyz", timeout_s=30)
        except TimeoutError as exc:
            logs = podman.attempt("pod", "logs", pod["Name"])
            raise AssertionError(logs.stdout + logs.stderr) from exc
        assert assert_same_series(f"{url}/wado-rs/", orthanc, study) > 0

        (container,) = [c for c in pod["Containers"] if not c["Names"].endswith("-infra")]
        state = json.loads(podman("inspect", container["Id"]).stdout)[0]
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        assert state["Config"]["User"] == "10001:10001" or state["Config"]["User"] == "10001"
        status = podman("exec", container["Id"], "cat", "/proc/1/status").stdout
        assert "Uid:\t10001\t" in status
        assert "CapEff:\t0000000000000000" in status
        # the ConfigMap, as the chart wrote it, is what the gateway read
        served = podman(
            "exec", container["Id"], "cat", "/etc/mado-gateway/config/config.yaml"
        ).stdout
        assert yaml.safe_load(served)["server"]["port"] == port
        journal = podman("exec", container["Id"], "ls", "/var/lib/mado-gateway/audit-journal")
        assert journal.stdout.split()
    finally:
        podman.attempt(*argv("kube-down", {"rendered.yaml": str(path)})[1:], timeout_s=120)
