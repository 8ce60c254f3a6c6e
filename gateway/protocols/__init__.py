"""The protocols the gateway speaks, one package each: :mod:`.xcwado` (RAD-160) today.

A protocol package owns its handlers, its request grammar's use of the registry and what
it rewrites at the border. It may import :mod:`routing`, :mod:`mado`, the top-level
``gateway`` modules and :mod:`gateway.relay`; never the edge, a sink, the consumer or
another protocol.
"""
