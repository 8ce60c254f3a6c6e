"""RFC 5424 header and RFC 5425 octet-counting framing (spec-digest checklist 54-55)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.audit.syslog import BOM, SyslogHeader, format_message, frame, parse_frame

HEADER = SyslogHeader(hostname="gw1.example.org", app_name="mado-gateway", procid="123")
AT = datetime(2026, 3, 16, 10, 15, 30, 123456, tzinfo=UTC)
LINE = re.compile(
    rb"<(\d+)>1 (\S+) (\S+) (\S+) (\S+) IHE\+RFC-3881 - " + re.escape(BOM) + rb"<\?xml"
)


@pytest.mark.checklist(54)
def test_header_fields() -> None:
    message = format_message(b'<?xml version="1.0"?><a/>', header=HEADER, timestamp=AT)
    match = LINE.match(message)
    assert match is not None
    assert match.groups() == (
        b"85",
        b"2026-03-16T10:15:30.123Z",
        b"gw1.example.org",
        b"mado-gateway",
        b"123",
    )


@pytest.mark.checklist(54)
def test_warning_severity_gives_pri_84() -> None:
    assert format_message(b"<?xml", header=HEADER, timestamp=AT, severity=4).startswith(b"<84>1 ")
    with pytest.raises(ValueError, match="severity"):
        format_message(b"<?xml", header=HEADER, timestamp=AT, severity=8)


def test_header_fields_are_sanitised_and_truncated() -> None:
    header = SyslogHeader(hostname="host name\u00e9", app_name="a" * 60, procid="")
    message = format_message(b"<?xml", header=header, timestamp=AT)
    fields = message.split(b" ")
    assert fields[2] == b"host_name_"
    assert fields[3] == b"a" * 48
    assert fields[4] == b"-"


def test_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        format_message(b"<?xml", header=HEADER, timestamp=datetime(2026, 1, 1))


@pytest.mark.checklist(55)
def test_frame_counts_octets_including_the_bom() -> None:
    message = format_message("<?xml é".encode(), header=HEADER, timestamp=AT)
    framed = frame(message)
    count, _, rest = framed.partition(b" ")
    assert int(count) == len(rest) == len(message)


@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=5), st.integers(0, 50))
def test_frames_parse_back_from_a_stream_cut_anywhere(payloads: list[bytes], cut: int) -> None:
    stream = b"".join(frame(p) for p in payloads)
    cut = min(cut, len(stream))
    buffer, out = stream[:cut], []
    remaining = stream[cut:]
    while True:
        parsed = parse_frame(buffer)
        if parsed is None:
            if not remaining:
                break
            buffer, remaining = buffer + remaining, b""
            continue
        message, buffer = parsed
        out.append(message)
    assert out == payloads


@pytest.mark.parametrize("bad", [b"x12 abc", b"012 abc", b"99999999999 x"])
def test_malformed_frames_are_rejected(bad: bytes) -> None:
    with pytest.raises(ValueError, match="octet count"):
        parse_frame(bad)
