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
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace

from aiohttp import web

from gateway import __version__
from gateway.app import create_app
from gateway.consumer.cli import add_commands as add_fetch_commands
from gateway.logs import configure_logging
from gateway.reload import RegistryHolder
from gateway.settings import ServerSettings, parse_server_settings
from gateway.tls import server_context
from mado.cli import add_commands as add_manifest_commands
from routing.errors import ConfigError, ConfigProblem
from routing.loader import load_document, parse_config
from routing.model import Config
from routing.registry import Registry

__all__ = ["main"]

Command = Callable[[argparse.Namespace], int]


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


def load_all(path: str) -> tuple[Config, ServerSettings]:
    """Routing configuration and server settings from one file; every problem of both at once."""
    document = load_document(path)
    problems: list[ConfigProblem] = []
    config = settings = None
    try:
        config = parse_config(document, source=path)
    except ConfigError as exc:
        problems += exc.problems
    try:
        settings = parse_server_settings(document, source=path)
    except ConfigError as exc:
        problems += exc.problems
    if problems or config is None or settings is None:
        raise ConfigError(problems, path)
    return config, settings


def _check_config(args: argparse.Namespace) -> int:
    status = 0
    for path in args.files:
        try:
            config, settings = load_all(path)
        except ConfigError as exc:
            print(f"{path}: INVALID, {len(exc.problems)} problem(s)", file=sys.stderr)
            for problem in exc.problems:
                print(f"  {problem}", file=sys.stderr)
            status = 1
            continue
        print(
            f"{path}: OK — community {config.identity.home_community_id}, "
            f"{len(config.upstreams)} upstream(s), {len(config.communities)} remote "
            f"community(ies), {len(config.sources)} source(s), endpoint {settings.base_path}"
        )
    return status


def _serve(args: argparse.Namespace) -> int:
    try:
        config, settings = load_all(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.host:
        settings = replace(settings, host=args.host)
    if args.port is not None:
        settings = replace(settings, port=args.port)
    configure_logging(settings.log_level)
    holder = RegistryHolder(Registry(config), args.config)
    app = create_app(settings, holder, handle_signals=True)
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
    except OSError as exc:
        print(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0
