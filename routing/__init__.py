"""The routing core: configuration in, routes out. Pure and synchronous.

Nothing in this package imports aiohttp or asyncio or performs network I/O (a test enforces
it), so every routing decision can be tested as a plain function. Read the modules in this
order: :mod:`routing.ids` (identifier value types), :mod:`routing.rad160` (the request
grammar), :mod:`routing.model` and :mod:`routing.upstream` (the configuration, each field
declared once with :mod:`routing.declare` and :mod:`routing.kinds`), :mod:`routing.loader`
(reading it), :mod:`routing.reference` (its JSON Schema and reference) and
:mod:`routing.registry` (the decision).
"""
