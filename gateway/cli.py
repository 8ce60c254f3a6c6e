"""The ``mado-gateway`` command line.

::

    mado-gateway serve --config FILE [--host H] [--port P]
    mado-gateway check-config FILE [FILE …]
    mado-gateway config-schema [--format json|markdown]
    mado-gateway manifest validate|convert|create …     (mado.cli)
    mado-gateway fetch MANIFEST --out DIR …              (gateway.consumer.cli)

Every failure is a message on standard error and a non-zero exit status, never a traceback:
1 for a configuration with problems, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import signal
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.app import create_app
from gateway.audit.errors import JournalError
from gateway.audit.service import AuditService
from gateway.audit.settings import AuditSettings, parse_audit_settings
from gateway.consumer.cli import add_commands as add_fetch_commands
from gateway.edge.reload import RegistryHolder
from gateway.edge.tlsaccept import HandshakeFailures, TlsSite
from gateway.keys import SECURITY
from gateway.relay.tls import server_context
from gateway.settings import ServerSettings, parse_server_settings
from gateway.sinks.logs import configure_logging
from mado.cli import add_commands as add_manifest_commands
from routing.errors import ConfigError, ConfigProblem
from routing.fields import load_document
from routing.loader import parse_config
from routing.model import Config
from routing.reference import document_schema, reference_markdown
from routing.registry import Registry

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]
T = TypeVar("T")

SECTIONS: dict[str, type] = {"server": ServerSettings, "audit": AuditSettings}
"""The sections of a configuration file that gateway packages own, beside the routing ones."""

_TITLE = "mado-gateway configuration"
_INTRO = """\
Generated from the declarations in `routing/model.py`, `routing/upstream.py`,
`routing/credentials.py`, `gateway/settings.py` and `gateway/audit/settings.py` by
`mado-gateway config-schema --format markdown` (`make config-docs`): do not edit it by hand,
a test fails when it is stale. `mado-gateway config-schema` prints the JSON Schema of the
same file, for editors and CI.

A configuration file is YAML or JSON, one mapping. A key left out and a key set to `null`
mean the same: the default. Durations are seconds and end in `_s`; sizes are bytes. Every
key not listed here is a problem, as is every value outside its type or range:
`mado-gateway check-config FILE` reports all of them at once, each with its field path
(`upstreams.pacs-a.base_urls[0]: 'pacs' must be an absolute http:// or https:// URL`). The
checks a schema cannot make (files exist and load, identifiers, secrets, names that refer
to each other) are made by the loader and `check-config`.
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    run: Command | None = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mado-gateway", description="Cross-community imaging gateway (XC-WADO, MADO)."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", "-c", required=True, help="configuration file (YAML or JSON)")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate configuration files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(run=_check_config)

    schema = commands.add_parser(
        "config-schema",
        help="print the JSON Schema of a configuration file (or its reference in Markdown)",
    )
    schema.add_argument("--format", choices=("json", "markdown"), default="json")
    schema.set_defaults(run=_config_schema)

    add_manifest_commands(commands)
    add_fetch_commands(commands)
    return parser


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """Everything one configuration file configures."""

    config: Config
    server: ServerSettings
    audit: AuditSettings


def load_all(path: str) -> Loaded:
    """Every section of one file; :class:`ConfigError` lists every problem of all of them."""
    document = load_document(path)
    problems: list[ConfigProblem] = []

    def read(parse: Callable[..., T]) -> T | None:
        try:
            return parse(document, source=path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            return None

    config = read(functools.partial(parse_config, foreign_sections=SECTIONS.keys()))
    server = read(parse_server_settings)
    audit = read(parse_audit_settings)
    if problems or config is None or server is None or audit is None:
        raise ConfigError(problems, path)
    return Loaded(config=config, server=server, audit=audit)


def _check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            loaded = load_all(path)
        except ConfigError as exc:
            print(f"{path}: INVALID, {len(exc.problems)} problem(s)", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            status = 1
            continue
        config = loaded.config
        print(
            f"{path}: OK — community {config.identity.home_community_id}, "
            f"{len(config.upstreams)} upstream(s), {len(config.communities)} remote "
            f"community(ies), {len(config.sources)} source(s), "
            f"{len(config.location_aliases)} location alias(es), endpoint "
            f"{loaded.server.base_path}, audit to {loaded.audit.transport.value}"
        )
    return status


def _config_schema(args: argparse.Namespace) -> int:
    if args.format == "markdown":
        sys.stdout.write(reference_markdown(Config, SECTIONS, title=_TITLE, intro=_INTRO))
    else:
        description = "A mado-gateway configuration file; reference: docs/configuration.md."
        schema = document_schema(Config, SECTIONS, title=_TITLE, description=description)
        print(json.dumps(schema, indent=2))
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        loaded = load_all(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = loaded.server
    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)
    configure_logging(settings.log_level)
    holder = RegistryHolder(
        Registry(loaded.config), args.config, load=lambda path: load_all(path).config
    )
    metrics_registry = CollectorRegistry()
    audit = AuditService(loaded.audit, loaded.config.identity, registry=metrics_registry)
    app = create_app(
        settings, holder, metrics_registry=metrics_registry, audit=audit, handle_signals=True
    )
    try:
        asyncio.run(_serve_until_stopped(app, settings, metrics_registry))
    except JournalError as exc:  # the gateway does not serve without an audit trail
        print(f"cannot start: audit journal unusable: {exc}", file=sys.stderr)
        return 1
    except ssl.SSLError as exc:
        print(f"cannot start: TLS material unusable: {exc.reason or exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        print(f"cannot start on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


async def _serve_until_stopped(
    app: web.Application, settings: ServerSettings, registry: CollectorRegistry
) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully (in-flight requests finish,
    the audit trail records Application Stop). HTTPS goes through :class:`TlsSite`, so that
    failed handshakes are alerted (checklist item 53)."""
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site: web.BaseSite
        if settings.tls is None:
            site = web.TCPSite(runner, settings.host, settings.port)
        else:
            site = TlsSite(
                runner,
                settings.host,
                settings.port,
                ssl_context=server_context(
                    cert_file=settings.tls.cert_file,
                    key_file=settings.tls.key_file,
                    client_ca_file=settings.tls.client_ca_file,
                    require_client_cert=settings.tls.require_client_cert,
                ),
                failures=HandshakeFailures(app[SECURITY], registry, settings.tls),
                handshake_timeout_s=settings.tls.handshake_timeout_s,
            )
        await site.start()
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
