"""The outbound side: one leg of an exchange, from the upstream request to the last byte.

Owns: the upstream pool and its TLS and address policy (:mod:`.upstream`, :mod:`.tls`,
:mod:`.addresses`), the redirect loop (:mod:`.redirects`), the attempt phase with failover
(:mod:`.forward`), the streaming copy and how a body ends (:mod:`.stream`, :mod:`.bodyend`),
the pass-through copy below aiohttp on plain TCP (:mod:`.takeover`, :mod:`.rawcopy`,
:mod:`.rawio`), the multipart core and the DICOM part scanner (:mod:`.multipart`,
:mod:`.partscan`, :mod:`.dicomheader`), which headers cross (:mod:`.headers`) and what a
handler hands over (:mod:`.handover`).

May import: :mod:`routing` and the top-level ``gateway`` modules ``errors``, ``exchange``
and ``instances``. Never ``gateway.keys`` or ``request.app`` (what it needs is passed in),
the edge, a protocol, a sink or the consumer: it records outcomes on the exchange and the
sinks derive everything from them.
"""
