"""A second-opinion RAD-69 / RAD-75 consumer: python-zeep driven by our own WSDL.

``tests/functional/data/rad69.wsdl`` and ``rad75.wsdl`` are written for this project (SOAP 1.2
binding, document/literal, ``wsam:Action`` on input and output, the body elements taken from
the shared XDS-I.b schemas). They are templates: the schema folder is filled in at run time
(``../shared/schemas/xds-i`` or ``$MADO_SHARED_DIR``, through :mod:`tests.samples`), the
result written to a temporary folder that zeep reads and that is removed at once. The
request therefore has ``DocumentRequest`` in the xds-b namespace, as those schemas say.

What zeep does and does not do (xcai-digest.md §5.1), and what it means for tests using it:

* It sends **plain SOAP 1.2** (``application/soap+xml; action=...``, plus a ``SOAPAction``
  header taken from the binding), never MTOM. NIST counts that as an error for RAD-69/RAD-75;
  a gateway is expected to accept it (checklist 1), so this client tests exactly that
  tolerance and nothing about MTOM requests.
* It adds ``wsa:Action``, ``wsa:MessageID`` and ``wsa:To`` by itself because the WSDL has
  ``wsam:Action`` (adding its WS-Addressing plugin too would duplicate them); it sends no
  ``ReplyTo`` and no ``mustUnderstand``.
* It **buffers the whole answer** (requests' body, then every part again as base64 text in
  the tree): small answers only.
* It takes the **first part as the root**, ignoring ``start``: a root that is not first makes
  it fail.
* It **strips every leading and trailing CR and LF byte** of a part sent with
  ``Content-Transfer-Encoding: binary``. Tests using it must use instances whose bytes neither
  begin nor end with 0x0D/0x0A, or compare modulo that stripping
  (:func:`zeep_equivalent`); byte identity is checked with :mod:`tests.functional.soapclient`.
* A SOAP Fault answer raises ``zeep.exceptions.Fault``; an ``xop:Include`` that names no part
  raises ``ValueError``.

:func:`zeep_retrieve` blocks (requests); async tests call it through ``asyncio.to_thread``.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Sequence
from pathlib import Path
from string import Template
from typing import Any

import requests
import zeep

from tests.functional.soapwire import RAD69, RAD75, Doc, RegistryErrorRow
from tests.functional.xdsi_schema import REQUEST_XSD
from tests.samples import shared_file

__all__ = ["DATA", "zeep_equivalent", "zeep_retrieve"]

DATA = Path(__file__).resolve().parent / "data"

_OPERATIONS = {
    RAD69: (
        "rad69.wsdl",
        "{urn:mado-gateway:tests:rad69}ImagingDocumentSourceSoap12",
        "RetrieveImagingDocumentSet",
    ),
    RAD75: (
        "rad75.wsdl",
        "{urn:mado-gateway:tests:rad75}RespondingGatewaySoap12",
        "CrossGatewayRetrieveImagingDocumentSet",
    ),
}


@functools.cache
def _client(action: str) -> Any:
    name, _, _ = _OPERATIONS[action]
    schemas = shared_file(REQUEST_XSD).resolve().parent
    text = Template((DATA / name).read_text(encoding="utf-8")).substitute(schemas=schemas)
    session = requests.Session()
    session.trust_env = False  # loopback peers: never through a proxy from the environment
    # zeep ships py.typed but leaves these constructors unannotated.
    transport = zeep.Transport(  # type: ignore[no-untyped-call]
        session=session, timeout=30, operation_timeout=60
    )
    settings = zeep.Settings(strict=True, forbid_external=True, forbid_dtd=True)
    with tempfile.TemporaryDirectory(prefix="zeep-wsdl-") as folder:
        wsdl = Path(folder) / name
        wsdl.write_text(text, encoding="utf-8")
        return zeep.Client(  # type: ignore[no-untyped-call]
            str(wsdl), transport=transport, settings=settings
        )


def zeep_retrieve(
    url: str,
    documents: Sequence[Doc],
    transfer_syntaxes: Sequence[str],
    action: str = RAD69,
) -> tuple[str, list[tuple[str, bytes]], list[RegistryErrorRow]]:
    """One RAD-69 (``action=RAD69``) or RAD-75 (``RAD75``) call through zeep.

    Returns ``(RegistryResponse status, [(DocumentUniqueId, bytes)], [RegistryError rows])``
    in the answer's order. Blocks; raises what zeep raises (module docstring).
    """
    _, binding, operation = _OPERATIONS[action]
    client = _client(action)
    service = client.create_service(binding, url)
    studies: dict[str, dict[str, list[dict[str, str | None]]]] = {}
    for doc in documents:
        studies.setdefault(doc.study, {}).setdefault(doc.series, []).append(
            {
                "HomeCommunityId": doc.home_community_id,
                "RepositoryUniqueId": doc.repository_id,
                "DocumentUniqueId": doc.document_uid,
            }
        )
    result = getattr(service, operation)(
        StudyRequest=[
            {
                "studyInstanceUID": study,
                "SeriesRequest": [
                    {"seriesInstanceUID": series, "DocumentRequest": requests_}
                    for series, requests_ in series_map.items()
                ],
            }
            for study, series_map in studies.items()
        ],
        TransferSyntaxUIDList={"TransferSyntaxUID": list(transfer_syntaxes)},
    )
    registry = result.RegistryResponse
    error_list = registry.RegistryErrorList
    errors = [
        RegistryErrorRow(
            code=str(error.errorCode),
            context=str(error.codeContext),
            location=None if error.location is None else str(error.location),
            severity=str(error.severity),
        )
        for error in (error_list.RegistryError if error_list is not None else [])
    ]
    returned = [
        (str(item.DocumentUniqueId), bytes(item.Document))
        for item in (result.DocumentResponse or [])
    ]
    return str(registry.status), returned, errors


def zeep_equivalent(received: bytes, original: bytes) -> bool:
    """Whether zeep's copy of a binary part matches ``original`` once zeep's stripping of
    leading and trailing CR/LF bytes is taken into account."""
    return received == original.strip(b"\r\n")
