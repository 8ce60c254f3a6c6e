"""The protocols the gateway speaks, one package each: :mod:`.xcwado` (RAD-160) and
:mod:`.xca` (RAD-69 / RAD-75 over SOAP).

A protocol package owns its handlers, its request grammar's use of the registry and what
it rewrites at the border. It may import :mod:`routing`, :mod:`mado`, the top-level
``gateway`` modules and :mod:`gateway.relay`; never the edge, a sink, the consumer or
another protocol — with one exception, the bridge: :mod:`.xcwado`'s handler hands a RAD-160
whose route leads to a SOAP upstream (a ``rad-75`` community, a ``rad-69`` source) to
:func:`.xca.fromweb.bridge`, the XCA-I package's entry point for DICOMweb requests, and
imports nothing else of it.
"""
