"""The admin listener: what an operator and Prometheus read, away from the public port.

==========================  =============================================================
path                        answer
==========================  =============================================================
``GET /metrics``            Prometheus text exposition; with several workers, every
                            worker's metrics added up (prometheus-client multiprocess mode)
``GET /livez``              200 while the event loop runs
``GET /readyz``             200 when serving, 503 with the reasons otherwise
                            (:mod:`.health`): also ``draining`` from SIGTERM on
``GET /admin/routes``       the routing registry in force: communities, sources, location
                            aliases, upstreams (protocol, base URLs, TLS files, the
                            credential's scheme and where it comes from, never the secret)
``GET /admin/config``       the effective configuration, every section, defaults filled in,
                            secrets as ``<redacted>``, with the file's path and SHA-256
``GET /admin/upstreams``    the last outcome per configured base URL (:mod:`.upstreams`)
``GET /openapi.json``       the OpenAPI document of the HTTP surface (``docs/openapi.yaml``)
==========================  =============================================================

It listens on ``server.admin`` (127.0.0.1:8081 by default); nothing on it is rate-limited or
audited, so keep it on loopback or a management network. ``/metrics`` is not served on the
public port. With several workers each one listens on the admin port too (SO_REUSEPORT):
whichever answers gives the same metrics and the same upstream table (both read from the
state directory); ``/readyz`` and ``/admin/config`` are that worker's, and every worker
reloads the same file on SIGHUP.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from gateway.edge import health
from gateway.edge.reload import LiveSettings, RegistryHolder
from gateway.edge.upstreams import UpstreamOutcomes, merged, shown_base
from gateway.keys import HOLDER, READINESS
from routing.credentials import Credential, Secret
from routing.declare import settings_of

__all__ = ["AdminView", "admin_app", "plain"]

REDACTED = "<redacted>"
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


@dataclass(frozen=True, slots=True, kw_only=True)
class AdminView:
    """What the admin listener shows, each read at the moment of the request.

    ``metrics`` gives the exposition bytes and its content type; ``sections`` the parsed
    sections other than ``server`` and the routing (``audit``); ``source`` the file's path
    and SHA-256; ``outcomes_folder`` where the workers' upstream tables are (None: one
    process).
    """

    holder: RegistryHolder
    live: LiveSettings
    metrics: Callable[[], tuple[bytes, str]]
    outcomes: UpstreamOutcomes
    outcomes_folder: Path | None
    sections: Callable[[], Mapping[str, object]]
    source: Callable[[], Mapping[str, str | None]]
    readiness: list[Callable[[], str | None]]
    openapi: Callable[[], bytes | None]


ADMIN_VIEW = web.AppKey("admin_view", AdminView)


def admin_app(view: AdminView) -> web.Application:
    """The admin application (module docstring)."""
    app = web.Application()
    app[ADMIN_VIEW] = view
    app[HOLDER] = view.holder
    app[READINESS] = view.readiness
    for path, handler in (
        ("/metrics", _metrics),
        ("/livez", health.livez),
        ("/readyz", health.readyz),
        ("/admin/routes", _routes),
        ("/admin/config", _config),
        ("/admin/upstreams", _upstreams),
        ("/openapi.json", _openapi),
    ):
        app.router.add_get(path, handler)
    return app


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[ADMIN_VIEW].metrics()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def _routes(request: web.Request) -> web.Response:
    view = request.app[ADMIN_VIEW]
    config = view.holder.registry.config
    return _json(
        {
            "generation": view.holder.generation,
            "self": plain(config.identity),
            "communities": plain(config.communities),
            "sources": plain(config.sources),
            "location_aliases": plain(config.location_aliases),
            "url_policy": plain(config.url_policy),
            "upstreams": {
                name: {
                    "protocol": upstream.protocol.value,
                    "base_urls": [shown_base(url) for url in upstream.base_urls],
                    "tls": plain(upstream.tls),
                    "auth": plain(upstream.auth),
                    "forward_authorization": upstream.forward_authorization,
                }
                for name, upstream in config.upstreams.items()
            },
        }
    )


async def _config(request: web.Request) -> web.Response:
    view = request.app[ADMIN_VIEW]
    config = view.holder.registry.config
    document: dict[str, Any] = {"source": dict(view.source())}
    document["server"] = plain(view.live.current)
    for key, value in view.sections().items():
        document[key] = plain(value)
    document.update(plain(config))
    return _json(document)


async def _upstreams(request: web.Request) -> web.Response:
    view = request.app[ADMIN_VIEW]
    own = f"worker-{view.outcomes.worker}.json"
    rows = merged(view.outcomes.rows(), view.outcomes_folder, skip=own)
    configured = {
        (name, shown_base(url))
        for name, upstream in view.holder.registry.config.upstreams.items()
        for url in upstream.base_urls
    }
    seen = {(row["upstream"], row["base_url"]) for row in rows}
    never = [
        {"upstream": name, "base_url": base, "at": None}
        for name, base in sorted(configured - seen)
    ]
    current = [row for row in rows if (row["upstream"], row["base_url"]) in configured]
    return _json({"upstreams": current + never})


async def _openapi(request: web.Request) -> web.Response:
    document = request.app[ADMIN_VIEW].openapi()
    if document is None:
        raise web.HTTPNotFound()
    return web.Response(body=document, content_type="application/json")


def _json(document: object) -> web.Response:
    return web.Response(
        body=orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS),
        content_type="application/json",
    )


def plain(value: object) -> Any:
    """``value`` as JSON values: dataclasses by their fields (a declared field under its key
    in the file: ``self``, ``type``), mappings with text keys, sets
    sorted, enums by value; a :class:`Secret` (and so every credential's) as ``<redacted>``,
    credentials in URLs removed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, Credential):
        return {
            "type": value.scheme.value,
            "username": value.username,
            "secret": REDACTED,
            "source": value.source,
        }
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, str):
        return _USERINFO.sub("", value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network | Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        keys = {field.name: key for key, field, _ in settings_of(type(value))}  # as in a file
        return {
            keys.get(field.name, field.name): plain(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if not field.name.startswith("_")
        }
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, frozenset | set):
        return sorted((plain(item) for item in value), key=str)
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    return str(value)
