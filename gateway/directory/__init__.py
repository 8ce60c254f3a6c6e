"""Directory-backed resolution: Retrieve Location UIDs and homeCommunityIds that the static
registry does not name, looked up in a FHIR Endpoint directory and cached (design.md §3,
docs/directory.md).

Modules::

    fhir      pure: the search URLs and how an answer Bundle is read
    cache     the bounded TTL cache that reports what leaves it
    metrics   mado_gateway_directory_* metrics
    resolver  Directory: the look-up, one search per key, the pool bound; DirectoryUnavailable

May import :mod:`routing`, :mod:`gateway.relay` (the pool, TLS, address checks) and
:mod:`gateway.errors`; nothing imports it but the wiring and the RAD-160 handler.

Errors::

    GatewayError (gateway.errors)
     └── DirectoryUnavailable  503 directory-unavailable
"""

from __future__ import annotations

from gateway.directory.metrics import DirectoryMetrics
from gateway.directory.resolver import Directory, DirectoryUnavailable

__all__ = ["Directory", "DirectoryMetrics", "DirectoryUnavailable"]
