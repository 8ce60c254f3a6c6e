"""CloseCheck.complete without a regular expression says what the RFC 2046 §5.1.1 pattern
says — a close delimiter, then only transport padding and, after a CRLF, anything — for any
tail (the pattern is spelled out here as the oracle)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from gateway.relay.multipart import CloseCheck, delimiter

BOUNDARY = "b1"
CLOSE = delimiter(BOUNDARY) + b"--"
ORACLE = re.compile(re.escape(CLOSE) + rb"[ \t]*(?:\r\n[\s\S]*)?\Z")
PIECES = st.sampled_from([CLOSE, b"\r\n", b" ", b"\t", b"-", b"b1", b"x", b"\r", b"\n", b"--"])


@given(st.lists(PIECES, max_size=12))
def test_complete_agrees_with_the_pattern(pieces: list[bytes]) -> None:
    tail = b"".join(pieces)
    assert CloseCheck(BOUNDARY).complete(tail) is (ORACLE.search(tail) is not None)
