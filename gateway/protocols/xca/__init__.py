"""XCA-I over SOAP 1.2 + WS-Addressing + MTOM/XOP: RAD-69 and RAD-75, both gateway roles, and
the bridges between them and DICOMweb (xcai-digest.md; design.md §1 bridge matrix).

Reading order, following one request through the endpoint:

1. :mod:`.handler` — ``POST {server.xca.path}``: the body read bounded, the envelope parsed,
   the role chosen from ``wsa:Action``;
2. :mod:`.respond` — plan, fetch every group concurrently, consolidate, answer;
3. :mod:`.plan` — which upstream answers for which document, and what is refused unasked;
4. the fetchers, each handed one :class:`.fetching.Fetching` per request and giving a
   :class:`.results.GroupAnswer` (:mod:`.results`, the seam):
   :mod:`.client` (RAD-75 / RAD-69 to a SOAP upstream, its answer read by
   :mod:`.answerstream` and, while another group streams, copied aside by :mod:`.spill`)
   and :mod:`.bridge` (one WADO-RS or RAD-160 instance GET per document, each instance
   checked into the :mod:`.spool` by :mod:`.bridgebody`);
5. :mod:`.consolidate` — one response from the groups' answers and the refusals;
6. :mod:`.answer` — the MTOM answer streamed to the client (sealed before its last
   delimiter, aborted when a promised document cannot be delivered);
7. :mod:`.faults` — every error on the route as a SOAP Fault or a Failure answer.

The other direction, a RAD-160 whose route leads to a SOAP upstream (handed over by
:mod:`gateway.protocols.xcwado.handler`): :mod:`.fromweb` (the entry point, one group sent
with :mod:`.client`, the HTTP status from the answer's), :mod:`.webrequest` (the RAD-160 as
DocumentRequests and a TransferSyntaxUIDList) and :mod:`.reframe` (the documents as
DICOMweb parts).

Pure modules (no aiohttp, no asyncio; a test enforces it): :mod:`.model` (the messages as
values), :mod:`.errors` (the error tree), :mod:`.envelope` (SOAP envelopes read and written
with a hardened XML parser; :mod:`.bodies` the Body elements, :mod:`.xmlsafe` the parser),
:mod:`.mtom` (MTOM/XOP framing read and written, sans I/O), :mod:`.outcomes` (status
<<<<<<< HEAD
consolidation and the bridge mappings), :mod:`.consolidate`, :mod:`.webrequest`.
=======
consolidation and the bridge mappings), :mod:`.plan`, :mod:`.screening` (an upstream's
answer checked against what was asked of it), :mod:`.consolidate`.
>>>>>>> main

May import :mod:`routing`, :mod:`mado`, the top-level ``gateway`` modules,
:mod:`gateway.keys`, :mod:`gateway.settings`, :mod:`gateway.relay` and
:mod:`gateway.protocols` (and :mod:`gateway.manifestcache`, through which the bridge
finds the instances of a study); never the edge, a sink or the consumer.
"""
