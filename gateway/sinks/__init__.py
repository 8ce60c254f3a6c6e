"""Telemetry sinks: everything here is derived from sealed or answering exchanges.

Owns: Prometheus metrics (:mod:`.metrics`), security alerts (:mod:`.security`) and the JSON
log lines (:mod:`.logs`). The ATNA audit trail is a sink too, in its own package
(:mod:`gateway.audit`).

May import: :mod:`routing` and the top-level ``gateway`` modules ``exchange`` and
``instances``. Never the relay, the edge, a protocol or the consumer: telemetry flows one way.
"""
