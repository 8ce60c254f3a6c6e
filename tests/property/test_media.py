"""The one media-type reader (issue 8, item 5): RFC 9110 §8.3.1 read the same way by every
Content-Type and Accept reader, and nothing but :class:`MediaTypeError` for bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.consumer.endpoint import upstream_accept
from gateway.protocols.xcwado.metadata import is_rewritable
from gateway.relay.multipart import MultipartError, boundary_of
from gateway.relay.stream import _carries_dicom
from routing.accept import outbound_accept
from routing.errors import MediaTypeError, UnsupportedTransferSyntax
from routing.media import MediaType, media_or_none, parse_media_type

TCHARS = "!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"
tokens = st.text(alphabet=TCHARS, min_size=1, max_size=12)
# Visible ASCII, space, tab and a little beyond ASCII (obs-text): what a quoted-string holds.
values = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="\r\n", exclude_categories=["Cc", "Cs"]
    )
    | st.just("\t"),
    max_size=16,
)
media_types = st.builds(
    lambda t, s, p: MediaType(type=t.lower(), subtype=s.lower(), parameters=tuple(p)),
    tokens,
    tokens,
    st.lists(st.tuples(tokens.map(str.lower), values), max_size=4),
)
spaces = st.sampled_from(["", " ", "\t", "  "])


def _quoted(value: str) -> str:
    escaped = "".join("\\" + c if c in '"\\' or (c.isalnum() and c.isascii()) else c for c in value)
    return f'"{escaped}"'


@st.composite
def spellings(draw: st.DrawFn) -> tuple[MediaType, str]:
    """A media type and one of its many legal spellings."""
    media = draw(media_types)

    def case(text: str) -> str:
        return "".join(c.upper() if draw(st.booleans()) else c for c in text)

    text = draw(spaces) + case(media.type) + "/" + case(media.subtype)
    for name, value in media.parameters:
        token = value and all(c in TCHARS for c in value)
        written = value if token and draw(st.booleans()) else _quoted(value)
        text += f"{draw(spaces)};{draw(spaces)}{case(name)}={written}"
        if draw(st.booleans()):
            text += ";"  # an empty parameter
    return media, text + draw(spaces)


@settings(max_examples=400)
@given(media_types)
def test_the_canonical_spelling_reads_back(media: MediaType) -> None:
    assert parse_media_type(str(media)) == media


@settings(max_examples=400)
@given(spellings())
def test_every_spelling_reads_as_its_media_type(case: tuple[MediaType, str]) -> None:
    media, text = case
    assert parse_media_type(text) == media


@settings(max_examples=600)
@given(st.text(max_size=60) | spellings().map(lambda c: c[1][: len(c[1]) // 2] + "\x00"))
def test_unreadable_input_raises_only_media_type_error(text: str) -> None:
    try:
        media = parse_media_type(text)
    except MediaTypeError:
        assert media_or_none(text) is None
    else:
        assert parse_media_type(str(media)) == media


@pytest.mark.parametrize(
    "text",
    ["", "multipart", "multipart/", "/related", "a/b c", "a/b; x", 'a/b; x="open', "a/b; x=1 2"],
)
def test_unreadable_media_types(text: str) -> None:
    with pytest.raises(MediaTypeError):
        parse_media_type(text)


def test_parameters_in_any_case_and_spacing() -> None:
    media = parse_media_type('Multipart/Related ;TYPE = "application/dicom" ; boundary=x;;q=0.5')
    assert media.essence == "multipart/related"
    assert media.param("Type") == "application/dicom"
    assert media.values("boundary") == ("x",)
    assert media.param("missing") is None


# --- every reader agrees with the one parser: text inside another parameter's quotes is that
# parameter's value, never a parameter of its own -----------------------------------------------


def test_a_dicom_type_hidden_in_another_parameter_is_not_one() -> None:
    hidden = 'multipart/related; x="a; type=application/dicom;"; type=application/octet-stream'
    assert not _carries_dicom(parse_media_type(hidden))
    assert _carries_dicom(parse_media_type('multipart/related;type=\t"Application/DICOM"'))


def test_xml_named_in_another_parameter_does_not_make_dicom_metadata() -> None:
    assert not is_rewritable(
        'multipart/related; type="application/dicom"; note="application/dicom+xml"; boundary=b'
    )
    assert is_rewritable('Multipart/Related; Type="Application/DICOM+XML"; boundary=b')


def test_a_transfer_syntax_hidden_in_another_parameter_names_none() -> None:
    hidden = 'multipart/related; type="application/dicom"; x="a;transfer-syntax=1.2.840.10008.1.2.1"'
    assert upstream_accept(hidden) == upstream_accept(None)


def test_a_weight_hidden_in_another_parameter_weighs_nothing() -> None:
    accept = (
        "multipart/related; transfer-syntax=1.2.840.10008.1.2, "
        'multipart/related; type="application/dicom"; note="a;q=0"'
    )
    assert outbound_accept([accept]) == ['multipart/related; type="application/dicom"; note="a;q=0"']
    with pytest.raises(UnsupportedTransferSyntax):
        outbound_accept(["multipart/related; transfer-syntax=1.2.840.10008.1.2, */*; Q = 0"])


def test_a_boundary_in_an_unreadable_content_type_is_refused() -> None:
    with pytest.raises(MultipartError):
        boundary_of('multipart/related; boundary=abc; type="open')
