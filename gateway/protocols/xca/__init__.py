"""XCA-I over SOAP 1.2 + WS-Addressing + MTOM/XOP: RAD-69 and RAD-75, both gateway roles, and
the bridges between them and DICOMweb (xcai-digest.md; design.md §1 bridge matrix).

Pure modules (no aiohttp, no asyncio; a test enforces it): :mod:`.model` (the messages as
values), :mod:`.errors` (the error tree), :mod:`.envelope` (SOAP envelopes read and written
with a hardened XML parser; :mod:`.bodies` the Body elements, :mod:`.xmlsafe` the parser),
:mod:`.mtom` (MTOM/XOP framing read and written, sans I/O), :mod:`.outcomes` (status
consolidation and the bridge mappings).

May import :mod:`routing`, :mod:`mado`, the top-level ``gateway`` modules,
:mod:`gateway.keys`, :mod:`gateway.settings`, :mod:`gateway.relay` and
:mod:`gateway.protocols`; never the edge, a sink or the consumer.
"""
