"""RAD-69 / RAD-75 bodies validated against the published XDS-I.b and XDS.b schemas.

The schemas are the NIST XDS Toolkit copies (public domain) in the shared reference folder
(``schemas/xds-i/``, read through :func:`tests.samples.shared_file`: skipped when absent,
failed under CI). ``XDSI.b_ImagingDocumentSource.xsd`` (the request, ``urn:ihe:rad:xdsi-b:2009``)
imports ``XDS.b_DocumentRepository.xsd`` (``urn:ihe:iti:xds-b:2007``) and the ebXML RegRep 3.0
``rs``, ``rim``, ``lcm`` and ``query`` schemas; ``rim.xsd`` imports ``xml.xsd``. All of them are
beside it, named by relative ``schemaLocation``; the parser refuses network access and a
resolver refuses any file outside that folder, so loading never leaves it
(:data:`LOADED` records what was read).

What validates (checked by ``test_soapclient``): the request with ``DocumentRequest`` in the
xds-b namespace. These schemas derive SeriesRequest from the XDS.b
``RetrieveDocumentSetRequestType``, so a ``DocumentRequest`` in the xdsi-b namespace (IPF's
variant, xcai-digest.md §2.4) is rejected by them although peers send it.

Responses carry their documents as ``xop:Include`` (MTOM); XOP says the schema applies to
the reconstructed infoset, where each Include is replaced by the part's base64 text. The
bytes do not change validity, so :func:`assert_valid_response` replaces every Include
that is the sole content of a ``Document`` with empty base64 text before validating; an
Include anywhere else is left in place and fails.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from lxml import etree

from tests.functional.soapwire import SOAP12, XDSB, XOP
from tests.samples import shared_file

__all__ = [
    "LOADED",
    "REQUEST_XSD",
    "RESPONSE_XSD",
    "assert_valid_request",
    "assert_valid_response",
    "request_schema",
    "response_schema",
]

REQUEST_XSD = "schemas/xds-i/XDSI.b_ImagingDocumentSource.xsd"
RESPONSE_XSD = "schemas/xds-i/XDS.b_DocumentRepository.xsd"

LOADED: set[str] = set()
"""Every file the schema loader read (absolute paths)."""


class _InFolderOnly(etree.Resolver):  # type: ignore[misc]
    """Lets libxml2 read files of one folder and refuses every other URL."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def resolve(self, url: str, public_id: str | None, context: Any) -> None:
        path = Path(url.removeprefix("file://")).resolve()
        if "://" in url.replace("file://", "", 1) or not path.is_relative_to(self.folder):
            raise ValueError(f"schema import outside {self.folder}: {url}")
        LOADED.add(str(path))


@functools.cache
def _schema(name: str) -> Any:
    path = shared_file(name).resolve()
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(_InFolderOnly(path.parent))
    return etree.XMLSchema(etree.parse(str(path), parser))


def request_schema() -> Any:
    """The RAD-69/RAD-75 request schema (``lxml.etree.XMLSchema``), loaded once."""
    return _schema(REQUEST_XSD)


def response_schema() -> Any:
    """The XDS.b schema holding ``RetrieveDocumentSetResponse``, loaded once."""
    return _schema(RESPONSE_XSD)


def _body_child(element: Any) -> Any:
    """``element`` itself, or the first child of its Body when it is a SOAP envelope."""
    if isinstance(element, bytes):
        element = etree.fromstring(
            element, etree.XMLParser(resolve_entities=False, no_network=True)
        )
    if element.tag == f"{{{SOAP12}}}Envelope":
        body = element.find(f"{{{SOAP12}}}Body")
        assert body is not None and len(body), "the envelope has an empty or no Body"
        return body[0]
    return element


def _assert_valid(schema: Any, element: Any, what: str) -> None:
    if schema.validate(element):
        return
    problems = "\n".join(f"  line {error.line}: {error.message}" for error in schema.error_log)
    raise AssertionError(f"{what} does not validate against its schema:\n{problems}")


def assert_valid_request(body_child: Any) -> None:
    """``RetrieveImagingDocumentSetRequest`` (the element, its envelope, or envelope bytes)
    valid against XDSI.b_ImagingDocumentSource.xsd; AssertionError listing the schema's
    errors otherwise."""
    _assert_valid(request_schema(), _body_child(body_child), "the request")


def assert_valid_response(body_child: Any) -> None:
    """``RetrieveDocumentSetResponse`` (the element, its envelope, or envelope bytes) valid
    against XDS.b_DocumentRepository.xsd once its XOP Includes are reconstructed (module
    docstring); AssertionError listing the schema's errors otherwise. The element given is
    not modified."""
    element = copy.deepcopy(_body_child(body_child))
    for document in element.iter(f"{{{XDSB}}}Document"):
        includes = document.findall(f"{{{XOP}}}Include")
        if len(includes) == 1 and len(document) == 1 and not (document.text or "").strip():
            document.remove(includes[0])
            document.text = ""
    _assert_valid(response_schema(), element, "the response")
