"""Per-upstream credentials (issue 16 item 5) against a real Orthanc that requires HTTP basic
authentication, through gateway processes: 401 relayed without them, 200 with them, read from
a file or the environment and re-read on SIGHUP, never sent to another origin, never shown."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from peers.gateway import REPO, GatewayProcess, gateway_config
from peers.multipart import split_multipart
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import SyntheticStudy, make_study
from tests.functional.recorder import Recorder

COMMUNITY = "1.3.6.1.4.1.21367.13.70.9"
RLUID = "1.3.6.1.4.1.21367.13.70.9.200"
USER = "mado-gateway"
SECRET = "Kx7#q:zP%&w!9-secret"
DICOM = 'multipart/related; type="application/dicom"'


def secret_spellings(secret: str) -> list[str]:
    """The secret and every encoding of it a careless log line could carry."""
    return [
        secret,
        base64.b64encode(f"{USER}:{secret}".encode()).decode(),
        base64.b64encode(secret.encode()).decode(),
    ]


@pytest.fixture(scope="module")
def small_study() -> SyntheticStudy:
    return make_study(seed="auth", series_count=1, instances_per_series=3, rows=16, columns=16)


@pytest.fixture(scope="module")
def pacs(
    tmp_path_factory: pytest.TempPathFactory, small_study: SyntheticStudy
) -> Iterator[OrthancServer]:
    folder = tmp_path_factory.mktemp("orthanc-auth")
    with OrthancServer(folder, users={USER: SECRET}) as server:
        server.upload_all([i.part10 for i in small_study.instances])
        yield server


def config(upstream: dict[str, Any], **extra: Any) -> dict[str, Any]:
    document = gateway_config(
        home_community_id=COMMUNITY,
        port=free_port(),
        upstreams={"pacs": {"protocol": "wado-rs", **upstream}},
        sources={RLUID: "pacs"},
        **extra,
    )
    document["server"]["log_level"] = "DEBUG"  # the most a log ever says
    return document


def get(gateway: GatewayProcess, study: str) -> tuple[int, str, bytes]:
    url = (
        f"{gateway.endpoint}homeCommunityId/{COMMUNITY}/RetrieveLocationUID/{RLUID}/studies/{study}"
    )
    request = urllib.request.Request(url, headers={"Accept": DICOM})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("Content-Type", ""), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def assert_never_shown(text: str | bytes, *secrets: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    for secret in secrets:
        for spelling in secret_spellings(secret):
            assert spelling.encode() not in data, spelling


def test_without_credentials_the_sources_401_is_relayed(
    pacs: OrthancServer, small_study: SyntheticStudy, tmp_path: Path
) -> None:
    with GatewayProcess(tmp_path, config({"base_urls": [pacs.dicomweb_url]})) as gateway:
        status, content_type, body = get(gateway, small_study.study_uid)
    assert (status, content_type) == (401, "application/problem+json")
    problem = json.loads(body)
    assert problem["type"] == "urn:mado-gateway:problem:upstream-status"
    assert "401" in problem["detail"]


def test_basic_credentials_from_a_file_retrieve_the_study_and_stay_secret(
    pacs: OrthancServer, small_study: SyntheticStudy, tmp_path: Path
) -> None:
    password = tmp_path / "pacs-password"
    password.write_text(SECRET + "\n")
    auth = {"type": "basic", "username": USER, "password_file": str(password)}
    with GatewayProcess(
        tmp_path, config({"base_urls": [pacs.dicomweb_url], "auth": auth})
    ) as gateway:
        status, content_type, body = get(gateway, small_study.study_uid)
        assert status == 200
        parts = split_multipart(body, content_type)
        assert {p.body for p in parts} == {i.part10 for i in small_study.instances}
        unknown_status, _, problem = get(gateway, "1.2.3.4.5.6.7")  # a problem body too
        assert unknown_status == 404
        assert_never_shown(problem, SECRET)
    assert_never_shown(gateway.log(), SECRET)
    assert '"msg":"exchange"' in gateway.log()  # the log was written, at DEBUG level


def test_basic_credentials_from_the_environment(
    pacs: OrthancServer,
    small_study: SyntheticStudy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACS_USER", USER)
    monkeypatch.setenv("PACS_PASSWORD", SECRET)
    auth = {"type": "basic", "username_env": "PACS_USER", "password_env": "PACS_PASSWORD"}
    with GatewayProcess(
        tmp_path, config({"base_urls": [pacs.dicomweb_url], "auth": auth})
    ) as gateway:
        assert get(gateway, small_study.study_uid)[0] == 200
    assert_never_shown(gateway.log(), SECRET)


def test_a_rejected_credential_is_logged_without_it_and_sighup_rereads_the_file(
    pacs: OrthancServer, small_study: SyntheticStudy, tmp_path: Path
) -> None:
    wrong = "not-the-password-42"
    password = tmp_path / "pacs-password"
    password.write_text(wrong)
    auth = {"type": "basic", "username": USER, "password_file": str(password)}
    with GatewayProcess(
        tmp_path, config({"base_urls": [pacs.dicomweb_url], "auth": auth})
    ) as gateway:
        assert get(gateway, small_study.study_uid)[0] == 401
        refused = [
            json.loads(line)
            for line in gateway.log().splitlines()
            if "refused the configured credential" in line
        ]
        assert refused and refused[0]["credential_from"] == f"password_file {password}"
        assert refused[0]["upstream"] == "pacs" and refused[0]["upstream_status"] == 401

        password.write_text(SECRET + "\n")  # the secret rotated: write the file, send SIGHUP
        gateway.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while gateway.log().count("configuration reloaded") < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert get(gateway, small_study.study_uid)[0] == 200
    assert_never_shown(gateway.log(), SECRET, wrong)


def test_the_credential_does_not_follow_a_redirect_to_another_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PACS_PASSWORD", SECRET)
    with Recorder() as pacs_up, Recorder() as elsewhere:
        pacs_up.redirects["/dicom-web/"] = (302, f"{elsewhere.url}moved/studies/1.2.3")
        auth = {"type": "basic", "username": USER, "password_env": "PACS_PASSWORD"}
        document = config(
            {
                "base_urls": [pacs_up.url + "dicom-web/"],
                "auth": auth,
                "redirects": {"allow_http": True, "allowed_origins": [elsewhere.url]},
            }
        )
        with GatewayProcess(tmp_path, document) as gateway:
            status, _, _ = get(gateway, "1.2.3")
        assert status == 200
        (first,) = pacs_up.requests
        (second,) = elsewhere.requests
    expected = base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
    assert first.header("authorization") == [f"Basic {expected}"]
    assert second.target == b"/moved/studies/1.2.3"
    assert second.header("authorization") == []  # another origin: never
    assert_never_shown(gateway.log(), SECRET)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


def test_check_config_never_prints_a_secret(tmp_path: Path) -> None:
    password = tmp_path / "pacs-password"
    password.write_text(SECRET)
    auth = {"type": "basic", "username": USER, "password_file": str(password)}
    good = tmp_path / "good.yaml"
    good.write_text(
        yaml.safe_dump(config({"base_urls": ["https://pacs.example.org/"], "auth": auth}))
    )
    result = run_cli("check-config", str(good))
    assert result.returncode == 0, result.stderr
    assert_never_shown(result.stdout + result.stderr, SECRET)

    inline = {"type": "basic", "username": USER, "password": SECRET}
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(config({"base_urls": ["https://pacs.example.org/"], "auth": inline}))
    )
    result = run_cli("check-config", str(bad))
    assert result.returncode == 1
    assert "upstreams.pacs.auth.password: is refused" in result.stderr
    assert "Traceback" not in result.stderr
    assert_never_shown(result.stdout + result.stderr, SECRET)
