"""The inbound edge: what happens to a request before a protocol handler sees it.

Owns: the route table as data (:mod:`.routes`), the exchange middleware that maps every
error to the wire once (:mod:`.middleware`), inbound hardening — limits, CORS, client
certificates, rate and stream caps (:mod:`.hardening`, :mod:`.cors`) —, the TLS listener that
reports failed handshakes (:mod:`.tlsaccept`), health endpoints (:mod:`.health`), what a
reload may change — the registry and the server settings in force — (:mod:`.reload`), the
drain at SIGTERM (:mod:`.drain`), the admin listener (:mod:`.admin`) and the last outcome
per upstream base URL it shows (:mod:`.upstreams`).

May import: :mod:`routing`, the top-level ``gateway`` modules (errors, exchange, keys,
settings), :mod:`gateway.sinks` and, for TLS contexts and the hand-over value, the
:mod:`gateway.relay` modules ``tls`` and ``handover``. Never a protocol or the consumer.
"""
