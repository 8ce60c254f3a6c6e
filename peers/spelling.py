"""A scripted Imaging Document Source whose metadata spells its own address every legal way.

This is deliberately a fake: Orthanc always writes plain absolute URLs, so it cannot show
what a gateway must do with a source that writes JSON escapes (``\\/``, ``\\u002F``), XML
character references (``&#47;``, ``&#x2F;``), upper-case schemes and hosts, percent-encoded
host letters, leading zeros in the port, network-path (``//host/…``), absolute-path
(``/dicom-web/…``) and relative-path (``instances/…``) references, an escaped
``BulkDataURI`` key, or a URL split by an XML comment. Everything else about it is real HTTP
on a loopback socket.

The source is reached as ``http://localhost:{port}/dicom-web/`` (a host name, so that letter
case has something to change). It serves one series:

* ``…/studies/{study}/series/{series}/metadata``: DICOM JSON (``Accept: application/dicom+json``)
  or multipart DICOM XML (``Accept: multipart/related; type="application/dicom+xml"``), one
  instance per spelling, each with a BulkDataURI (Pixel Data), a Retrieve URL and a Study
  Comments text that quotes the base URL; with ``Content-Location``, ``Link`` and a custom
  header that name the source.
* ``…/instances/{sop}/bulk/7fe00010``: the instance's bulk data, :func:`bulk_payload`.
"""

from __future__ import annotations

import hashlib
import html
import json
from dataclasses import dataclass, field
from typing import Self

from aiohttp import web

from peers.net import free_port

__all__ = [
    "SERIES",
    "STUDY",
    "SpellingSource",
    "bulk_payload",
    "json_spellings",
    "xml_spellings",
]

STUDY = "1.2.826.0.1.3680043.10.77.1"
SERIES = "1.2.826.0.1.3680043.10.77.1.1"
BOUNDARY = "spelling-boundary-42"


def bulk_payload(sop: str) -> bytes:
    """The bulk data the source serves for one instance: 4 KiB that depend on its UID."""
    return hashlib.sha256(sop.encode()).digest() * 128


def _u(text: str, upper: bool = False) -> str:
    """Every character as a JSON ``\\uXXXX`` escape."""
    return "".join(f"\\u{ord(c):04X}" if upper else f"\\u{ord(c):04x}" for c in text)


def _refs(text: str) -> str:
    """Every character as an XML hexadecimal character reference with leading zeros."""
    return "".join(f"&#x000{ord(c):x};" for c in text)


def json_spellings(port: int) -> list[tuple[str, str]]:
    """``(raw JSON string content, what it must read as)`` for each BulkDataURI spelling.

    The second element is the path below the base URL that the reference designates,
    relative to ``studies/{STUDY}/series/{SERIES}/``; the raw text is written into a JSON
    string as is (its escapes are JSON escapes).
    """
    base = f"http://localhost:{port}/dicom-web/"
    return [
        (base, ""),
        (f"HTTP://LOCALHOST:{port}/dicom-web/", ""),
        (base.replace("/", "\\/"), ""),
        (f"http\\u003a\\u002F\\u002flocalhost:{port}\\u002Fdicom-web\\u002F", ""),
        (_u(base), ""),
        (_u(base, upper=True), ""),
        ("/dicom-web/", ""),
        ("", "relative-path"),
        (f"//LocalHost:{port}/dicom-web/", ""),
        (f"http://l%6Fcalhost:0{port}/dicom-web/", ""),
        (f"http://localhost:{port}/dicom-web/studies/../", ""),
        (f"http:\\\\\\\\localhost:{port}\\\\dicom-web\\\\", ""),
    ]


def xml_spellings(port: int) -> list[tuple[str, str]]:
    """As :func:`json_spellings`, for XML attribute values (character references)."""
    base = f"http://localhost:{port}/dicom-web/"
    return [
        (base, ""),
        (f"HTTP://LocalHost:{port}/dicom-web/", ""),
        (base.replace("/", "&#47;"), ""),
        (base.replace("/", "&#x2F;").replace(":", "&#58;"), ""),
        (_refs(base), ""),
        ("/dicom-web/", ""),
        ("", "relative-path"),
        (f"//LOCALHOST:{port}/dicom-web/", ""),
        (f"http://localhost:000{port}/dicom-web/", ""),
    ]


@dataclass
class SpellingSource:
    """``async with SpellingSource() as source: source.base_url`` — serving until the block ends."""

    port: int = field(default_factory=free_port)
    requests: list[str] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://localhost:{self.port}/dicom-web/"

    @property
    def sops(self) -> list[str]:
        count = max(len(json_spellings(self.port)), len(xml_spellings(self.port)))
        return [f"{SERIES}.{number}" for number in range(1, count + 1)]

    async def __aenter__(self) -> Self:
        app = web.Application()
        root = "/dicom-web/studies/{study}/series/{series}"
        app.router.add_get(root + "/metadata", self._metadata)
        app.router.add_get(root + "/instances/{sop}/bulk/{tag}", self._bulk)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def _headers(self, request: web.Request) -> dict[str, str]:
        own = f"http://localhost:{self.port}{request.path}"
        return {
            "Content-Location": own,
            "Link": f'<{own}>; rel="self", </dicom-web/studies/{STUDY}>; rel="up"',
            "X-Served-By": f"localhost:{self.port}",
        }

    async def _metadata(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        if "dicom+xml" in request.headers.get("Accept", ""):
            body = self.xml_document().encode()
            content_type = f'multipart/related; type="application/dicom+xml"; boundary={BOUNDARY}'
        else:
            body = self.json_document().encode()
            content_type = "application/dicom+json"
        headers = {**self._headers(request), "Content-Type": content_type}
        return web.Response(body=body, headers=headers)

    async def _bulk(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        payload = bulk_payload(request.match_info["sop"])
        boundary = "bulk-boundary"
        body = (
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
            + payload
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f'multipart/related; type="application/octet-stream"; boundary={boundary}'
        return web.Response(body=body, headers={"Content-Type": content_type})

    def _bulk_tail(self, sop: str, kind: str) -> str:
        if kind == "relative-path":
            return f"instances/{sop}/bulk/7fe00010"
        return f"studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"

    def _study_tail(self, kind: str) -> str:
        # From …/studies/{STUDY}/series/{SERIES}/metadata, three levels up is …/studies/.
        return f"../../../{STUDY}" if kind == "relative-path" else f"studies/{STUDY}"

    def json_document(self) -> str:
        """One JSON object per spelling; written by hand so that the escapes stay as spelled."""
        items = []
        spellings = json_spellings(self.port)
        for number, sop in enumerate(self.sops):
            spelled, kind = spellings[number % len(spellings)]
            key = "BulkData\\u0055RI" if number % 3 == 1 else "BulkDataURI"
            comment = f'Prior at {spelled}studies/{STUDY} \\"quoted\\" caf\\u00e9'
            items.append(
                "{"
                f'"00080018": {{"vr": "UI", "Value": [{json.dumps(sop)}]}}, '
                f'"00081190": {{"Value": ["{spelled}{self._study_tail(kind)}"], "vr": "UR"}}, '
                f'"00324000": {{"vr": "LT", "Value": ["{comment}"]}}, '
                f'"7FE00010": {{"vr": "OW", "{key}": "{spelled}{self._bulk_tail(sop, kind)}"}}'
                "}"
            )
        return "[" + ",\n".join(items) + "]"

    def xml_document(self) -> str:
        """One multipart part per instance, each with its own Content-Length (which no longer
        holds once the URLs are rewritten)."""
        spellings = xml_spellings(self.port)
        parts = []
        for number, sop in enumerate(self.sops):
            spelled, kind = spellings[number % len(spellings)]
            attribute = "uri" if number % 2 else "URI"
            retrieve = f"{spelled}{self._study_tail(kind)}"
            if number % 3 == 0:
                retrieve = f"<![CDATA[{html.unescape(retrieve)}]]>"
            document = (
                '<?xml version="1.0" encoding="utf-8"?>\n'
                '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">\n'
                '  <DicomAttribute tag="00080018" vr="UI" keyword="SOPInstanceUID">'
                f'<Value number="1">{sop}</Value></DicomAttribute>\n'
                '  <DicomAttribute tag="00081190" vr="UR" keyword="RetrieveURL">'
                f'<Value number="1">{retrieve}</Value></DicomAttribute>\n'
                '  <DicomAttribute tag="00324000" vr="LT" keyword="StudyComments">'
                f'<Value number="1">Prior at http://local<!-- split -->host:{self.port}'
                f"/dicom-web/studies/{STUDY} &amp; more</Value></DicomAttribute>\n"
                '  <DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData">'
                f'<BulkData {attribute}="{spelled}{self._bulk_tail(sop, kind)}"/>'
                "</DicomAttribute>\n"
                "</NativeDicomModel>\n"
            ).encode()
            parts.append(
                f"--{BOUNDARY}\r\nContent-Type: application/dicom+xml\r\n"
                f"Content-Length: {len(document)}\r\n"
                f"Content-Location: http://localhost:{self.port}/dicom-web/studies/{STUDY}\r\n"
                "\r\n".encode()
                + document
                + b"\r\n"
            )
        return (b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()).decode()
