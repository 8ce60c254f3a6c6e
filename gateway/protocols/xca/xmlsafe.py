"""The XML layer under XCA-I: one hardened reader, the SOAP 1.2 envelope shape, and the
small element helpers :mod:`.bodies` and :mod:`.envelope` share.

:func:`read_xml` refuses, before the parser builds anything, a document that declares a
document type or an entity (``<!DOCTYPE``/``<!ENTITY`` in the bytes, in any letter case, also
when the document is UTF-16), then parses with entity substitution, DTD loading and network
access off and libxml2's size limits on (``huge_tree`` off), drops comments and processing
instructions, and refuses what got through anyway: a document type in the parsed tree, an
entity reference (declared or not), an XInclude element (never processed here, refused so no
later step can). Internal: :mod:`.envelope` is the public face.

Pure: no I/O (the parser has no network access and loads no external file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from gateway.protocols.xca.errors import (
    EnvelopeTooLarge,
    ForbiddenXml,
    MalformedMessage,
    VersionMismatch,
)
from gateway.protocols.xca.model import Namespace

__all__ = [
    "children",
    "envelope_parts",
    "local_name",
    "read_xml",
    "single_child",
    "sub_element",
    "text_of",
]

_DECLARATION = re.compile(rb"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_TEXT_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_XINCLUDE = frozenset({"http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude"})
_UTF16_MARKS = (b"\xfe\xff", b"\xff\xfe")


def read_xml(xml: bytes, *, max_bytes: int) -> etree._Element:
    """The root element of ``xml``.

    Raises :class:`EnvelopeTooLarge` past ``max_bytes``, :class:`ForbiddenXml` for a DTD,
    an entity or XInclude, :class:`MalformedMessage` when it is not well-formed XML.
    """
    if len(xml) > max_bytes:
        raise EnvelopeTooLarge
    _refuse_declarations(xml)
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )
    try:
        root: etree._Element = etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as exc:
        if any("ENTITY" in entry.type_name for entry in exc.error_log):
            raise ForbiddenXml from exc
        raise MalformedMessage("The message is not well-formed XML.") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise ForbiddenXml
    for node in root.iter():
        if isinstance(node, etree._Entity):
            raise ForbiddenXml
        if isinstance(node.tag, str) and etree.QName(node).namespace in _XINCLUDE:
            raise ForbiddenXml
    return root


def _refuse_declarations(xml: bytes) -> None:
    if _DECLARATION.search(xml):
        raise ForbiddenXml
    if xml.startswith(_UTF16_MARKS) or b"\x00" in xml[:4]:
        # A UTF-16 document hides "<!DOCTYPE" from a byte search.
        for codec in ("utf-16", "utf-16-le", "utf-16-be"):
            text = xml.decode(codec, errors="replace")
            if _TEXT_DECLARATION.search(text):
                raise ForbiddenXml


def local_name(element: etree._Element) -> tuple[str | None, str]:
    """``(namespace, local name)`` of an element."""
    qname = etree.QName(element)
    return qname.namespace, qname.localname


def children(
    element: etree._Element, local: str, namespaces: frozenset[str]
) -> list[etree._Element]:
    """The child elements named ``local`` in any of ``namespaces``, in document order."""
    return [
        child
        for child in _elements(element)
        if (found := local_name(child))[1] == local and found[0] in namespaces
    ]


def single_child(element: etree._Element) -> etree._Element | None:
    """The only child element, or None when there are none or several."""
    found = list(_elements(element))
    return found[0] if len(found) == 1 else None


def text_of(element: etree._Element) -> str:
    """The element's text, stripped of surrounding whitespace."""
    text: str | None = element.text
    return (text or "").strip()


def _elements(element: etree._Element) -> Iterator[etree._Element]:
    for child in element:
        if isinstance(child.tag, str):
            yield child


def envelope_parts(root: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    """``(Header or None, Body)`` of a SOAP 1.2 Envelope (SOAP 1.2 Part 1 §5).

    Raises :class:`VersionMismatch` when the root is not a SOAP 1.2 Envelope (a SOAP 1.1 one
    included) and :class:`MalformedMessage` when the Envelope is not (Header?, Body).
    """
    if local_name(root) != (Namespace.SOAP, "Envelope"):
        raise VersionMismatch  # §5.4.7: namespace, local name or both not SOAP 1.2's
    parts = [(local_name(child), child) for child in _elements(root)]
    names = [name for name, _ in parts]
    header_name, body_name = (Namespace.SOAP, "Header"), (Namespace.SOAP, "Body")
    if names == [body_name]:
        return None, parts[0][1]
    if names == [header_name, body_name]:
        return parts[0][1], parts[1][1]
    raise MalformedMessage("The SOAP Envelope must hold an optional Header and one Body.")


def sub_element(
    parent: etree._Element, namespace: str, local: str, text: str | None = None
) -> etree._Element:
    """Append ``{namespace}local`` (with ``text``) to ``parent``. Raises ValueError for text
    XML cannot hold (a control character)."""
    element: etree._Element = etree.SubElement(parent, f"{{{namespace}}}{local}")
    if text is not None:
        element.text = text
    return element
