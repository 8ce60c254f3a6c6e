"""The ``mado-gateway`` command line.

::

    mado-gateway serve --config FILE [--host H] [--port P]
    mado-gateway check-config FILE [FILE …]
    mado-gateway manifest validate|convert|create …     (mado.cli)
    mado-gateway fetch MANIFEST --out DIR …              (gateway.consumer.cli)

Every failure is a message on standard error and a non-zero exit status, never a traceback:
1 for a configuration with problems, 2 for a usage error.
"""

from __future__ import annotations

import argparse
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
from gateway.logs import configure_logging
from gateway.reload import RegistryHolder
from gateway.settings import ServerSettings, parse_server_settings
from gateway.tls import server_context
from mado.cli import add_commands as add_manifest_commands
from routing.errors import ConfigError, ConfigProblem
from routing.fields import load_document
from routing.loader import parse_config
from routing.model import Config
from routing.registry import Registry

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]
T = TypeVar("T")


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

    config = read(parse_config)
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
    ssl_context = None
    if settings.tls is not None:  # HTTPS, with client certificates when configured
        ssl_context = server_context(
            cert_file=settings.tls.cert_file,
            key_file=settings.tls.key_file,
            client_ca_file=settings.tls.client_ca_file,
            require_client_cert=settings.tls.require_client_cert,
        )
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            ssl_context=ssl_context,
            handler_cancellation=True,
            access_log=None,
            print=None,
        )
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
