"""The gateway's public URL when ``server.public_url`` is unset (issue 16, item 3a).

Requests are written on a raw socket so that the ``Host`` header is exactly what a client (or
an attacker) sends: without a port, an IPv6 literal, malformed, repeated or missing.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from gateway.settings import ServerSettings
from peers.faults import FaultUpstream
from tests.functional.inprocess import Running, running_gateway

PATH = "/wado/homeCommunityId/5.6.7.8/RetrieveLocationUID/1.2.3.1/studies/1.2/metadata"


async def raw_get(port: int, host_lines: list[str]) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request with exactly ``host_lines`` as its Host header lines."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"GET {PATH} HTTP/1.1", *host_lines, "Accept: application/dicom+json"]
    writer.write(("\r\n".join([*head, "Connection: close", "", ""])).encode("latin-1"))
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head_bytes, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    body = _dechunk(rest) if headers.get("transfer-encoding") == "chunked" else rest
    return int(status_line.split()[1]), headers, body


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return bytes(out)


def bulk_uri(body: bytes) -> str:
    uri: str = json.loads(body)[0]["7FE00010"]["BulkDataURI"]
    return uri


def port_of(gw: Running) -> int:
    port = gw.server.port
    assert port is not None
    return port


@pytest.mark.parametrize(
    ("host", "authority"),
    [
        ("127.0.0.1", "127.0.0.1:{port}"),  # dicomweb-client: no port in Host
        ("127.0.0.1:{port}", "127.0.0.1:{port}"),
        ("LocalHost", "localhost:{port}"),
        ("gateway.example.org.", "gateway.example.org.:{port}"),
        ("[::1]", "[::1]:{port}"),
        ("[0:0::1]:{port}", "[::1]:{port}"),
        ("gateway.example.org:80", "gateway.example.org"),  # the scheme's default port
        ("gateway.example.org:", "gateway.example.org:{port}"),  # empty port: none given
    ],
)
async def test_links_name_the_port_the_request_arrived_on(host: str, authority: str) -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"metadata": [up.base_url + "metadata/"]}) as gw,
    ):
        port = port_of(gw)
        status, _, body = await raw_get(port, [f"Host: {host.format(port=port)}"])
    assert status == 200
    expected = f"http://{authority.format(port=port)}{PATH.rsplit('/studies/', 1)[0]}/studies/"
    assert bulk_uri(body).startswith(expected), bulk_uri(body)


@pytest.mark.parametrize(
    "host_lines",
    [
        ['Host: evil"}],"x":"'],
        ["Host: <script>"],
        ["Host: a b"],
        ["Host: user@gateway.example.org"],
        ["Host: gateway.example.org/path"],
        ["Host: [::1"],
        ["Host: [fe80::1%25eth0]"],
        ["Host: gateway.example.org:99999"],
        ["Host: gateway.example.org:0"],
        ["Host: gateway.example.org:80:80"],
        ["Host: g%61teway.example.org"],
        ["Host: -bad.example.org"],
        ["Host: 999.1.1.1"],
        ["Host: " + "a" * 64 + ".example.org"],
        ["Host: "],
        ["Host: gateway.example.org", "Host: other.example.org"],
        [],  # HTTP/1.1 requires one (aiohttp refuses the request itself)
    ],
)
async def test_a_malformed_host_is_refused_and_never_reflected(host_lines: list[str]) -> None:
    async with (
        FaultUpstream() as up,
        running_gateway({"metadata": [up.base_url + "metadata/"]}) as gw,
    ):
        status, headers, body = await raw_get(port_of(gw), host_lines)
        assert up.connections == 0
    assert status == 400
    if headers.get("content-type") == "application/problem+json":
        problem = json.loads(body)
        assert problem["type"] == "urn:mado-gateway:problem:invalid-host"
    for line in host_lines:
        value = line.partition(":")[2].strip()
        if value:
            assert value.encode() not in body


async def test_public_url_wins_over_any_valid_host() -> None:
    settings = ServerSettings(public_url="https://gw.example.org/x/")
    async with (
        FaultUpstream() as up,
        running_gateway({"metadata": [up.base_url + "metadata/"]}, settings=settings) as gw,
    ):
        status, _, body = await raw_get(port_of(gw), ["Host: attacker.example.net"])
    assert status == 200
    assert bulk_uri(body).startswith("https://gw.example.org/x/homeCommunityId/")
    assert b"attacker" not in body
