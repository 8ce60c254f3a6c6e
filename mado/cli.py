"""The ``manifest`` command of ``mado-gateway``: validate, convert and create MADO manifests.

::

    mado-gateway manifest validate FILE [--format text|json]
    mado-gateway manifest convert FILE --to fhir|kos --out FILE
    mado-gateway manifest create --metadata FILE.json --retrieve-location-uid OID
                                 [--retrieve-url URL] [--institution NAME] --out FILE.dcm

The gateway's CLI registers it with :func:`add_commands`. Exit status: 0 on success, 1 when
``validate`` finds errors or any command fails on its input, with a one-line message on
standard error naming the problem (never a traceback). Every input is parsed in a worker
process under the limits ``POST /mado/retrieve`` applies (:mod:`mado.sandbox`): a manifest
that inflates, nests or sprawls past them is refused with a message, not a hung command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from mado.create import SeriesLocation
from mado.errors import ManifestError
from mado.jobs import convert_manifest, create_manifest, validate_manifest
from mado.load import read_file
from mado.model import Manifest
from mado.sandbox import ManifestWorkers
from routing.errors import InvalidIdentifier
from routing.ids import Oid

__all__ = ["add_commands"]

T = TypeVar("T")


def add_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``manifest`` and its subcommands; each sets ``run`` to a ``func(args) -> int``."""
    manifest = subparsers.add_parser("manifest", help="validate, convert and create MADO manifests")
    commands = manifest.add_subparsers(title="manifest commands", metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check a manifest against the MADO content requirements"
    )
    validate.add_argument("file", metavar="FILE")
    validate.add_argument("--format", choices=("text", "json"), default="text")
    validate.set_defaults(run=_validate)

    convert = commands.add_parser("convert", help="convert a manifest between DICOM KOS and FHIR")
    convert.add_argument("file", metavar="FILE")
    convert.add_argument("--to", choices=("fhir", "kos"), required=True)
    convert.add_argument("--out", required=True, metavar="FILE")
    convert.set_defaults(run=_convert)

    create = commands.add_parser("create", help="create a KOS manifest from WADO-RS study metadata")
    create.add_argument("--metadata", required=True, metavar="FILE.json")
    create.add_argument("--retrieve-location-uid", required=True, metavar="OID")
    create.add_argument("--retrieve-url", metavar="URL")
    create.add_argument("--institution", metavar="NAME")
    create.add_argument("--out", required=True, metavar="FILE.dcm")
    create.set_defaults(run=_create)

    def _usage(args: argparse.Namespace) -> int:
        manifest.print_help(sys.stderr)
        return 2

    manifest.set_defaults(run=_usage)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _in_worker(job: Callable[..., T], path: str, *args: Any) -> T:
    """``job(bytes of path, path, *args)`` in a bounded worker process."""
    workers = ManifestWorkers(workers=1)
    try:
        return workers.run(job, path, *args, payload=read_file(path))
    finally:
        workers.close()


def _validate(args: argparse.Namespace) -> int:
    try:
        report = _in_worker(validate_manifest, args.file)
    except ManifestError as exc:
        return _fail(str(exc))
    if args.format == "json":
        sys.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(report.as_text())
    return 0 if report.ok else 1


def _convert(args: argparse.Namespace) -> int:
    return _write(
        args.out, args.to.upper(), lambda: _in_worker(convert_manifest, args.file, args.to)
    )


def _create(args: argparse.Namespace) -> int:
    try:
        location = SeriesLocation(
            retrieve_location_uid=Oid(args.retrieve_location_uid), retrieve_url=args.retrieve_url
        )
    except InvalidIdentifier as exc:
        return _fail(f"--retrieve-location-uid: {exc}")
    return _write(
        args.out,
        "KOS",
        lambda: (*_in_worker(create_manifest, args.metadata, location, args.institution), ()),
    )


def _write(
    out: str, kind: str, produce: Callable[[], tuple[bytes, Manifest, Sequence[object]]]
) -> int:
    """Write the manifest ``produce`` makes to ``out``, then say what it holds."""
    try:
        data, manifest, findings = produce()
        Path(out).write_bytes(data)
    except ManifestError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{out}: cannot write ({exc.strerror})")
    instances = sum(len(s.instances) for s in manifest.series)
    print(
        f"{out}: {kind} manifest for study {manifest.study.uid}, "
        f"{len(manifest.series)} series, {instances} instances"
    )
    for finding in findings:
        print(f"  note: {finding}", file=sys.stderr)
    return 0
