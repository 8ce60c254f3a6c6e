"""Throughput of the metadata rewriter on a few-MB document, in process (no sockets).

``python -m bench.rewrite [--instances 1000] [--runs 5] [--chunk 65536]``

Three documents of the same instances, shaped like Orthanc's series metadata (pretty-printed
JSON, one BulkDataURI per instance; multipart DICOM XML): plain JSON, JSON written with every
``/`` escaped (as PHP's json_encode does; the slow path), and XML. Each is fed in ``--chunk``
blocks; the median of ``--runs`` is printed in MB/s of input.
"""

from __future__ import annotations

import argparse
import statistics
import time

from gateway.protocols.xcwado.border import Border
from gateway.protocols.xcwado.metadata import metadata_rewriter

BASE = "http://127.0.0.1:8042/dicom-web/"
PUBLIC = "https://gw.example.org/wado/homeCommunityId/1.2.3/RetrieveLocationUID/4.5.6/"
STUDY = "2.25.280715050734737321878122379533318068654"
SERIES = "2.25.92137622863863319500437315788915165986"

_ATTRIBUTES = [
    ("00080005", "CS", "ISO_IR 192"),
    ("00080008", "CS", "ORIGINAL"),
    ("00080016", "UI", "1.2.840.10008.5.1.4.1.1.2"),
    ("00080020", "DA", "20260101"),
    ("00080030", "TM", "120000"),
    ("00080050", "SH", "ACC0001"),
    ("00080060", "CS", "CT"),
    ("00080070", "LO", "mado-gateway test harness"),
    ("00081030", "LO", "CT CHEST W/O CONTRAST"),
    ("0008103E", "LO", "AXIAL 5MM"),
    ("00100020", "LO", "MADO-0001"),
    ("00100021", "LO", "1.2.826.0.1.3680043.10.1234"),
    ("00100030", "DA", "19700101"),
    ("00100040", "CS", "O"),
    ("00180050", "DS", "5"),
    ("00180060", "KV", "120"),
    ("0020000D", "UI", STUDY),
    ("0020000E", "UI", SERIES),
    ("00200011", "IS", "1"),
    ("00200032", "DS", "-250"),
    ("00200037", "DS", "1"),
    ("00200052", "UI", "2.25.1234567890"),
    ("00201041", "DS", "-125.5"),
    ("00280002", "US", "1"),
    ("00280004", "CS", "MONOCHROME2"),
    ("00280010", "US", "512"),
    ("00280011", "US", "512"),
    ("00280030", "DS", "0.7"),
    ("00280100", "US", "16"),
    ("00280101", "US", "12"),
    ("00280102", "US", "11"),
    ("00280103", "US", "0"),
    ("00281050", "DS", "40"),
    ("00281051", "DS", "400"),
    ("00281052", "DS", "-1024"),
    ("00281053", "DS", "1"),
]


def json_document(instances: int, *, escaped: bool = False) -> bytes:
    items = []
    for number in range(instances):
        sop = f"2.25.{4815828228831850608668662767419392521 + number}"
        members = [
            f'\t"{tag}" : \n\t{{\n\t\t"Value" : \n\t\t[\n\t\t\t"{value}"\n\t\t],\n\t\t"vr" : "{vr}"\n\t}}'
            for tag, vr, value in [*_ATTRIBUTES, ("00080018", "UI", sop)]
        ]
        members.append(
            '\t"00100010" : \n\t{\n\t\t"Value" : \n\t\t[\n\t\t\t{\n\t\t\t\t"Alphabetic" : '
            '"Demo^Patient"\n\t\t\t}\n\t\t],\n\t\t"vr" : "PN"\n\t}'
        )
        uri = f"{BASE}studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"
        members.append(
            f'\t"7FE00010" : \n\t{{\n\t\t"BulkDataURI" : "{uri}",\n\t\t"vr" : "OW"\n\t}}'
        )
        items.append("{\n" + ",\n".join(members) + "\n}")
    text = "[" + ",".join(items) + "]\n"
    return (text.replace("/", "\\/") if escaped else text).encode()


def xml_document(instances: int) -> tuple[bytes, str]:
    boundary = "bench-boundary"
    parts = []
    for number in range(instances):
        sop = f"2.25.{4815828228831850608668662767419392521 + number}"
        rows = [
            f'  <DicomAttribute tag="{tag}" vr="{vr}" keyword="K{tag}">\n'
            f'    <Value number="1">{value}</Value>\n  </DicomAttribute>\n'
            for tag, vr, value in [*_ATTRIBUTES, ("00080018", "UI", sop)]
        ]
        uri = f"{BASE}studies/{STUDY}/series/{SERIES}/instances/{sop}/bulk/7fe00010"
        rows.append(
            '  <DicomAttribute tag="7FE00010" vr="OW" keyword="PixelData">\n'
            f'    <BulkData URI="{uri}" />\n  </DicomAttribute>\n'
        )
        document = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM">\n'
            + "".join(rows)
            + "</NativeDicomModel>\n"
        ).encode()
        parts.append(
            f"--{boundary}\r\nContent-Type: application/dicom+xml\r\n"
            f"Content-Length: {len(document)}\r\n\r\n".encode()
            + document
            + b"\r\n"
        )
    content_type = f'multipart/related; type="application/dicom+xml"; boundary={boundary}'
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), content_type


def throughput(body: bytes, content_type: str, *, chunk: int, runs: int) -> float:
    border = Border.create(
        bases=(BASE,), request_url=f"{BASE}studies/{STUDY}/series/{SERIES}/metadata", public=PUBLIC
    )
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    rates = []
    for _ in range(runs):
        rewriter = metadata_rewriter(content_type, border)
        assert rewriter is not None
        started = time.perf_counter()
        out = [rewriter.feed(c) for c in chunks]
        out.append(rewriter.flush())
        elapsed = time.perf_counter() - started
        assert BASE.encode() not in b"".join(out)
        rates.append(len(body) / elapsed / 1e6)
    return statistics.median(rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=65536)
    args = parser.parse_args()
    xml, xml_type = xml_document(args.instances)
    cases = [
        ("DICOM JSON", json_document(args.instances), "application/dicom+json"),
        (
            "DICOM JSON, every / escaped",
            json_document(args.instances, escaped=True),
            "application/dicom+json",
        ),
        ("multipart DICOM XML", xml, xml_type),
    ]
    for name, body, content_type in cases:
        rate = throughput(body, content_type, chunk=args.chunk, runs=args.runs)
        print(f"{name:30} {len(body) / 1e6:6.1f} MB  {rate:7.1f} MB/s")


if __name__ == "__main__":
    main()
