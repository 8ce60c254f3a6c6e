"""The multipart core: the splitter reassembles every part however the body is cut; the
boundary parameter and the close check follow RFC 2046 §5.1.1 exactly."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway.relay.multipart import (
    EPILOGUE_ALLOWANCE,
    CloseCheck,
    MultipartError,
    MultipartSplitter,
    PartBytes,
    PartEnd,
    PartStart,
    boundary_of,
)


def split(body: bytes, boundary: str, cuts: list[int]) -> list[tuple[dict[str, str], bytes]]:
    splitter = MultipartSplitter(boundary)
    parts: list[tuple[dict[str, str], bytes]] = []
    points = sorted({min(c, len(body)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(body)], strict=True):
        for event in splitter.feed(body[a:b]):
            match event:
                case PartStart(headers):
                    parts.append((headers, b""))
                case PartBytes(data):
                    parts[-1] = (parts[-1][0], parts[-1][1] + data)
                case PartEnd():
                    pass
    splitter.close()
    return parts


@settings(max_examples=300)
@given(
    payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=15),
    boundary=st.sampled_from(["b", "x-1", "6411885e-4b3f-4996"]),
    preamble=st.booleans(),
)
def test_parts_are_reassembled(
    payloads: list[bytes], cuts: list[int], boundary: str, preamble: bool
) -> None:
    delimiter = f"--{boundary}".encode()
    assume(not any(delimiter in p for p in payloads))  # RFC 2046 §5.1.1: never inside a part
    body = b"ignored preamble\r\n" if preamble else b""
    for index, payload in enumerate(payloads):
        body += (
            delimiter
            + f"\r\nContent-Type: application/dicom\r\nX-Index: {index}\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    body += delimiter + b"--\r\nepilogue"
    parts = split(body, boundary, cuts)
    assert [p[1] for p in parts] == payloads
    assert [p[0]["x-index"] for p in parts] == [str(i) for i in range(len(payloads))]
    assert parts[0][0]["content-type"] == "application/dicom"


def test_missing_end_is_an_error() -> None:
    splitter = MultipartSplitter("b")
    list(splitter.feed(b"--b\r\n\r\npartial"))
    with pytest.raises(MultipartError, match="closing boundary"):
        splitter.close()


def test_boundary_of() -> None:
    assert boundary_of('multipart/related; type="application/dicom"; boundary="a b"') == "a b"
    with pytest.raises(MultipartError):
        boundary_of("multipart/related")


# --- RFC 2046 §5.1.1: the boundary parameter and the close delimiter (issue 16, class 10) ---

BCHARS_NOSPACE = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=?"
boundaries = st.builds(
    lambda head, last: head + last,
    st.text(alphabet=BCHARS_NOSPACE + " ", max_size=69),
    st.sampled_from(BCHARS_NOSPACE),
)


@given(boundary=boundaries)
def test_every_boundary_rfc_2046_allows_is_read_back(boundary: str) -> None:
    quoted = f'multipart/related; type="application/dicom"; boundary="{boundary}"'
    assert boundary_of(quoted) == boundary
    if " " not in boundary:  # lenient: unquoted, as some servers write it
        assert boundary_of(f"multipart/related;boundary={boundary};type=x") == boundary


@given(
    boundary=boundaries,
    bad=st.characters(codec="latin-1").filter(lambda c: c not in BCHARS_NOSPACE + ' "\\;'),
    at=st.integers(min_value=0, max_value=70),
)
def test_a_boundary_with_a_character_outside_bchars_is_refused(
    boundary: str, bad: str, at: int
) -> None:
    spoilt = boundary[:at] + bad + boundary[at:]
    with pytest.raises(MultipartError):
        boundary_of(f'multipart/related; boundary="{spoilt}"')


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/related",
        "multipart/related; boundary=",
        'multipart/related; boundary=""',
        "multipart/related; boundary=" + "a" * 71,
        'multipart/related; boundary="trailing "',
        "multipart/related; boundary=a; boundary=b",
        "multipart/related; BOUNDARY=a; Boundary=a",
        'multipart/related; type="x; boundary=hidden"',
        'multipart/related; boundary="unterminated',
        "multipart/related; boundary=a b",
        "multipart/related; junk; boundary=a",
    ],
)
def test_an_unusable_boundary_is_refused(content_type: str) -> None:
    with pytest.raises(MultipartError):
        boundary_of(content_type)


def test_the_longest_boundary_is_read() -> None:
    assert boundary_of("multipart/related; boundary=" + "a" * 70) == "a" * 70


@st.composite
def multipart_bodies(draw: st.DrawFn) -> tuple[bytes, str, int]:
    """A complete body, its boundary, and where its close delimiter ends.

    Parts hold anything but a delimiter (CRLF ``--boundary``): also ``--boundary--`` after
    other bytes, the look-alike a close check must not take for the end.
    """
    boundary = draw(boundaries)
    dash = b"--" + boundary.encode()
    lookalike = st.sampled_from([b"", dash + b"--", b"x" + dash + b"--", dash + b"-- \r\n"])
    data = st.builds(lambda a, b, c: a + b + c, st.binary(max_size=60), lookalike, lookalike)
    parts = draw(
        st.lists(data, max_size=4).filter(lambda ps: not any(b"\r\n" + dash in b"\r\n\r\n" + p for p in ps))
    )
    padding = st.text(alphabet=" \t", max_size=3).map(str.encode)
    preamble = draw(st.one_of(st.none(), st.binary(max_size=40)))
    if preamble is not None and (b"\r\n" + dash in b"\r\n" + preamble + b"\r\n"):
        preamble = None
    body = b"" if preamble is None else preamble + b"\r\n"
    for index, part in enumerate(parts):
        body += (b"" if index == 0 else b"\r\n") + dash + draw(padding) + b"\r\n"
        body += b"Content-Type: application/dicom\r\n\r\n" + part
    body += (b"\r\n" if parts else b"") + dash + b"--"
    end = len(body)
    tail = draw(padding)
    if draw(st.booleans()):
        tail += b"\r\n" + draw(st.binary(max_size=EPILOGUE_ALLOWANCE - 2 - len(tail)))
    return body + tail, boundary, end


def fold(check: CloseCheck, body: bytes, cuts: list[int]) -> bytes:
    """The tail the relay keeps after reading ``body`` in blocks cut at ``cuts``."""
    tail = CloseCheck.START
    points = sorted({min(c, len(body)) for c in cuts})
    for a, b in zip([0, *points], [*points, len(body)], strict=True):
        if b > a:
            tail = check.keep(tail, body[a:b])
    return tail


@settings(max_examples=300)
@given(case=multipart_bodies(), cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12))
def test_a_complete_body_always_passes(case: tuple[bytes, str, int], cuts: list[int]) -> None:
    body, boundary, _ = case
    check = CloseCheck(boundary)
    assert check.complete(fold(check, body, cuts))


@settings(max_examples=150)
@given(case=multipart_bodies(), cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=6))
def test_a_body_cut_anywhere_before_its_close_delimiter_ends_never_passes(
    case: tuple[bytes, str, int], cuts: list[int]
) -> None:
    body, boundary, end = case
    check = CloseCheck(boundary)
    for offset in range(end):
        assert not check.complete(fold(check, body[:offset], cuts)), offset


def test_an_empty_multipart_body_is_complete_but_not_a_lookalike() -> None:
    check = CloseCheck("b")
    assert check.complete(fold(check, b"--b--", []))
    assert check.complete(fold(check, b"--b--\r\n", [1, 2, 3]))
    assert not check.complete(fold(check, b"x--b--", []))
    assert not check.complete(fold(check, b"--b-- x", []))
    assert not check.complete(fold(check, b"--b--\r\n" + b"e" * EPILOGUE_ALLOWANCE, []))
