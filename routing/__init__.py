"""The routing core: configuration in, routes out. Pure and synchronous.

Nothing in this package imports aiohttp or asyncio or performs network I/O (a test enforces
it), so every routing decision can be tested as a plain function. Read the modules in this
order: :mod:`routing.ids` (identifier value types), :mod:`routing.rad160` (the request
grammar), :mod:`routing.model` and :mod:`routing.loader` (configuration), and
:mod:`routing.registry` (the decision).
"""
