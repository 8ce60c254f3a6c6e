"""One serving process: its listeners, the admin listener, SIGHUP, SIGTERM, its log lines.

:func:`serve_process` runs the gateway in this process until SIGTERM or SIGINT — alone
(``--workers 1``) or as one worker of :mod:`.workers`. In order:

1. the application is built and started (the audit journal opened: the process does not
   serve without an audit trail), then the public listener (HTTPS through
   :class:`~gateway.edge.tlsaccept.TlsSite`) and the admin listener (:mod:`gateway.edge.admin`)
   open, with SO_REUSEPORT when there are several workers;
2. one INFO line ``gateway started`` (alone) or ``worker started``: listen addresses, roles,
   counts, the configuration file and its SHA-256, version and commit;
3. SIGHUP: the whole file is read again (:func:`reload`); one line says what changed and what
   needs a restart;
4. SIGTERM or SIGINT: the drain (:mod:`gateway.edge.drain`): the public listener closes,
   ``/readyz`` says 503 at once, requests get ``server.drain_s`` to finish, the rest are cut
   (``shutdown``); a second signal cuts at once. A line at the signal and one at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import ssl
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway import __version__
from gateway.app import create_app
from gateway.audit.errors import JournalError
from gateway.audit.service import AuditService
from gateway.edge.admin import AdminView, admin_app
from gateway.edge.reload import Applied, RegistryHolder
from gateway.edge.tlsaccept import HandshakeFailures, TlsSite
from gateway.keys import DRAIN, HOLDER, LIVE, METRICS, OUTCOMES, READINESS, SECURITY
from gateway.relay.tls import server_context
from gateway.service.allocator import limit_arenas
from gateway.service.config import Loaded, for_worker, load_all, summary
from gateway.service.state import State
from gateway.service.version import commit
from gateway.settings import ServerSettings
from gateway.sinks.logs import configure_logging
from gateway.sinks.metrics import enable_multiprocess, exposition
from routing.errors import ConfigError
from routing.registry import Registry

__all__ = ["Overrides", "WorkerSlot", "serve_process", "start_fields"]

log = logging.getLogger("mado_gateway")

OPENAPI = Path(__file__).resolve().parent.parent / "openapi.yaml"


@dataclass(frozen=True, slots=True, kw_only=True)
class Overrides:
    """What the command line says over the file (``--host``, ``--port``, ``--workers``);
    applied at start and to every reloaded file, so a reload never reports them."""

    host: str | None = None
    port: int | None = None
    workers: int | None = None

    def apply(self, settings: ServerSettings) -> ServerSettings:
        given = {k: v for k, v in dataclasses.asdict(self).items() if v is not None}
        return dataclasses.replace(settings, **given) if given else settings


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSlot:
    """This process is worker ``index`` of ``count``; it writes ``index`` and a line break
    to ``ready_fd`` once it listens."""

    index: int
    count: int
    ready_fd: int | None = None


def serve_process(
    loaded: Loaded, overrides: Overrides, state: State, slot: WorkerSlot | None = None
) -> int:
    """Serve until stopped (module docstring); the exit status: 0, or 1 when the process
    could not start (the reason on standard error)."""
    limit_arenas()  # before any thread of this process starts (module docstring)
    settings = overrides.apply(loaded.server)
    several = slot is not None and slot.count > 1
    index = slot.index if slot is not None else 0
    configure_logging(settings.log_level, **({"worker": index} if several else {}))
    if several:
        enable_multiprocess(state.metrics)
    audit_settings = for_worker(loaded.audit, index) if several else loaded.audit
    holder = RegistryHolder(Registry(loaded.config), loaded.path)
    metrics_registry = CollectorRegistry()
    audit = AuditService(audit_settings, loaded.config.identity, registry=metrics_registry)
    app = create_app(settings, holder, metrics_registry=metrics_registry, audit=audit, worker=index)
    folder = state.upstreams if several else None
    if folder is not None:
        app.cleanup_ctx.append(lambda app: app[OUTCOMES].publish(folder))
    process = _Process(
        app=app,
        loaded=loaded,
        overrides=overrides,
        audit=audit,
        metrics_registry=metrics_registry,
        metrics_folder=state.metrics if several else None,
        outcomes_folder=folder,
        slot=slot,
    )
    try:
        asyncio.run(process.run())
    except JournalError as exc:  # the gateway does not serve without an audit trail
        print(f"cannot start: audit journal unusable: {exc}", file=sys.stderr)
        return 1
    except ssl.SSLError as exc:
        print(f"cannot start: TLS material unusable: {exc.reason or exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = process.failed_at or f"{settings.host}:{settings.port}"
        print(f"cannot start on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def start_fields(loaded: Loaded, settings: ServerSettings, workers: int) -> dict[str, Any]:
    """What the start line says: where, as what, with what, from which file."""
    scheme = "https" if settings.tls is not None else "http"
    config = loaded.config
    roles = [
        role
        for role, present in (
            ("initiating", bool(config.communities)),
            ("responding", bool(config.sources)),
        )
        if present
    ]
    admin = settings.admin
    return {
        "listen": f"{scheme}://{_hostport(settings.host, settings.port)}{settings.base_path}/",
        "xcai": f"{scheme}://{_hostport(settings.host, settings.port)}{settings.xca.path}",
        "admin": f"http://{_hostport(admin.host, admin.port)}" if admin.enabled else None,
        "roles": roles,
        "workers": workers,
        **summary(loaded),
        "config": str(Path(loaded.path).resolve()) if loaded.path else None,
        "config_sha256": loaded.sha256,
        "state_directory": str(settings.state_path.resolve()),
        "version": __version__,
        "commit": commit(),
        "pid": os.getpid(),
    }


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class _Process:
    """The event-loop side of :func:`serve_process`."""

    def __init__(
        self,
        *,
        app: web.Application,
        loaded: Loaded,
        overrides: Overrides,
        audit: AuditService,
        metrics_registry: CollectorRegistry,
        metrics_folder: Path | None,
        outcomes_folder: Path | None,
        slot: WorkerSlot | None,
    ) -> None:
        self.app = app
        self.loaded = loaded
        self.overrides = overrides
        self.audit = audit
        self.metrics_registry = metrics_registry
        self.metrics_folder = metrics_folder
        self.outcomes_folder = outcomes_folder
        self.slot = slot
        self.site: web.BaseSite | None = None
        self.failed_at: str | None = None
        self.stops = 0
        self.drained: dict[str, object] = {}
        self.tls_stamp = _tls_stamp(loaded.server)
        self.stopped = asyncio.Event()
        self.hurry = asyncio.Event()

    @property
    def several(self) -> bool:
        return self.slot is not None and self.slot.count > 1

    async def run(self) -> None:
        app = self.app
        live = app[LIVE]
        settings = live.current
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=5)
        await runner.setup()
        admin_runner: web.AppRunner | None = None
        loop = asyncio.get_running_loop()
        try:
            self.site = self._public_site(runner, settings)
            await self.site.start()
            if settings.admin.enabled:
                admin_runner = web.AppRunner(admin_app(self._view()), access_log=None)
                await admin_runner.setup()
                self.failed_at = _hostport(settings.admin.host, settings.admin.port)
                await web.TCPSite(
                    admin_runner,
                    settings.admin.host,
                    settings.admin.port,
                    reuse_port=self.several or None,
                ).start()
                self.failed_at = None
            live.subscribe(self._settings_changed)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop, signum)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            self._started(settings)
            await self.stopped.wait()
            await self._drain(runner)
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(signum)
            await runner.cleanup()
            if admin_runner is not None:
                await admin_runner.cleanup()
        self._exited()

    def _public_site(self, runner: web.AppRunner, settings: ServerSettings) -> web.BaseSite:
        reuse = self.several or None
        if settings.tls is None:
            return web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse)
        return TlsSite(
            runner,
            settings.host,
            settings.port,
            ssl_context=_tls_context(settings),
            failures=HandshakeFailures(
                self.app[SECURITY], self.metrics_registry, settings.tls
            ),
            handshake_timeout_s=settings.tls.handshake_timeout_s,
            reuse_port=self.several,
        )

    def _view(self) -> AdminView:
        app = self.app
        audit_settings = self.audit.settings
        loaded = self.loaded

        def metrics() -> tuple[bytes, str]:
            return exposition(app[METRICS].registry, self.metrics_folder)

        def source() -> Mapping[str, str | None]:
            path = loaded.path
            return {"path": str(Path(path).resolve()) if path else None, "sha256": loaded.sha256}

        def openapi() -> bytes | None:
            try:
                return orjson.dumps(yaml.safe_load(OPENAPI.read_text(encoding="utf-8")))
            except (OSError, yaml.YAMLError):
                return None

        return AdminView(
            holder=app[HOLDER],
            live=app[LIVE],
            metrics=metrics,
            outcomes=app[OUTCOMES],
            outcomes_folder=self.outcomes_folder,
            sections=lambda: {"audit": audit_settings},
            source=source,
            readiness=app[READINESS],
            openapi=openapi,
        )

    def _started(self, settings: ServerSettings) -> None:
        workers = self.slot.count if self.slot is not None else 1
        fields = start_fields(self.loaded, settings, workers)
        if self.slot is not None and self.slot.ready_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.slot.ready_fd, f"{self.slot.index}\n".encode())
        if self.several:
            log.info("worker started", extra={"pid": fields["pid"]})
        else:
            log.info("gateway started", extra=fields)

    def _stop(self, signum: int) -> None:
        self.stops += 1
        if self.stops == 1:
            self.app[DRAIN].begin()
            drain = self.app[DRAIN]
            log.info(
                f"{signal.Signals(signum).name} received: draining",
                extra={
                    "in_flight": drain.in_flight,
                    "drain_s": self.app[LIVE].current.drain_s,
                },
            )
            self.stopped.set()
        else:
            log.warning("second stop signal: cutting the requests still running")
            self.hurry.set()

    async def _drain(self, runner: web.AppRunner) -> None:
        drain = self.app[DRAIN]
        began = time.monotonic()
        if self.site is not None:
            await self.site.stop()  # no new connection on the public port
        if runner.server is not None:
            runner.server.pre_shutdown()  # idle keep-alive connections close now
        drain_s = self.app[LIVE].current.drain_s
        waiting = asyncio.ensure_future(drain.wait(drain_s))
        hurry = asyncio.ensure_future(self.hurry.wait())
        await asyncio.wait((waiting, hurry), return_when=asyncio.FIRST_COMPLETED)
        hurry.cancel()
        finished = waiting.done() and waiting.result()
        waiting.cancel()
        cut = 0 if finished else await drain.cut()
        self.drained = {
            "drained": finished,
            "cut": cut,
            "drain_took_s": round(time.monotonic() - began, 3),
        }

    def _exited(self) -> None:
        log.info(
            "worker stopped" if self.several else "gateway stopped",
            extra={**self.drained, "pid": os.getpid()},
        )

    # -- SIGHUP ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the whole file again and apply what can be applied (module docstring)."""
        app = self.app
        holder = app[HOLDER]
        log.info("SIGHUP received: reloading configuration", extra={"path": str(holder.path)})
        try:
            new = load_all(self.loaded.path)
        except ConfigError as exc:
            holder.reject(exc)
            return
        reopened = self.audit.reopen_files()
        holder.swap(Registry(new.config))
        applied = app[LIVE].apply(self.overrides.apply(new.server))
        renewed = self._renew_tls(app[LIVE].current)
        done = list(applied.applied)
        if renewed and "server.tls" not in done:
            done.append("server.tls")
        audit_now = self.audit.settings
        audit_new = for_worker(new.audit, self.slot.index if self.several and self.slot else 0)
        restart = list(applied.restart)
        if audit_new != audit_now:
            restart += [f"audit.{name}" for name in _changed(audit_now, audit_new)]
        self.loaded = dataclasses.replace(self.loaded, sha256=new.sha256)
        log.info(
            "configuration reloaded",
            extra={
                "generation": holder.generation,
                "config_sha256": new.sha256,
                "applied": ["routing", *done],
                "needs_restart": restart,
                "audit_files_reopened": reopened,
            },
        )

    def _settings_changed(self, settings: ServerSettings, applied: Applied) -> None:
        if "server.log_level" in applied.applied:
            logging.getLogger().setLevel(settings.log_level)

    def _renew_tls(self, settings: ServerSettings) -> bool:
        """A new TLS context when the TLS settings or the content of their files changed
        (a certificate renewed in place); True when it is in use from now on."""
        site = self.site
        if settings.tls is None or not isinstance(site, TlsSite):
            return False
        stamp = _tls_stamp(settings)
        if stamp == self.tls_stamp:
            return False
        try:
            site.use_context(_tls_context(settings))
        except (ssl.SSLError, OSError, ValueError) as exc:
            log.error("new TLS certificate not loaded; the old one stays", exc_info=exc)
            return False
        self.tls_stamp = stamp
        log.info("TLS certificate reloaded", extra={"cert_file": settings.tls.cert_file})
        return True


def _tls_stamp(settings: ServerSettings) -> str:
    """The TLS settings and the digest of their files' bytes, to tell a renewal."""
    tls = settings.tls
    if tls is None:
        return ""
    digest = hashlib.sha256(repr(tls).encode())
    for path in (tls.cert_file, tls.key_file, tls.client_ca_file):
        if path is not None:
            try:
                digest.update(Path(path).read_bytes())
            except OSError:
                digest.update(b"unreadable")
    return digest.hexdigest()


def _tls_context(settings: ServerSettings) -> ssl.SSLContext:
    tls = settings.tls
    assert tls is not None
    return server_context(
        cert_file=tls.cert_file,
        key_file=tls.key_file,
        client_ca_file=tls.client_ca_file,
        require_client_cert=tls.require_client_cert,
    )


def _changed(old: object, new: object) -> list[str]:
    assert dataclasses.is_dataclass(old)
    return [
        field.name
        for field in dataclasses.fields(old)
        if getattr(old, field.name) != getattr(new, field.name)
    ]
