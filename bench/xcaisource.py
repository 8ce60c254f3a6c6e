"""A synthetic WADO-RS Imaging Document Source for the XCA-I benchmark (:mod:`bench.xcai`).

Run in its own process (``python -m bench.xcaisource PORT``): :mod:`peers.instancesource`
(instance-level GETs, PS3.18 §10.4.1, RAD-107), one Part 10 instance of about
``--instance-bytes`` bytes in Explicit VR Little Endian per answer. Its :class:`Catalogue`
makes the same bytes in the benchmark's own process, so SHA-256 is checked without asking
the source.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

from bench.sources import start_server
from peers.instancesource import EXPLICIT_LE, Catalogue, serve
from peers.net import free_port

__all__ = ["EXPLICIT_LE", "Catalogue", "start_source"]


def start_source(size: int, per_series: int) -> tuple[subprocess.Popen[bytes], str]:
    """The source in its own process, ready: (the process, its base URL ending in ``/``)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.xcaisource", str(port)]
    command += ["--instance-bytes", str(size), "--per-series", str(per_series)]
    first = Catalogue(size, per_series).document(0)
    probe = f"studies/{first.study_uid}/series/{first.series_uid}/instances/{first.sop_uid}"
    return start_server(command, port, probe)


def main() -> int:
    parser = argparse.ArgumentParser(description="Synthetic WADO-RS source of bench.xcai.")
    parser.add_argument("port", type=int)
    parser.add_argument("--instance-bytes", type=int, default=512 * 1024)
    parser.add_argument("--per-series", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(serve(args.port, Catalogue(args.instance_bytes, args.per_series)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
