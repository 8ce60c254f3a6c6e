"""MTOM/XOP packages read and written without I/O (digest §2.8, §6.5, §6.6).

A package is a ``multipart/related`` body (RFC 2387) whose root part is the SOAP envelope
(XOP 1.0 §3: ``application/xop+xml``) and whose other parts are the binaries an
``xop:Include href="cid:…"`` names (RFC 2392). Framing is :mod:`gateway.relay.multipart`'s:
the only bytes taken from a part are the delimiter's own CRLF, so parts that start or end with
CR/LF bytes come out unchanged (digest §4.6, the zeep bug).

* :class:`MtomReader` — feed chunks, iterate events. The root is the part whose Content-ID is
  the ``start`` parameter, else the first part (RFC 2387 §3.2); parts may come before it and
  are reported as they arrive (the caller spools them). Memory: the root (at most
  ``max_root_bytes``), one chunk, one delimiter, the Content-IDs seen (at most ``max_parts``
  of at most :data:`MAX_CONTENT_ID` characters). Body bytes of a base64 part are decoded as
  they come; binary/8bit/7bit/absent encodings are passed byte for byte.
* :class:`MtomWriter` — the bytes of a package this gateway sends: root part first (zeep
  and others take the first part as the root, digest §2.8), binary parts, closing delimiter.
* Content-ID helpers: ids are compared without ``<>`` and percent-decoded on both sides
  (RFC 2392 §2); :func:`resolve`, :func:`unresolved` and :func:`unreferenced` check that
  every xop:Include names exactly one part and every part is named (digest §9 items 7, 28).

Generators: :meth:`MtomReader.feed` does its work as it is iterated — iterate it to the end
before feeding the next chunk. Errors: :class:`MtomError` (and :class:`EnvelopeTooLarge` for
the root).
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from gateway.protocols.xca.errors import EnvelopeTooLarge, MtomError
from gateway.protocols.xca.model import DocumentResponse, RetrieveResponse
from gateway.relay.multipart import (
    MultipartError,
    MultipartSplitter,
    PartBytes,
    boundary_of,
    closing,
    delimiter,
    part_head,
)
from gateway.relay.multipart import PartEnd as _SplitEnd
from gateway.relay.multipart import PartStart as _SplitStart
from routing.media import MediaTypeError, media_or_none, parse_media_type

__all__ = [
    "MAX_CONTENT_ID",
    "SOAP_TYPE",
    "XOP_TYPE",
    "MtomEvent",
    "MtomParams",
    "MtomReader",
    "MtomWriter",
    "PartData",
    "PartEnd",
    "PartStart",
    "RootPart",
    "content_id_from_href",
    "content_id_of",
    "href_for",
    "is_multipart",
    "is_soap",
    "mtom_params",
    "resolve",
    "soap_content_type",
    "unreferenced",
    "unresolved",
]

XOP_TYPE = "application/xop+xml"
SOAP_TYPE = "application/soap+xml"
MAX_CONTENT_ID = 256
_IDENTITY_ENCODINGS = frozenset({"binary", "8bit", "7bit"})
_BASE64_SKIPPED = b" \t\r\n\x0b\x0c"
_UNSAFE_ID = re.compile(r"[\x00-\x20<>\x7f-\U0010ffff]")
_UNSAFE_PARAMETER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\U0010ffff]")


def is_multipart(content_type: str) -> bool:
    """Whether ``content_type`` is a ``multipart/*`` type (an MTOM package, or not SOAP)."""
    media = media_or_none(content_type)
    return media is not None and media.type == "multipart"


def is_soap(content_type: str) -> bool:
    """Whether ``content_type`` is plain SOAP 1.2 (``application/soap+xml``, RFC 3902)."""
    media = media_or_none(content_type)
    return media is not None and media.essence == SOAP_TYPE


def soap_content_type(action: str | None = None) -> str:
    """The Content-Type of a plain SOAP 1.2 message (a Fault), with its ``action``
    parameter (RFC 3902 §6) when given. Raises ValueError for a control character."""
    tail = "" if action is None else f"; action={_quoted(action)}"
    return f"{SOAP_TYPE}; charset=UTF-8{tail}"


@dataclass(frozen=True, slots=True)
class MtomParams:
    """The parameters of an MTOM Content-Type. ``start`` is already a Content-ID
    (:func:`content_id_of`): ``<>`` removed, percent-decoded."""

    boundary: str
    start: str | None
    type: str | None
    start_info: str | None


def mtom_params(content_type: str) -> MtomParams:
    """Read a ``multipart/related`` Content-Type (RFC 2387 §3, XOP 1.0 §4.1).

    Raises :class:`MtomError` when it is unreadable, not ``multipart/related``, or its
    boundary is missing or invalid (RFC 2046 §5.1.1). ``type`` is not required to be
    ``application/xop+xml``: a SOAP-with-attachments package is read the same way.
    """
    try:
        media = parse_media_type(content_type)
        boundary = boundary_of(content_type)
    except (MediaTypeError, MultipartError) as exc:
        raise MtomError("The MTOM Content-Type or its boundary is unreadable.") from exc
    if media.essence != "multipart/related":
        raise MtomError("An MTOM package must be multipart/related.")
    start = media.param("start")
    return MtomParams(
        boundary=boundary,
        start=None if start is None else content_id_of(start),
        type=media.param("type"),
        start_info=media.param("start-info"),
    )


# --- Content-IDs (RFC 2392) --------------------------------------------------------------


def content_id_of(header: str) -> str:
    """A Content-ID header value as compared here: ``<>`` removed, percent-decoded."""
    value = header.strip()
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1].strip()
    return unquote(value)


def href_for(content_id: str) -> str:
    """The ``cid:`` URL naming ``content_id`` (RFC 2392 §2). ``@`` is kept as it is (RFC 3986
    allows it in a path), so a reader that does not decode still finds the part."""
    return "cid:" + quote(content_id, safe="@")


def content_id_from_href(href: str) -> str:
    """The Content-ID a ``cid:`` URL names, percent-decoded. Raises ValueError for another
    scheme or an empty id."""
    value = href.strip()
    if value[:4].lower() != "cid:" or not value[4:]:
        raise ValueError("not a cid: URL")
    return unquote(value[4:])


def resolve(response: RetrieveResponse) -> dict[str, DocumentResponse]:
    """Content-ID → DocumentResponse of every xop:Include in ``response``.

    Raises :class:`MtomError` when one Content-ID is named by two DocumentResponses (each
    part is the value of one Include, digest §2.8)."""
    found: dict[str, DocumentResponse] = {}
    for document in response.documents:
        if document.content_id is None:
            continue
        if document.content_id in found:
            raise MtomError("One MTOM part is referenced by two documents.")
        found[document.content_id] = document
    return found


def unresolved(response: RetrieveResponse, content_ids_seen: Collection[str]) -> list[str]:
    """Content-IDs named by an xop:Include of ``response`` but not among the parts seen, in
    document order (digest §9 items 7, 28)."""
    missing: list[str] = []
    for document in response.documents:
        cid = document.content_id
        if cid is not None and cid not in content_ids_seen and cid not in missing:
            missing.append(cid)
    return missing


def unreferenced(response: RetrieveResponse, content_ids_seen: Iterable[str]) -> list[str]:
    """Content-IDs of parts seen that no xop:Include of ``response`` names, sorted."""
    named = {document.content_id for document in response.documents}
    return sorted(set(content_ids_seen) - named)


# --- reading -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RootPart:
    """The whole root part (the SOAP envelope), decoded."""

    envelope: bytes


@dataclass(frozen=True, slots=True)
class PartStart:
    """A non-root part begins. ``headers``: lower-case names, values as written."""

    content_id: str
    content_type: str
    headers: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


MtomEvent = RootPart | PartStart | PartData | PartEnd


class _Base64:
    """Incremental base64 (RFC 2045 §6.8): whitespace skipped, 0 to 3 characters carried
    between chunks, nothing accepted after padding."""

    __slots__ = ("_carry", "_padded")

    def __init__(self) -> None:
        self._carry = b""
        self._padded = False

    def feed(self, data: bytes) -> bytes:
        compact = self._carry + data.translate(None, _BASE64_SKIPPED)
        usable = len(compact) - len(compact) % 4
        self._carry = compact[usable:]
        if not usable:
            return b""
        if self._padded:
            raise MtomError("A base64 part goes on after its padding.")
        block = compact[:usable]
        try:
            decoded = binascii.a2b_base64(block, strict_mode=True)
        except binascii.Error as exc:
            raise MtomError("A base64 part holds invalid data.") from exc
        self._padded = block.endswith(b"=")
        return decoded

    def finish(self) -> None:
        if self._carry:
            raise MtomError("A base64 part ends in the middle of a quantum.")


class MtomReader:
    """Reads one MTOM package fed in chunks (module docstring).

    Raises :class:`MtomError` for an unreadable Content-Type (at construction), and, while
    events are iterated: oversize part headers, a nested multipart part, an unknown
    Content-Transfer-Encoding, bad base64, a non-root part without Content-ID, a Content-ID
    given twice, longer than :data:`MAX_CONTENT_ID` or past ``max_parts`` parts;
    :class:`EnvelopeTooLarge` when the root passes ``max_root_bytes``.
    """

    def __init__(self, content_type: str, *, max_root_bytes: int, max_parts: int = 50_000) -> None:
        self.params = mtom_params(content_type)
        self._splitter = MultipartSplitter(self.params.boundary)
        self._max_root = max_root_bytes
        self._max_parts = max_parts
        self._seen: set[str] = set()
        self._root_id: str | None = None
        self._root_done = False
        self._first = True
        self._in_root = False
        self._root = bytearray()
        self._decoder: _Base64 | None = None

    @property
    def content_ids(self) -> frozenset[str]:
        """Content-IDs of the non-root parts seen so far."""
        return frozenset(self._seen)

    def feed(self, chunk: bytes) -> Iterator[MtomEvent]:
        """The events ``chunk`` completes, in order."""
        try:
            for event in self._splitter.feed(chunk):
                yield from self._on(event)
        except MultipartError as exc:
            raise MtomError("The MTOM package's framing is unreadable.") from exc

    def close(self) -> None:
        """Raise :class:`MtomError` unless the closing delimiter and the root were seen."""
        try:
            self._splitter.close()
        except MultipartError as exc:
            raise MtomError("The MTOM package ends before its closing delimiter.") from exc
        if not self._root_done:
            raise MtomError("The MTOM package has no root part.")

    def _on(self, event: _SplitStart | PartBytes | _SplitEnd) -> Iterator[MtomEvent]:
        if isinstance(event, _SplitStart):
            yield from self._start(event.headers)
        elif isinstance(event, PartBytes):
            data = event.data if self._decoder is None else self._decoder.feed(event.data)
            if self._in_root:
                self._root += data
                if len(self._root) > self._max_root:
                    raise EnvelopeTooLarge
            elif data:
                yield PartData(data)
        else:
            if self._decoder is not None:
                self._decoder.finish()
            if self._in_root:
                self._in_root, self._root_done = False, True
                envelope, self._root = bytes(self._root), bytearray()
                yield RootPart(envelope)
            else:
                yield PartEnd()

    def _start(self, headers: dict[str, str]) -> Iterator[MtomEvent]:
        content_type = headers.get("content-type", "")
        media = media_or_none(content_type)
        if media is not None and media.type == "multipart":
            raise MtomError("An MTOM part may not be multipart itself.")
        encoding = headers.get("content-transfer-encoding", "binary").strip().lower()
        if encoding != "base64" and encoding not in _IDENTITY_ENCODINGS:
            raise MtomError("An MTOM part has an unsupported Content-Transfer-Encoding.")
        self._decoder = _Base64() if encoding == "base64" else None
        raw_id = headers.get("content-id")
        content_id = None if raw_id is None else content_id_of(raw_id)
        first, self._first = self._first, False
        start = self.params.start
        is_root = not self._root_done and (content_id == start if start is not None else first)
        if content_id is not None:
            if len(content_id) > MAX_CONTENT_ID:
                raise MtomError("An MTOM Content-ID is too long.")
            if content_id in self._seen or content_id == self._root_id:
                raise MtomError("Two MTOM parts have the same Content-ID.")
        if is_root:
            self._in_root, self._root_id = True, content_id
            return
        if not content_id:
            raise MtomError("An MTOM part other than the root has no Content-ID.")
        if len(self._seen) >= self._max_parts:
            raise MtomError("The MTOM package has too many parts.")
        self._seen.add(content_id)
        yield PartStart(content_id=content_id, content_type=content_type, headers=headers)


# --- writing -----------------------------------------------------------------------------


def _quoted(value: str) -> str:
    if _UNSAFE_PARAMETER.search(value):
        raise ValueError("a header parameter with a control or non-ASCII character")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _checked_id(content_id: str) -> str:
    if not content_id or _UNSAFE_ID.search(content_id):
        raise ValueError("a Content-ID must be non-empty printable ASCII without <, > or space")
    return content_id


class MtomWriter:
    """The bytes of one MTOM package, in the order they are sent: :meth:`root`, then per
    binary part :meth:`part_head` followed by its bytes, then :meth:`closing`.

    ``boundary`` defaults to a random ``uuid4().hex``; ``root_id`` to an id of the same
    form as :meth:`new_content_id`. Raises ValueError for a boundary RFC 2046 refuses or a
    Content-ID that does not fit in ``<…>``.
    """

    def __init__(self, *, boundary: str | None = None, root_id: str | None = None) -> None:
        self._token = uuid.uuid4().hex
        self.boundary = boundary or uuid.uuid4().hex
        try:
            boundary_of(f"multipart/related; boundary={_quoted(self.boundary)}")
        except MultipartError as exc:
            raise ValueError("a boundary RFC 2046 does not allow") from exc
        self.root_id = _checked_id(root_id or f"root.{self._token}@mado-gateway")

    def new_content_id(self, index: int) -> str:
        """A Content-ID for the ``index``-th part: ``[A-Za-z0-9.-]`` and one ``@``."""
        return f"part{index}.{self._token}@mado-gateway"

    def content_type(self, action: str | None = None) -> str:
        """The HTTP Content-Type of the package (digest §2.8), with the SOAP 1.2 ``action``
        parameter when given (requests). Raises ValueError for a control character."""
        tail = "" if action is None else f"; action={_quoted(action)}"
        return (
            f"multipart/related; boundary={_quoted(self.boundary)}; type={_quoted(XOP_TYPE)}; "
            f"start={_quoted(f'<{self.root_id}>')}; start-info={_quoted(SOAP_TYPE)}{tail}"
        )

    def root(self, envelope: bytes) -> bytes:
        """The opening delimiter, the root part's headers and ``envelope``. Raises
        ValueError when the envelope holds ``--boundary`` (it would end the part)."""
        return self.root_head(envelope) + envelope

    def root_head(self, envelope: bytes) -> bytes:
        """:meth:`root` without the envelope, for a writer that sends the envelope as it is
        (an answer's envelope for 2,000 documents is about 1 MB: not copied once more)."""
        if b"--" + self.boundary.encode("ascii") in envelope:
            raise ValueError("the envelope contains the MTOM boundary")
        headers = {
            "Content-Type": f"{XOP_TYPE}; charset=UTF-8; type={_quoted(SOAP_TYPE)}",
            "Content-Transfer-Encoding": "binary",
            "Content-ID": f"<{self.root_id}>",
        }
        # The first delimiter needs no CRLF before it (RFC 2046 §5.1.1): send none.
        return part_head(self.boundary, headers)[2:]

    def part_head(self, content_id: str, content_type: str = "application/dicom") -> bytes:
        """The delimiter and headers opening a binary part; its bytes follow unchanged."""
        if _UNSAFE_PARAMETER.search(content_type):
            raise ValueError("a Content-Type with a control or non-ASCII character")
        headers = {
            "Content-Type": content_type,
            "Content-Transfer-Encoding": "binary",
            "Content-ID": f"<{_checked_id(content_id)}>",
        }
        return part_head(self.boundary, headers)

    def closing(self) -> bytes:
        """The close delimiter that ends the package."""
        return closing(self.boundary)

    @property
    def delimiter(self) -> bytes:
        """CRLF ``--boundary``: a binary part's bytes must not contain it (RFC 2046)."""
        return delimiter(self.boundary)
