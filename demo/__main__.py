"""A real cross-community retrieval through two gateway processes from a real Orthanc.

Community A keeps a 200-instance CT study in Orthanc (its Imaging Document Source) behind
its responding gateway; community B's initiating gateway lets B's consumers ask for it by
homeCommunityId and Retrieve Location UID. The demo retrieves the study through B and A,
retrieves it again straight from Orthanc, and says whether the two are identical.
"""

from __future__ import annotations

import io
import shlex
import shutil
import sys
import time
import urllib.request
from pathlib import Path

import pydicom

from peers.chain import COMMUNITY_A, RLUID, chain_configs
from peers.gateway import REPO, GatewayProcess
from peers.multipart import boundary_of, split_multipart
from peers.orthanc import OrthancServer
from peers.studies import make_study

ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'


def fetch(url: str) -> tuple[str, bytes, float]:
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(request, timeout=120) as answer:
        body = answer.read()
        return answer.headers["Content-Type"], body, time.monotonic() - started


_EVENTS = {
    b'<EventID csd-code="110100"': "Application Activity",
    b'<EventID csd-code="110102"': "Begin Transferring DICOM Instances",
    b'<EventID csd-code="110103"': "DICOM Instances Accessed",
    b'<EventID csd-code="110104"': "DICOM Instances Transferred",
    b'<EventID csd-code="110113"': "Security Alert",
}


def _audit_events(log: Path) -> dict[str, int]:
    """Audit messages in a gateway's audit file, counted by event."""
    counts: dict[str, int] = {}
    for line in log.read_bytes().splitlines() if log.exists() else []:
        for marker, name in _EVENTS.items():
            if marker in line:
                counts[name] = counts.get(name, 0) + 1
    return counts


def say(text: str = "") -> None:
    print(text, flush=True)


def main() -> int:
    out = REPO / "demo-output"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    say("mado-gateway demo: community B retrieves a study held by community A\n")
    study = make_study(
        seed="make-demo", series_count=2, instances_per_series=100, rows=256, columns=256
    )
    say(
        f"1. Generated a CT study: {len(study.instances)} instances in {len(study.series_uids)} series,"
    )
    say(f"   Study Instance UID {study.study_uid}")

    with OrthancServer(out / "orthanc", name="community-a-ids") as orthanc:
        orthanc.upload_all([i.part10 for i in study.instances])
        say(f"2. Orthanc (community A's Imaging Document Source) holds it: {orthanc.dicomweb_url}")

        responding, initiating = chain_configs(orthanc.dicomweb_url)
        folder = out / "gateways"
        with (
            GatewayProcess(folder, responding, name="responding-gateway-a") as gateway_a,
            GatewayProcess(folder, initiating, name="initiating-gateway-b") as gateway_b,
        ):
            say(
                f"3. Responding gateway A: {gateway_a.endpoint}  (config {gateway_a.config_file.relative_to(REPO)})"
            )
            say(
                f"   Initiating gateway B: {gateway_b.endpoint}  (config {gateway_b.config_file.relative_to(REPO)})"
            )

            url = (
                f"{gateway_b.endpoint}homeCommunityId/{COMMUNITY_A}/RetrieveLocationUID/{RLUID}"
                f"/studies/{study.study_uid}"
            )
            say("\n4. The XC-WADO Retrieve [RAD-160] a consumer in community B sends:\n")
            say(
                f"   curl -o study.multipart -H {shlex.quote('Accept: ' + ACCEPT)} \\\n     {shlex.quote(url)}\n"
            )
            content_type, body, seconds = fetch(url)
            direct_type, direct_body, direct_seconds = fetch(
                f"{orthanc.dicomweb_url}studies/{study.study_uid}"
            )
        # The gateways have stopped: Application Stop is written, the journals are drained.
        audit = {
            gw.name: _audit_events(gw.audit_folder / "audit.log") for gw in (gateway_a, gateway_b)
        }

    parts = split_multipart(body, content_type)
    stored = {i.sop_instance_uid: i.part10 for i in study.instances}
    received = {
        pydicom.dcmread(io.BytesIO(p.body), stop_before_pixels=True).SOPInstanceUID: p.body
        for p in parts
    }
    same_as_direct = body.replace(boundary_of(content_type).encode(), b"B") == direct_body.replace(
        boundary_of(direct_type).encode(), b"B"
    )
    same_as_stored = received == stored
    say("5. What came back:")
    say(f"   Content-Type:             {content_type.split('; boundary=')[0]}")
    say(f"   instances:                {len(parts)} (stored: {len(study.instances)})")
    say(f"   bytes:                    {len(body):,} through both gateways in {seconds:.2f} s")
    say(f"   direct from Orthanc:      {len(direct_body):,} bytes in {direct_seconds:.2f} s")
    say(f"   identical to a direct retrieval (boundary aside): {'yes' if same_as_direct else 'NO'}")
    say(
        f"   every instance byte-identical to what was stored:  {'yes' if same_as_stored else 'NO'}"
    )
    say("6. The ATNA audit trail each gateway wrote (DICOM PS3.15 A.5 in RFC 5424, to a file):")
    for name, events in audit.items():
        listed = ", ".join(f"{count} {event}" for event, count in sorted(events.items()))
        say(f"   {name}: {listed}")
    say(f"\nLogs of both gateways and Orthanc, and the audit files: {out.relative_to(REPO)}/")
    return 0 if same_as_direct and same_as_stored else 1


if __name__ == "__main__":
    sys.exit(main())
