"""RFC 5424 syslog messages carrying audit XML (IHE ITI-20, DICOM PS3.15 A.6/A.7).

``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM XML``:

* PRI is facility 10 (security/authorization) * 8 + severity; ATNA uses severity 5 (notice),
  hence ``<85>`` (RFC 5424 §6.2.1; ITI TF-2 3.20).
* MSGID ``IHE+RFC-3881`` (ITI-20), STRUCTURED-DATA nil (``-``).
* MSG is the UTF-8 XML preceded by the byte order mark, the RFC 5424 §6.4 ``MSG-UTF8`` form.
* Header fields are printable US-ASCII without spaces and no longer than RFC 5424 §6
  allows (HOSTNAME 255, APP-NAME 48, PROCID 128, MSGID 32); other characters become ``_``,
  an empty field becomes the nil value ``-``.

Framing on a stream (RFC 5425 §4.3 octet counting, used over TLS): ``MSG-LEN SP SYSLOG-MSG``
with MSG-LEN the decimal octet count of SYSLOG-MSG, BOM included. Over UDP (RFC 5426 §3.1)
a datagram holds exactly one SYSLOG-MSG, unframed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gateway.audit.render import format_datetime

__all__ = [
    "BOM",
    "AUDIT_FACILITY",
    "MSGID",
    "SyslogHeader",
    "format_message",
    "frame",
    "parse_frame",
]

BOM = b"\xef\xbb\xbf"
AUDIT_FACILITY = 10
NOTICE = 5
MSGID = "IHE+RFC-3881"
_NON_PRINTABLE = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True, slots=True, kw_only=True)
class SyslogHeader:
    """The constant part of every header this process writes."""

    hostname: str
    app_name: str
    procid: str


def format_message(
    xml: bytes, *, header: SyslogHeader, timestamp: datetime, severity: int = NOTICE
) -> bytes:
    """One SYSLOG-MSG: the RFC 5424 header, nil structured data, BOM and ``xml``."""
    if not 0 <= severity <= 7:
        raise ValueError("syslog severity is 0..7")
    head = " ".join(
        (
            f"<{AUDIT_FACILITY * 8 + severity}>1",
            format_datetime(timestamp),
            _field(header.hostname, 255),
            _field(header.app_name, 48),
            _field(header.procid, 128),
            MSGID,
            "-",
        )
    )
    return head.encode("ascii") + b" " + BOM + xml


def frame(message: bytes) -> bytes:
    """RFC 5425 §4.3 octet-counting frame: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


def parse_frame(data: bytes) -> tuple[bytes, bytes] | None:
    """Split the first octet-counted frame off ``data``: ``(message, rest)``, or None when
    ``data`` does not yet hold a whole frame. Raises ``ValueError`` on a malformed length."""
    space = data.find(b" ", 0, 11)
    if space == -1:
        if len(data) > 10 or (data and not data.isdigit()):
            raise ValueError("frame does not start with an octet count")
        return None
    digits = data[:space]
    if not digits.isdigit() or digits.startswith(b"0"):
        raise ValueError("frame does not start with an octet count")
    length = int(digits)
    end = space + 1 + length
    if len(data) < end:
        return None
    return data[space + 1 : end], data[end:]


def _field(value: str, limit: int) -> str:
    cleaned = _NON_PRINTABLE.sub("_", value)[:limit]
    return cleaned or "-"
