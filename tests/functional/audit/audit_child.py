"""A gateway stand-in for the crash test: journals audit messages and sends them until it
is killed. ``python -m tests.functional.audit.audit_child PORT JOURNAL CA CERT KEY COUNT``.

It prints ``journaled N`` after each exchange is in the journal, so the test knows exactly
which messages must survive the SIGKILL it is about to receive.
"""

from __future__ import annotations

import asyncio
import sys

from prometheus_client import CollectorRegistry

from gateway.audit.service import AuditService
from tests.functional.audit.auditpeer import IDENTITY, relayed, tls_settings


async def main(port: int, journal: str, ca: str, cert: str, key: str, count: int) -> None:
    settings = tls_settings(port=port, journal=journal, ca=ca, cert=cert, key=key)
    service = AuditService(settings, IDENTITY, registry=CollectorRegistry())
    await service.start()
    for index in range(count):
        service.observe(relayed(index))
        print(f"journaled {index}", flush=True)
        await asyncio.sleep(0.004)
    await asyncio.Event().wait()  # keep sending until killed


if __name__ == "__main__":
    port, journal, ca, cert, key, count = sys.argv[1:7]
    asyncio.run(main(int(port), journal, ca, cert, key, int(count)))
