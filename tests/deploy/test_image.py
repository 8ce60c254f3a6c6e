"""The container image: the Dockerfile passes hadolint, builds offline from the wheelhouse on
a debootstrapped Debian, and the image serves a real retrieval from Orthanc as a non-root
process with a read-only root filesystem, no capabilities, and its audit journal on the
volume."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml

from peers.net import free_port, wait_http
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy
from tests.deploy.commands import argv
from tests.deploy.conftest import build_replacements
from tests.deploy.podman import REPO, Podman, wait_until
from tests.deploy.retrieval import assert_same_series, container_config

UID = 10001


def hadolint(dockerfile: Path) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    words = argv("hadolint", {"Dockerfile": str(dockerfile)})
    return subprocess.run(  # noqa: PLW1510 — the status is the result
        [binary, *words[1:]], capture_output=True, text=True, timeout=60
    )


def test_dockerfile_is_hadolint_clean() -> None:
    result = hadolint(REPO / "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_that_runs_as_root(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text((REPO / "Dockerfile").read_text().replace("USER ${UID}:${UID}", "USER root"))
    result = hadolint(broken)
    assert result.returncode == 1
    assert "DL3002" in result.stdout  # "Last USER should not be root"


def test_image_declares_its_user_volume_and_healthcheck(podman: Podman, image: str) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = inspected["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert "/var/lib/mado-gateway" in config["Volumes"]
    assert config["WorkingDir"] == "/var/lib/mado-gateway"
    assert inspected["Healthcheck"]["Test"][:2] == ["CMD", "python3"]  # kept: --format docker
    assert config["Entrypoint"] == ["mado-gateway"]
    assert config["Cmd"] == ["serve", "--config", "/etc/mado-gateway/config.yaml"]
    # the build stage's wheels, sources and pip stay out of the image
    listing = podman(
        "run",
        "--rm",
        "--network=none",
        "--entrypoint",
        "/bin/sh",
        image,
        "-c",
        "ls /; ls /opt/mado-gateway/bin",
    ).stdout.split()
    assert "wheels" not in listing
    assert "src" not in listing
    assert "pip" not in listing
    assert "mado-gateway" in listing


def test_read_only_container_serves_a_retrieval_from_orthanc(
    podman: Podman, image: str, orthanc: OrthancServer, study: SyntheticStudy, tmp_path: Path
) -> None:
    port = free_port()
    config = container_config(orthanc, port)
    config["server"]["base_path"] = "/wado-rs"
    admin_port = free_port()  # /metrics is on the admin listener, not the public port
    config["server"]["admin"] = {"port": admin_port}
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    config_file.chmod(0o644)
    audit = tmp_path / "audit"
    audit.mkdir()
    os.chown(audit, UID, UID)
    name = f"mado-gateway-{port}"
    words = argv(
        "run",
        {
            "mado-gateway": name,
            "./config.yaml:/etc/mado-gateway/config.yaml:ro": (
                f"{config_file}:/etc/mado-gateway/config.yaml:ro"
            ),
            "./audit:/var/lib/mado-gateway": f"{audit}:/var/lib/mado-gateway",
            "mado-gateway:0.1.0": image,
        },
    )
    words[words.index(image) : words.index(image)] = [
        "--env",
        f"MADO_GATEWAY_HEALTH_URL=http://127.0.0.1:{port}/livez",
    ]
    podman(*words[1:])
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/readyz", timeout_s=30)
        except TimeoutError as exc:
            raise AssertionError(podman.attempt("logs", name).stderr) from exc
        received = assert_same_series(f"{url}/wado-rs/", orthanc, study)
        assert received > 0

        # HEALTHCHECK: the image's own probe, run by podman in the container
        podman(*argv("healthcheck", {"mado-gateway": name})[1:])
        state = json.loads(podman("inspect", name).stdout)[0]
        assert state["HostConfig"]["ReadonlyRootfs"] is True
        assert state["HostConfig"]["CapDrop"]  # every capability dropped
        health = state["State"].get("Health") or state["State"]["Healthcheck"]
        assert health["Status"] == "healthy"

        # the process: user 10001, no effective capability, nothing writable but the volume
        status = podman("exec", name, "cat", "/proc/1/status").stdout
        assert f"Uid:\t{UID}\t" in status
        assert "CapEff:\t0000000000000000" in status
        refused = podman.attempt("exec", name, "python3", "-c", "open('/opt/x', 'w')")
        assert refused.returncode != 0
        assert "Read-only file system" in refused.stderr

        # the audit trail went to the journal on the volume
        wait_until(
            lambda: any((audit / "audit" / "journal").glob("*")),
            timeout_s=10,
            what="no audit journal on the volume",
        )
        assert (audit / "audit" / "audit.log").exists()
        admin = f"http://127.0.0.1:{admin_port}"
        with urllib.request.urlopen(f"{admin}/metrics", timeout=10) as answer:
            assert b"mado_gateway_audit_journaled_total" in answer.read()
    finally:
        podman.attempt("rm", "--force", "--time", "10", name)
    events = (audit / "audit" / "audit.log").read_text()
    assert "gateway-in-a-container" in events  # the AuditSourceID of the configuration


def test_build_needs_no_network_and_fails_without_a_wheel(
    podman: Podman, base_image: str, wheels: Path, tmp_path: Path
) -> None:
    """--network=none: a wheel missing from the wheelhouse is a failed build, not a
    download."""
    partial = tmp_path / "wheels"
    shutil.copytree(wheels, partial, ignore=shutil.ignore_patterns("aiohttp-*"))
    words = argv("build", build_replacements(partial, base_image, "localhost/mado-gateway:broken"))
    result = podman.attempt(*words[1:], timeout_s=300)
    assert result.returncode != 0
    assert "aiohttp" in result.stdout + result.stderr
