"""``mado-gateway fetch``: retrieve what a MADO manifest names, into Part 10 files.

::

    mado-gateway fetch MANIFEST --out DIR
        [--gateway URL --home-community-id OID [--send-retrieve-url]
         [--location IDENTIFIER=OID …]]
        [--key-images-only | --series UID … | --modality CODE …]
        [--transfer-syntax UID]

Through an initiating gateway when ``--gateway`` and ``--home-community-id`` are given
(RAD-160, Retrieve Location UID mode), otherwise straight from the manifest's Retrieve URLs
(Retrieve URL mode). ``--key-images-only`` uses the manifest's key-image flags; a manifest
without them costs one more round: the Key Object series is retrieved first and its Key Image
Notes read (MADO Appendix A). Exit status: 0 when every retrieval completed (differences from
the manifest are reported, not failures: MADO X.1.1.2), 1 on any failure, 2 on usage errors.

A series whose location identifier is not an OID (``ACME`` in the MADO FHIR sample) is
retrieved through the Retrieve Location UID ``--location ACME=OID`` maps it to; without one,
through its Retrieve URL (``?retrieveurl=``, subject to the responding gateway's URL policy);
with neither, the command names the series and the identifier and exits 1.

A study or series the gateway answers with ``instance-list-required`` (its community speaks
only XCA-I, which cannot list a study, and it holds no manifest listing it) is retrieved
instance by instance instead, from the instances the manifest lists.

Every instance is asked for as the source stores it (``transfer-syntax=*``): the files are the
stored objects, byte for byte. ``--transfer-syntax UID`` asks the source to transcode instead.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from gateway.consumer import ConsumerError
from gateway.consumer.fetch import (
    AS_STORED,
    DirectorySink,
    FetchReport,
    MemorySink,
    dicom_accept,
    fetch_all,
)
from gateway.consumer.urls import Target, instance_urls, urls_for
from mado.errors import ManifestError
from mado.jobs import read_manifest, read_notes
from mado.load import read_file
from mado.model import Manifest
from mado.plan import (
    Plan,
    RetrieveRequest,
    plan_from_notes,
    plan_key_images,
    plan_series,
    plan_study,
)
from mado.sandbox import ManifestWorkers
from routing.errors import InvalidIdentifier
from routing.ids import HomeCommunityId, Oid, Uid
from routing.loader import parse_base_url

__all__ = ["add_commands"]


def add_commands(commands: Any) -> None:
    fetch = commands.add_parser(
        "fetch",
        help="retrieve the instances a MADO manifest names",
        description=__doc__.split("\n\n")[2] if __doc__ else None,
    )
    fetch.add_argument("manifest", metavar="MANIFEST", help="KOS (.dcm) or FHIR Bundle (.json)")
    fetch.add_argument("--out", required=True, type=Path, help="folder for the Part 10 files")
    fetch.add_argument("--gateway", help="initiating gateway's XC-WADO endpoint URL")
    fetch.add_argument("--home-community-id", help="community that holds the study (OID)")
    fetch.add_argument("--send-retrieve-url", action="store_true", help="add ?retrieveurl=")
    fetch.add_argument(
        "--location",
        action="append",
        default=[],
        metavar="IDENTIFIER=OID",
        help="the Retrieve Location UID an opaque location identifier stands for (repeatable)",
    )
    choice = fetch.add_mutually_exclusive_group()
    choice.add_argument("--key-images-only", action="store_true")
    choice.add_argument("--series", nargs="+", default=[], metavar="UID")
    choice.add_argument("--modality", nargs="+", default=[], metavar="CODE")
    fetch.add_argument("--concurrency", type=int, default=4, help="retrievals at once (default 4)")
    fetch.add_argument(
        "--transfer-syntax",
        default=AS_STORED,
        metavar="UID",
        help="ask the source for this transfer syntax (default *: the objects as stored)",
    )
    fetch.set_defaults(run=_run)


@dataclass
class _Bar:
    """One status line on a terminal, redrawn at most ten times a second."""

    enabled: bool
    last: float = 0.0

    def __call__(self, report: FetchReport, *, final: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not final and now - self.last < 0.1):
            return
        self.last = now
        count = len(report.received) + report.unnamed
        line = f"\r  {count} instances, {report.bytes / 1e6:,.1f} MB"
        print(line + ("\n" if final else ""), end="", file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    # The manifest, and any Key Object read for key images, is parsed in a worker process
    # under the same limits as POST /mado/retrieve (mado.sandbox).
    workers = ManifestWorkers(workers=1)
    try:
        target = _target(args)
        manifest, _ = workers.run(
            read_manifest, args.manifest, payload=read_file(args.manifest)
        )
        return asyncio.run(_fetch(args, manifest, target, workers))
    except (ManifestError, ConsumerError) as exc:
        print(f"mado-gateway fetch: {exc}", file=sys.stderr)
        return 1
    except _Usage as exc:
        print(f"mado-gateway fetch: {exc}", file=sys.stderr)
        return 2
    finally:
        workers.close()


class _Usage(Exception):
    pass


def _target(args: argparse.Namespace) -> Target:
    if bool(args.gateway) != bool(args.home_community_id):
        raise _Usage("--gateway and --home-community-id go together (or give neither)")
    if args.concurrency < 1:
        raise _Usage("--concurrency must be at least 1")
    if args.transfer_syntax != AS_STORED and not Uid.is_valid(args.transfer_syntax):
        raise _Usage(
            f"--transfer-syntax {args.transfer_syntax[:70]!r} is not a transfer syntax UID "
            "(or * for the objects as stored)"
        )
    locations = _locations(args.location)
    if not args.gateway:
        return Target()
    try:
        gateway = parse_base_url(args.gateway)
        hcid = HomeCommunityId(args.home_community_id)
    except (ValueError, InvalidIdentifier) as exc:
        raise _Usage(str(exc)) from None
    return Target(
        gateway=gateway,
        home_community_id=hcid,
        send_retrieve_url=args.send_retrieve_url,
        locations=locations,
    )


def _locations(values: list[str]) -> dict[str, Oid]:
    locations: dict[str, Oid] = {}
    for value in values:
        identifier, _, oid = value.rpartition("=")
        identifier = identifier.strip()
        if not identifier or not oid:
            raise _Usage(f"--location {value[:70]!r}: write IDENTIFIER=OID, e.g. ACME=1.2.3.4")
        try:
            locations[identifier] = Oid(oid)
        except InvalidIdentifier as exc:
            raise _Usage(
                f"--location {value[:70]!r}: {oid[:64]!r} is not an OID ({exc.reason})"
            ) from None
    return locations


async def _fetch(
    args: argparse.Namespace, manifest: Manifest, target: Target, workers: ManifestWorkers
) -> int:
    bar = _Bar(enabled=sys.stderr.isatty())
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        plan = await _plan(args, manifest, target, session, workers)
        if not plan.requests:
            print("mado-gateway fetch: the selection names no instance", file=sys.stderr)
            return 1
        urls = [url for request in plan.requests for url in urls_for(request, target)]
        fallbacks = _fallbacks(manifest, plan.requests, target)
        try:
            sink = DirectorySink(args.out)
        except OSError as exc:
            reason = f"--out {args.out}: cannot use it as a folder ({exc.strerror})"
            raise ConsumerError(reason) from None
        report = await fetch_all(
            urls,
            sink,
            session=session,
            concurrency=args.concurrency,
            progress=bar,
            accept=dicom_accept(args.transfer_syntax),
            fallbacks=fallbacks,
        )
        sink.close()
    bar(report, final=True)
    return _summary(report, _expected(manifest, plan.requests), args.out)


async def _plan(
    args: argparse.Namespace,
    manifest: Manifest,
    target: Target,
    session: aiohttp.ClientSession,
    workers: ManifestWorkers,
) -> Plan:
    if args.series or args.modality:
        return plan_series(manifest, series_uids=args.series, modalities=args.modality)
    if not args.key_images_only:
        return plan_study(manifest)
    plan = plan_key_images(manifest)
    if plan.key_images_available:
        return plan
    if not plan.key_object_series:
        raise ConsumerError("the manifest has no key-image flags and no Key Object series")
    print(
        "the manifest has no key-image flags: reading the Key Image Notes of its KO series",
        file=sys.stderr,
    )
    notes = MemorySink()
    urls = [url for request in plan.key_object_series for url in urls_for(request, target)]
    report = await fetch_all(urls, notes, session=session, accept=dicom_accept())
    if report.failures:
        raise report.failures[0]
    return plan_from_notes(
        manifest, await asyncio.to_thread(workers.run, read_notes, notes.objects)
    )


def _fallbacks(
    manifest: Manifest, requests: tuple[RetrieveRequest, ...], target: Target
) -> dict[str, list[str]]:
    """For each study- or series-level URL through a gateway, the instance-level URLs of
    every instance the manifest lists for it: what is retrieved instead when the gateway
    cannot list them (its community speaks XCA-I; a 409 ``instance-list-required``)."""
    if not target.through_gateway:
        return {}
    return {
        url: instance_urls(request, manifest, target)
        for request in requests
        if request.level != "instance"
        for url in urls_for(request, target)
    }


def _expected(manifest: Manifest, requests: tuple[RetrieveRequest, ...]) -> set[str]:
    expected: set[str] = set()
    for request in requests:
        if request.instance_uids:
            expected.update(request.instance_uids)
            continue
        for series in manifest.series:
            if request.series_uid is None or series.uid == request.series_uid:
                expected.update(i.sop_instance_uid for i in series.instances)
    return expected


def _summary(report: FetchReport, expected: set[str], out: Path) -> int:
    missing, extra = report.compare(expected)
    count = len(report.received) + report.unnamed
    print(f"{count} instances, {report.bytes:,} bytes received into {out}")
    if report.expanded:
        print(
            f"{len(report.expanded)} study or series request(s) retrieved instance by instance: "
            "the gateway's community speaks XCA-I and holds no list of their instances"
        )
    if missing:
        listed = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        print(f"{len(missing)} instance(s) the manifest lists did not arrive: {listed}")
    if extra:
        print(f"{len(extra)} instance(s) arrived that the manifest does not list")
    if report.unnamed:
        print(f"{report.unnamed} part(s) had no readable SOP Instance UID (stored under unnamed/)")
    for failure in report.failures:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if report.failures else 0
