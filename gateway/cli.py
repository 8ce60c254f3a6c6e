"""The ``mado-gateway`` command line.

::

    mado-gateway serve --config FILE [--host H] [--port P] [--workers N]
    mado-gateway check-config FILE [FILE …] [--format text|json] [--user NAME] [--workers N]
    mado-gateway config-schema [--format json|markdown]
    mado-gateway manifest validate|convert|create …     (mado.cli)
    mado-gateway fetch MANIFEST --out DIR …              (gateway.consumer.cli)

``--version`` (on the command and every subcommand) prints the version and the commit.
Every failure is a message on standard error and a non-zero exit status, never a traceback:
1 for a configuration with problems, 2 for a usage error. How ``serve`` runs, reloads and
stops: :mod:`gateway.service`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gateway.consumer.cli import add_commands as add_fetch_commands
from gateway.service.checks import ServiceUser, machine_problems
from gateway.service.config import SECTIONS, Loaded, load_all, summary
from gateway.service.serve import Overrides, WorkerSlot, serve_process, start_fields
from gateway.service.state import StateError, claim_state
from gateway.service.version import version_line
from gateway.service.workers import supervise
from gateway.sinks.logs import configure_logging
from mado.cli import add_commands as add_manifest_commands
from routing.errors import ConfigError, ConfigProblem
from routing.model import Config
from routing.positions import locate
from routing.reference import document_schema, reference_markdown

__all__ = ["Loaded", "load_all", "main"]

Command = Callable[[argparse.Namespace], int]
log = logging.getLogger("mado_gateway")

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


class _Version(argparse.Action):
    """``--version``: the version and the commit, computed only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and the commit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        print(version_line())
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mado-gateway", description="Cross-community imaging gateway (XC-WADO, XCA-I, MADO)."
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", "-c", required=True, help="configuration file (YAML or JSON)")
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument(
        "--workers",
        type=_positive,
        help="worker processes sharing the port (overrides server.workers; default: cores)",
    )
    serve.set_defaults(run=_serve)

    check = commands.add_parser("check-config", help="validate configuration files")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument(
        "--user", help="the user the service runs as, for the folder checks (default: you)"
    )
    check.add_argument("--workers", type=_positive, help="check for this many workers")
    check.set_defaults(run=_check_config)

    schema = commands.add_parser(
        "config-schema",
        help="print the JSON Schema of a configuration file (or its reference in Markdown)",
    )
    schema.add_argument("--format", choices=("json", "markdown"), default="json")
    schema.set_defaults(run=_config_schema)

    add_manifest_commands(commands)
    add_fetch_commands(commands)
    _add_version(parser)
    return parser


def _add_version(parser: argparse.ArgumentParser) -> None:
    """``--version`` on ``parser`` and on every subcommand below it."""
    parser.add_argument("--version", action=_Version)
    for action in parser._actions:  # argparse keeps its subcommands only there
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _add_version(sub)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _check_config(args: argparse.Namespace) -> int:
    try:
        user = ServiceUser.named(args.user) if args.user else ServiceUser.current()
    except KeyError:
        print(f"check-config: no user {args.user!r} on this machine", file=sys.stderr)
        return 2
    reports = [_check_one(path, user, args.workers) for path in args.files]
    if args.format == "json":
        print(json.dumps({"files": reports}, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(report["valid"] for report in reports) else 1


def _check_one(path: str, user: ServiceUser, workers: int | None) -> dict[str, Any]:
    problems: list[ConfigProblem]
    try:
        loaded = load_all(path)
    except ConfigError as exc:
        problems = list(exc.problems)
        return {"file": path, "valid": False, "problems": [_problem(p) for p in problems]}
    problems = [
        locate(problem, loaded.positions)
        for problem in machine_problems(loaded, user=user, workers=workers)
    ]
    server = loaded.server
    report: dict[str, Any] = {
        "file": path,
        "valid": not problems,
        "problems": [_problem(p) for p in problems],
        "summary": {
            **summary(loaded),
            "endpoint": server.base_path,
            "audit": [f"{d.name}:{d.transport.value}" for d in loaded.audit.destinations],
            "workers": workers or server.worker_count,
            "sha256": loaded.sha256,
        },
    }
    return report


def _problem(problem: ConfigProblem) -> dict[str, Any]:
    return {
        "path": problem.path,
        "reason": problem.reason,
        "line": problem.line,
        "column": problem.column,
    }


def _print_report(report: dict[str, Any]) -> None:
    path = report["file"]
    if not report["valid"]:
        print(f"{path}: INVALID, {len(report['problems'])} problem(s)", file=sys.stderr)
        for item in report["problems"]:
            problem = ConfigProblem(**item)
            print(f"  {problem.located(path)}", file=sys.stderr)
        return
    facts = report["summary"]
    print(
        f"{path}: OK — community {facts['home_community_id']}, {facts['upstreams']} "
        f"upstream(s), {facts['communities']} remote community(ies), {facts['sources']} "
        f"source(s), {facts['location_aliases']} location alias(es), endpoint "
        f"{facts['endpoint']}, audit to {', '.join(facts['audit'])}, "
        f"{facts['workers']} worker(s), sha256 {facts['sha256'][:12]}"
    )


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
        print(f"{args.config}: {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem.located(args.config)}", file=sys.stderr)
        return 1
    overrides = Overrides(host=args.host, port=args.port, workers=args.workers)
    settings = overrides.apply(loaded.server)
    count = settings.worker_count
    if count > 1 and (settings.port == 0 or (settings.admin.enabled and settings.admin.port == 0)):
        fixed = "several workers need fixed ports (server.port, server.admin.port)"
        print(f"cannot start: {fixed}", file=sys.stderr)
        return 1
    try:
        own = settings.state_directory is not None or "STATE_DIRECTORY" in os.environ
        state = claim_state(settings.state_path, loaded.audit, own=own)
    except StateError as exc:
        print(f"cannot start: {exc}", file=sys.stderr)
        return 1
    if count == 1:
        return serve_process(loaded, overrides, state)
    configure_logging(settings.log_level)
    state.fresh(state.metrics)
    state.fresh(state.upstreams)
    _warn_orphan_journals(loaded, count)

    def run_worker(index: int, ready_fd: int) -> int:
        try:
            current = load_all(args.config)  # a restarted worker reads the file as it is now
        except ConfigError:
            current = loaded
        slot = WorkerSlot(index=index, count=count, ready_fd=ready_fd)
        return serve_process(current, overrides, state, slot)

    def started() -> None:
        log.info("gateway started", extra=start_fields(loaded, settings, count))

    status = supervise(count, run_worker, metrics_folder=state.metrics, started=started)
    log.info("gateway stopped", extra={"status": status})
    return status


def _warn_orphan_journals(loaded: Loaded, count: int) -> None:
    """Journals of workers beyond ``count`` (a gateway once run with more) are sent by nobody:
    say so, so that the operator starts enough workers to empty them."""
    first = Path(loaded.audit.journal.directory)
    for folder in sorted(first.parent.glob(f"{first.name}-*")):
        suffix = folder.name[len(first.name) + 1 :]
        if suffix.isdigit() and int(suffix) >= count and any(folder.glob("*.seg")):
            log.warning(
                "an audit journal no worker sends from: start with more workers to empty it",
                extra={"journal": str(folder), "needs_workers": int(suffix) + 1},
            )
