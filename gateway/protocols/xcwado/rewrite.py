"""Streaming rewrite of a source's URLs in DICOM metadata, in every spelling, in bounded memory.

A source's metadata names its own address in BulkDataURI and Retrieve URL values. A consumer
across the border cannot reach that address, and must not learn it: the gateway rewrites it
to its own public URL for the same resource (:class:`~.border.Border`), chunk by chunk,
without holding the body. Two mechanisms, one pass:

* **Absolute spellings, anywhere.** Every byte span that spells one of the source's base
  URLs — through JSON escapes or XML character references, in any letter case, with or
  without the default port, percent-encoded, scheme-less (:mod:`.spelling`) — becomes
  the public prefix, written in the document's own escaping. This holds in every string,
  key, attribute and text, URL field or not. Candidates are found by cheap byte searches
  (an escape character, ``%``, or a source host right after ``/``, ``\\`` or ``@``); the
  regex only runs around them, and the plain spelling is recognised without it.
* **References where URLs sit.** BulkDataURI, Retrieve URL (0008,1190) and Retrieve URI
  (0040,E010) values (:mod:`.metafields`) are decoded and resolved against the URL
  the source was asked for, so relative references become absolute public URLs too;
  a reference to the source's origin outside its base URLs is withheld (emptied).

Everything else passes through byte for byte. XML first goes through
:class:`~.xmlnormal.XmlNormaliser` (comments and CDATA cannot split a URL; stale part
``Content-Length`` and ``Content-Location`` headers go).

Memory: the last :attr:`PrefixRewriter.hold_back` bytes of each chunk wait for the next one
(a spelling cut by the chunk boundary), plus, while a URL field is open, the field itself —
at most :data:`MAX_FIELD_BYTES`. A stream that cannot be rewritten safely — a field longer
than that, a NUL byte (UTF-16/32 text), a document type declaration, character references
padded beyond :data:`~.spelling.MAX_REF_ZEROS` zeros — raises :class:`RewriteError`,
which the relay treats as an upstream payload failure: the client's connection is aborted,
never completed with a leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import aiohttp

from gateway.protocols.xcwado.border import Border
from gateway.protocols.xcwado.metafields import (
    JSON_FIELDS,
    JSON_STRING,
    NEED_MORE,
    XML_FIELDS,
    XML_TEXT,
    Codec,
    Finder,
    Located,
)
from gateway.protocols.xcwado.spelling import MAX_REF_ZEROS, Spelling, Syntax, spelling_of
from gateway.protocols.xcwado.xmlnormal import NotRewritable, XmlNormaliser

__all__ = ["MAX_FIELD_BYTES", "PrefixRewriter", "RewriteError"]

MAX_FIELD_BYTES = 64 * 1024
"""The longest URL-bearing construct (a BulkDataURI member, a Retrieve URL attribute) held."""

_LITERAL_WINDOW = 16  # "https:/" and a little: how far before a literal host a spelling starts
_UNCLEAN = re.compile(rb"[\\%&\s]|/\.")
_PADDED_REFERENCE = re.compile(rb"&#[xX]?0{%d}" % (MAX_REF_ZEROS + 1))


class RewriteError(aiohttp.ClientPayloadError):
    """The upstream's metadata cannot be relayed without risking a leak; abort the relay."""


class PrefixRewriter:
    """Rewrite a source's URLs in one metadata stream: :meth:`feed` each chunk, then
    :meth:`flush`. Raises :class:`RewriteError` (module docstring)."""

    __slots__ = (
        "_border",
        "_canonical",
        "_carry",
        "_escapes",
        "_fields",
        "_host_escapes",
        "_hosts",
        "_normaliser",
        "_plain_heads",
        "_public",
        "_public_bare",
        "_spelling",
        "_syntax",
        "hold_back",
    )

    def __init__(self, border: Border, syntax: Syntax, *, boundary: str | None = None) -> None:
        self._border = border
        self._syntax = syntax
        self._spelling: Spelling = spelling_of(border.bases, syntax)
        self._fields: Finder = JSON_FIELDS if syntax is Syntax.JSON else XML_FIELDS
        self._normaliser = XmlNormaliser(boundary) if syntax is Syntax.XML else None
        self._escapes = (b"\\", b"%") if syntax is Syntax.JSON else (b"&", b"%")
        # What a host letter or digit looks like when it is not written as itself.
        self._host_escapes = (b"\\u", b"%") if syntax is Syntax.JSON else (b"&#", b"%")
        self._hosts = tuple(
            dict.fromkeys(
                (f"[{b.host}]" if ":" in b.host else b.host).encode() for b in border.bases
            )
        )
        # The plain spelling of each base, recognised without the regex: "scheme://authority"
        # in lower case, then the path as it is.
        self._canonical = tuple(
            (f"{b.scheme}://".encode(), b.authority.encode(), b.path.encode()) for b in border.bases
        )
        self._plain_heads = tuple(s + a + p for s, a, p in self._canonical)
        codec = _codec(syntax)
        self._public = codec(border.public)
        self._public_bare = codec(border.public[:-1])
        self.hold_back = self._spelling.max_length + self._fields.max_opener + 1
        self._carry = b""

    @property
    def held_bytes(self) -> int:
        """Bytes received and not yet returned (waiting for the next chunk)."""
        return len(self._carry) + (self._normaliser.held_bytes if self._normaliser else 0)

    def feed(self, chunk: bytes) -> bytes:
        if b"\x00" in chunk:
            raise RewriteError("metadata with NUL bytes (not UTF-8) cannot be rewritten")
        if self._normaliser is not None:
            try:
                chunk = self._normaliser.feed(chunk)
            except NotRewritable as exc:
                raise RewriteError(str(exc)) from None
        data = self._carry + chunk if self._carry else chunk
        return self._process(data, final=False)

    def flush(self) -> bytes:
        data = self._carry
        if self._normaliser is not None:
            try:
                data += self._normaliser.flush()
            except NotRewritable as exc:
                raise RewriteError(str(exc)) from None
        return self._process(data, final=True)

    def _process(self, data: bytes, *, final: bool) -> bytes:
        if self._syntax is Syntax.XML and b"&#" in data and _PADDED_REFERENCE.search(data):
            raise RewriteError("character references padded beyond recognition")
        limit = len(data) if final else len(data) - self.hold_back
        scan = _Scan(self, data, limit)
        out: list[bytes] = []
        emitted = 0
        stop = None
        while True:
            opener = scan.opener(emitted)
            spelled = scan.spelling(emitted)
            if opener is not None and (spelled is None or opener <= spelled[0]):
                located = self._fields.locate(data, opener)
                if located == NEED_MORE and not final:
                    if len(data) - opener > MAX_FIELD_BYTES:
                        raise RewriteError("a URL field longer than the rewriter holds")
                    stop = opener
                    break
                if not isinstance(located, Located) or located.end <= opener:
                    located = Located(opener + 1)  # not a field after all
                out.append(data[emitted:opener])
                out.append(self._rewrite_located(data, opener, located))
                emitted = located.end
            elif spelled is not None:
                start, end, replacement = spelled
                out.append(data[emitted:start])
                out.append(replacement)
                emitted = end
            else:
                break
        if stop is None:
            stop = len(data) if final else max(emitted, limit)
        out.append(data[emitted:stop])
        self._carry = data[stop:]
        return b"".join(out)

    def _plain(
        self, data: bytes, lowered: bytes, at: int, position: int
    ) -> tuple[int, int, bytes] | None:
        """The base spelled exactly as configured (scheme and host in lower case) with the
        host at ``at``: the common case, recognised without the regex."""
        for scheme, authority, path in self._canonical:
            start = at - len(scheme)
            end = at + len(authority) + len(path)
            if (
                start >= position
                and lowered.startswith(scheme, start)
                and lowered.startswith(authority, at)
                and data.startswith(path, at + len(authority))
            ):
                return start, end, self._public
        return None

    def _rewrite_span(self, data: bytes, start: int, end: int) -> bytes:
        """``data[start:end]`` with every spelling of a base replaced."""
        span = data[start:end]
        if b"/" not in span and b"\\" not in span and b"&" not in span:
            return span  # every spelling has a slash, a JSON escape or an XML reference
        spelling = self._spelling

        def one(match: re.Match[bytes]) -> bytes:
            return self._public if spelling.keeps_slash(match) else self._public_bare

        return spelling.pattern.sub(one, span)

    def _rewrite_located(self, data: bytes, start: int, located: Located) -> bytes:
        pieces = []
        position = start
        for value_start, value_end, codec in located.values:
            pieces.append(self._rewrite_span(data, position, value_start))
            pieces.append(self._rewrite_value(data, value_start, value_end, codec))
            position = value_end
        pieces.append(self._rewrite_span(data, position, located.end))
        return b"".join(pieces)

    def _rewrite_value(self, data: bytes, start: int, end: int, codec: Codec) -> bytes:
        raw = data[start:end]
        for head in self._plain_heads:
            # The common case, without decoding or URL parsing: the base as configured, then
            # a rest that escapes nothing and that normalisation would not change.
            rest = raw[len(head) :]
            if raw.startswith(head) and not _UNCLEAN.search(rest) and not rest.startswith(b"."):
                return self._public + rest
        try:
            text = codec.decode(raw)
        except (ValueError, UnicodeDecodeError):
            return self._rewrite_span(data, start, end)
        mapped = self._border.map_reference(text)
        if mapped is None:
            return self._rewrite_span(data, start, end)
        return codec.encode(mapped)


def _codec(syntax: Syntax) -> Callable[[str], bytes]:
    if syntax is Syntax.JSON:
        return JSON_STRING.encode
    if syntax is Syntax.XML:
        return lambda text: XML_TEXT.encode(text).replace(b'"', b"&quot;").replace(b"'", b"&apos;")
    return str.encode


class _Scan:
    """The next opener and the next spelling in one buffer, each searched for once: a
    position found stays valid until the caller has emitted past it."""

    __slots__ = (
        "_clear",
        "_data",
        "_limit",
        "_lowered",
        "_next",
        "_opener",
        "_other",
        "_rewriter",
        "_spelled",
        "_triggers",
    )

    def __init__(self, rewriter: PrefixRewriter, data: bytes, limit: int) -> None:
        self._rewriter = rewriter
        self._data = data
        self._limit = limit
        self._lowered = data.lower()
        # Needles searched for with bytes.find, each from where it was last found: the
        # spelling triggers (escapes, hosts), then the finder's literal openers.
        self._triggers = (
            [(e, data) for e in rewriter._escapes]
            + [(h, self._lowered) for h in rewriter._hosts]
            + [(literal, data) for literal in rewriter._fields.literals]
        )
        self._other = -2
        self._next = [-2] * len(self._triggers)  # -2: not searched yet; -1: none left
        self._opener: int | None = -2
        self._spelled: tuple[int, int, bytes] | None = (-2, -2, b"")
        # No spelling starts inside [from, to): what failed searches have proved. Without it a
        # document escaping every "/" would have the same bytes searched again and again.
        self._clear = (0, 0)

    def opener(self, position: int) -> int | None:
        """Where the first opener at or after ``position`` (and before the limit) starts."""
        if self._opener is not None and self._opener < position:
            fields = self._rewriter._fields
            if self._other != -1 and self._other < position:
                self._other = fields.find_other(self._data, position)
            found = [self._other] if self._other >= 0 else []
            first = len(self._triggers) - len(fields.literals)
            for kind in range(first, len(self._triggers)):
                hit = self._trigger(kind, position)
                while hit >= 0 and (start := fields.start_of(self._data, hit, position)) < 0:
                    hit = self._trigger(kind, hit + 1)
                if hit >= 0:
                    found.append(start)
            at = min(found) if found else -1
            self._opener = at if 0 <= at < self._limit else None
        return self._opener

    def spelling(self, position: int) -> tuple[int, int, bytes] | None:
        if self._spelled is not None and self._spelled[0] < position:
            self._spelled = self._find(position)
        return self._spelled

    def _may_spell(self, start: int, end: int) -> bool:
        """Whether a host can be spelled in ``[start, end)``: literally, or with an escaped
        or percent-encoded character. Most escapes (``\\/`` everywhere, ``&amp;``) are far
        from any host; this spares the regex those windows."""
        rewriter = self._rewriter
        if any(self._lowered.find(host, start, end) >= 0 for host in rewriter._hosts):
            return True
        return any(self._data.find(mark, start, end) >= 0 for mark in rewriter._host_escapes)

    def _trigger(self, kind: int, position: int) -> int:
        at = self._next[kind]
        if at != -1 and at < position:
            needle, haystack = self._triggers[kind]
            at = self._next[kind] = haystack.find(needle, position)
        return at

    def _find(self, position: int) -> tuple[int, int, bytes] | None:
        rewriter, data, limit = self._rewriter, self._data, self._limit
        spelling = rewriter._spelling
        window = spelling.max_length
        kinds = len(rewriter._escapes)
        spelling_kinds = kinds + len(rewriter._hosts)
        cursor = position
        while True:
            candidates = [
                (at, kind)
                for kind in range(spelling_kinds)
                if (at := self._trigger(kind, cursor)) >= 0
            ]
            if not candidates:
                return None
            at, kind = min(candidates)
            cursor = at + 1
            literal_host = kind >= kinds
            reach = _LITERAL_WINDOW if literal_host else window
            if at - reach >= limit:
                return None
            if literal_host:
                before = data[at - 1 : at]
                if before not in (b"/", b"\\", b"@"):
                    continue
                if before == b"@":
                    reach = window
                elif (found := rewriter._plain(data, self._lowered, at, position)) is not None:
                    return found if found[0] < limit else None
            start, end = max(position, at - reach), min(len(data), at + window + 1)
            clear_from, clear_to = self._clear
            searched = max(start, clear_to) if clear_from <= start <= clear_to else start
            match = None
            if searched < end and self._may_spell(searched, end):
                match = spelling.pattern.search(data, searched, end)
            if match is None:
                # A spelling is at most `window` long: one starting by end - window would
                # have been found inside [searched, end).
                if clear_from <= start <= clear_to:
                    self._clear = (clear_from, max(clear_to, end - window))
                else:
                    self._clear = (start, max(start, end - window))
                continue
            if match.start() >= limit:
                return None
            keep = spelling.keeps_slash(match)
            return (
                match.start(),
                match.end(),
                rewriter._public if keep else rewriter._public_bare,
            )
