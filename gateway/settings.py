"""Process settings: the ``server`` section of the configuration file.

The routing sections are read by :mod:`routing.loader`; this module reads the part that only
the running process cares about (where to listen, under which path, how it is seen from
outside) with the same field-path error reporting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from routing.errors import ConfigError, ConfigProblem
from routing.loader import Fields, parse_base_url

__all__ = ["ServerSettings", "parse_server_settings"]

_BASE_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """Where and how the gateway serves.

    ``base_path`` is the XC-WADO endpoint path: RAD-160 requests are
    ``{base_path}/homeCommunityId/…``. ``public_url`` is the gateway's endpoint as consumers
    reach it (through any load balancer); metadata URLs are rewritten to it. When unset it
    is derived from each request's scheme and ``Host``.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = "/wado"
    public_url: str | None = None
    read_buffer_bytes: int = 256 * 1024
    log_level: str = "INFO"


def parse_server_settings(
    document: Mapping[str, Any], *, source: str = "configuration"
) -> ServerSettings:
    """Read ``server`` from a parsed document. Raises :class:`ConfigError` with every problem."""
    problems: list[ConfigProblem] = []
    fields = Fields(document.get("server"), "server", problems)
    default = ServerSettings()
    host = fields.text("host", default.host) or default.host
    port = fields.integer("port", default.port, minimum=0)
    if port > 65535:
        fields.problem("port", "must be at most 65535")
    base_path = fields.text("base_path", default.base_path) or default.base_path
    base_path = base_path.rstrip("/")
    if _BASE_PATH.fullmatch(base_path) is None:
        fields.problem("base_path", "must be a path such as /wado (letters, digits, . _ ~ -)")
    public_url = fields.text("public_url")
    if public_url is not None:
        try:
            public_url = parse_base_url(public_url)
        except ValueError as exc:
            fields.problem("public_url", f"{public_url!r} {exc}")
    read_buffer = fields.integer("read_buffer_bytes", default.read_buffer_bytes, minimum=65536)
    log_level = (fields.text("log_level", default.log_level) or default.log_level).upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        fields.problem("log_level", "must be DEBUG, INFO, WARNING or ERROR")
    fields.finish()
    if problems:
        raise ConfigError(problems, source)
    return ServerSettings(
        host=host,
        port=port,
        base_path=base_path,
        public_url=public_url,
        read_buffer_bytes=read_buffer,
        log_level=log_level,
    )
