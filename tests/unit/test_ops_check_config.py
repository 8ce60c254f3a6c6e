"""Issue 14 item 6: ``check-config`` refuses each wrong file an operator ran into, says where
(line and column), and speaks JSON."""

from __future__ import annotations

import contextlib
import getpass
import io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main

GOOD = """\
self:
  home_community_id: 1.2.3.4
  audit_source_id: gw-a
server:
  state_directory: {state}
  xca: {spool: {directory: {state}/spool}}
upstreams:
  pacs:
    protocol: wado-rs
    base_urls: [https://pacs.example.org/dicom-web/]
sources:
  1.2.3.5: pacs
"""


def check(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str, Path]:
    path = tmp_path / "gateway.yaml"
    path.write_text(text.replace("{state}", str(tmp_path / "state")))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["check-config", str(path), *args])
    return status, out.getvalue(), err.getvalue(), path


def report(tmp_path: Path, text: str, *args: str) -> dict[str, Any]:
    status, out, _, _ = check(tmp_path, text, "--format", "json", *args)
    (only,) = json.loads(out)["files"]
    assert status == (0 if only["valid"] else 1)
    return dict(only)


def test_a_good_file_passes(tmp_path: Path) -> None:
    status, out, err, path = check(tmp_path, GOOD)
    assert status == 0, err
    assert out.startswith(f"{path}: OK")


def test_a_duplicate_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = GOOD.replace("    protocol: wado-rs\n", "    protocol: wado-rs\n    protocol: rad-69\n")
    status, _, err, path = check(tmp_path, text)
    assert status == 1
    assert f"{path}:10:5: upstreams.pacs.protocol: duplicate key (first at line 9)" in err


def test_an_unknown_section_is_refused_where_it_is(tmp_path: Path) -> None:
    found = report(tmp_path, GOOD + "logging:\n  level: debug\n")
    assert found["problems"] == [
        {"path": "logging", "reason": "unknown field", "line": 13, "column": 1}
    ]


def test_a_field_problem_has_its_line_and_column(tmp_path: Path) -> None:
    found = report(tmp_path, GOOD.replace("https://pacs.example.org/dicom-web/", "pacs"))
    (problem,) = found["problems"]
    assert problem["path"] == "upstreams.pacs.base_urls[0]"
    assert (problem["line"], problem["column"]) == (10, 17)


def test_a_yaml_syntax_error_has_its_line_and_column(tmp_path: Path) -> None:
    status, _, err, path = check(tmp_path, GOOD.replace("[https", "[[https"))
    assert status == 1
    assert f"{path}:11:1: <document>: cannot be parsed" in err


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[list[str], str, Path]]:
    """(the --user arguments, that user's name, a folder they may reach and write): as root,
    the user nobody in a 0755 folder under /tmp (pytest's own folders are 0700)."""
    if os.geteuid() != 0:
        yield [], getpass.getuser(), tmp_path
        return
    base = Path(tempfile.mkdtemp(prefix="ops14-check-"))
    try:
        base.chmod(0o755)
        writable = base / "open"
        writable.mkdir(mode=0o777)
        writable.chmod(0o777)
        yield ["--user", "nobody"], "nobody", writable
    finally:
        shutil.rmtree(base)


def test_an_audit_folder_the_service_user_cannot_write_is_refused(
    tmp_path: Path, service: tuple[list[str], str, Path]
) -> None:
    user, name, writable = service
    locked = writable.parent / "locked"
    locked.mkdir(mode=0o755)
    locked.chmod(0o555)  # nobody but root writes here
    state = writable / "state"
    text = GOOD.replace("{state}", str(state)) + (
        f"audit:\n  journal: {{directory: {locked}/journal}}\n"
        f"  file: {{path: {writable}/audit.log}}\n"
    )
    found = report(tmp_path, text, "--workers", "1", *user)
    (problem,) = found["problems"]
    assert problem["path"] == "audit.journal.directory"
    expected = f"user {name} cannot create {locked}/journal ({locked} is not writable)"
    assert problem["reason"] == expected
    assert (problem["line"], problem["column"]) == (14, 13)


def test_two_workers_need_two_writable_journals(
    tmp_path: Path, service: tuple[list[str], str, Path]
) -> None:
    user, name, writable = service
    audit = writable.parent / "audit"
    (audit / "journal").mkdir(parents=True)
    (audit / "journal").chmod(0o777)
    audit.chmod(0o555)  # journal exists and is writable; journal-1 cannot be made beside it
    text = GOOD.replace("{state}", str(writable / "state")) + (
        f"audit:\n  journal: {{directory: {audit}/journal}}\n"
        f"  file: {{path: {writable}/audit.log}}\n"
    )
    assert report(tmp_path, text, "--workers", "1", *user)["valid"]
    found = report(tmp_path, text, "--workers", "2", *user)
    assert [p["reason"] for p in found["problems"]] == [
        f"user {name} cannot create {audit}/journal-1 ({audit} is not writable)"
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_a_loopback_upstream_the_address_policy_refuses(tmp_path: Path, host: str) -> None:
    text = GOOD.replace("https://pacs.example.org/dicom-web/", f'"http://{host}:8042/dicom-web/"')
    found = report(tmp_path, text)
    (problem,) = found["problems"]
    assert problem["path"] == "upstreams.pacs.base_urls[0]"
    assert "(loopback), which the address policy refuses" in problem["reason"]
    assert "allow_loopback" in problem["reason"]
    assert (problem["line"], problem["column"]) == (10, 17)
    allowed = text + "address_policy: {allow_loopback: true}\n"
    assert report(tmp_path, allowed)["valid"]


def test_json_output_lists_every_file(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD.replace("{state}", str(tmp_path / "state")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"self": {"home_community_id": "1.2.3.4"}, "self": {}}')

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["check-config", str(good), str(bad), "--format", "json"])
    assert status == 1
    files = json.loads(out.getvalue())["files"]
    assert [entry["valid"] for entry in files] == [True, False]
    assert files[0]["summary"]["sources"] == 1
    assert len(files[0]["summary"]["sha256"]) == 64
    assert files[1]["problems"][0]["reason"].startswith("duplicate key 'self'")
