"""A real browser POSTs a manifest (issue 16, item 4): headless Chromium, a gateway process,
Orthanc.

A page served from an allowed origin (another port of 127.0.0.1: another origin) fetches a
MADO KOS manifest from its own server, POSTs it to the gateway's ``/mado/retrieve`` with
``Content-Type: application/dicom`` — which makes Chromium send a CORS preflight first —
reads the multipart answer, splits it and hashes every part, then tries a ``PUT`` that the
route does not take. It reports what it saw to the server that served it. The instances'
SHA-256 must be those of the files Orthanc holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pydicom
from aiohttp import web

from mado.create import SeriesLocation, build_manifest
from mado.load import write_path
from peers.browser import HeadlessChromium
from peers.gateway import GatewayProcess, gateway_config
from peers.net import free_port
from peers.orthanc import OrthancServer
from peers.studies import make_study
from routing.ids import Oid

OWN = "1.3.6.1.4.1.21367.13.70.9"
RLUID = "1.3.6.1.4.1.21367.13.70.9.1"

PAGE = """<!doctype html>
<title>viewer</title>
<script>
const GATEWAY = "%(gateway)s";
const HCID = "%(hcid)s";
function split(bytes, boundary) {
  const delimiter = new TextEncoder().encode("--" + boundary);
  const found = [];
  outer: for (let i = 0; i + delimiter.length <= bytes.length; i++) {
    for (let j = 0; j < delimiter.length; j++) if (bytes[i + j] !== delimiter[j]) continue outer;
    found.push(i);
  }
  const parts = [];
  for (let k = 0; k + 1 < found.length; k++) {
    let h = found[k] + delimiter.length + 2;
    while (!(bytes[h] === 13 && bytes[h + 1] === 10 && bytes[h + 2] === 13 && bytes[h + 3] === 10)) h++;
    parts.push(bytes.subarray(h + 4, found[k + 1] - 2));
  }
  return parts;
}
async function sha256(part) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", part));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}
async function run() {
  const report = {};
  try {
    const manifest = await (await fetch("/manifest.dcm")).arrayBuffer();
    const answer = await fetch(GATEWAY + "/mado/retrieve?homeCommunityId=" + HCID, {
      method: "POST",
      body: manifest,
      headers: {"Content-Type": "application/dicom"},
    });
    report.status = answer.status;
    report.contentType = answer.headers.get("Content-Type");
    const bytes = new Uint8Array(await answer.arrayBuffer());
    const boundary = /boundary="?([^";]+)"?/.exec(report.contentType)[1];
    report.digests = [];
    for (const part of split(bytes, boundary)) report.digests.push(await sha256(part));
  } catch (error) {
    report.error = String(error);
  }
  try {
    await fetch(GATEWAY + "/mado/retrieve", {method: "PUT", body: "x"});
    report.put = "allowed";
  } catch (error) {
    report.put = "refused: " + error.name;
  }
  await fetch("/report", {method: "POST", body: JSON.stringify(report)});
}
run();
</script>
"""


async def test_chromium_posts_a_manifest_and_reads_the_multipart_answer(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    study = make_study(seed="browser", series_count=2, instances_per_series=3, rows=8, columns=8)
    orthanc.upload_all([i.part10 for i in study.instances])
    datasets = [pydicom.dcmread(io.BytesIO(i.part10)) for i in study.instances]
    manifest = build_manifest(datasets, SeriesLocation(retrieve_location_uid=Oid(RLUID)))
    write_path(manifest, tmp_path / "manifest.dcm", "kos")

    page_port = free_port()
    page_origin = f"http://127.0.0.1:{page_port}"
    config = gateway_config(
        home_community_id=OWN,
        port=free_port(),
        upstreams={"orthanc": {"protocol": "wado-rs", "base_urls": [orthanc.dicomweb_url]}},
        sources={RLUID: "orthanc"},
    )
    config["server"]["cors"] = {"allowed_origins": [page_origin]}
    reported: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def page(request: web.Request) -> web.Response:
        html = PAGE % {"gateway": gateway.url, "hcid": OWN}
        return web.Response(text=html, content_type="text/html")

    async def manifest_file(request: web.Request) -> web.FileResponse:
        return web.FileResponse(tmp_path / "manifest.dcm")

    async def report(request: web.Request) -> web.Response:
        if not reported.done():
            reported.set_result(json.loads(await request.read()))
        return web.Response(status=204)

    site = web.Application()
    site.router.add_get("/", page)
    site.router.add_get("/manifest.dcm", manifest_file)
    site.router.add_post("/report", report)
    runner = web.AppRunner(site)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", page_port).start()
    gateway = GatewayProcess(tmp_path / "gw", config)
    try:
        with gateway, HeadlessChromium(tmp_path / "chromium", page_origin + "/") as browser:
            try:
                seen = await asyncio.wait_for(reported, timeout=60)
            except TimeoutError:
                raise AssertionError(f"the page never reported:\n{browser.log()}") from None
            refused = gateway.metric(
                'mado_gateway_inbound_refusals_total{reason="cors-method-refused"}'
            )
    finally:
        await runner.cleanup()

    assert "error" not in seen, seen  # the page could read the answer: CORS allowed it
    assert seen["status"] == 200
    assert seen["contentType"].startswith('multipart/related; type="application/dicom"')
    expected = sorted(hashlib.sha256(i.part10).hexdigest() for i in study.instances)
    assert sorted(seen["digests"]) == expected
    assert seen["put"] == "refused: TypeError"  # the preflight for PUT was refused …
    assert refused == 1  # … by the route's method rule, not the origin rule
