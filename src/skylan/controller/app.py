"""The controller's FastAPI application: the parts of a running controller,
wired together, with the API routers, the console and the gate in front."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from skylan import __version__
from skylan.controller.agentconnection import AgentFront
from skylan.controller.api import (
    agent,
    api_tokens,
    auditlog,
    cloak_rules,
    dns_records,
    errors,
    gateways,
    longpoll,
    networks,
    nodes,
    ports,
    relays,
    security_rules,
    stats,
    tokens,
)
from skylan.controller.auth import Scope, create_api_token, has_tokens
from skylan.controller.console import mount as console
from skylan.controller.feed import NetmapFeed, listen_url_for
from skylan.controller.gate import Gate
from skylan.controller.gcpolicy import GcPolicy
from skylan.controller.heaptrim import HeapTrim
from skylan.controller.lockout import Lockout
from skylan.controller.logins import LoginCache
from skylan.controller.looplag import LoopLag
from skylan.controller.metrics import ControllerCollector
from skylan.controller.reflector import AddressReflector
from skylan.controller.runtime import Controller
from skylan.controller.service import auditlog as auditlog_service
from skylan.controller.service.agents import Liveliness
from skylan.controller.service.stats import StatsBook
from skylan.controller.settings import ControllerSettings, check_admin_token
from skylan.controller.state.store import State
from skylan.controller.storage.database import (
    make_engine,
    migrate,
    session_factory,
    write_session_factory,
)
from skylan.controller.tls import TlsFiles, ensure_certificate
from skylan.controller.writes import Writer
from skylan.privatefile import private_dir

log = logging.getLogger("skylan.controller")
AUDIT_PRUNE_EVERY = 3600.0  # s

API_PREFIX = "/api/v1"
BOOTSTRAP_ENV = "SKYLAN_ADMIN_TOKEN"


def tls_files(settings: ControllerSettings) -> TlsFiles:
    if settings.tls_cert is not None and settings.tls_key is not None:
        return TlsFiles(settings.tls_cert, settings.tls_key)
    return ensure_certificate(settings.data_dir)


def bootstrap_admin(app: FastAPI) -> str | None:
    """Create the first admin token if there is none; returns its secret.

    Taken from ``$SKYLAN_ADMIN_TOKEN`` when set (for automation), otherwise
    random; either way it is the caller's job to show it once.
    """
    given = os.environ.get(BOOTSTRAP_ENV) or None
    with app.state.write_sessions() as db:
        if has_tokens(db):
            return None
        _, secret = create_api_token(
            db, "bootstrap-admin", Scope.ADMIN, check_admin_token(given) if given else None
        )
        return secret


def pin_mmap_threshold() -> None:
    """Keep glibc from moving its mmap threshold up. Measured with the event
    loop's TLS, whose connections each had a 256 KiB read buffer of which a
    page or two was used: once the threshold moved, those buffers came from
    the heap, where reuse dirtied whole pages (60 KiB a parked connection
    instead of 38). The controller's own TLS connections share one read
    buffer; the threshold stays fixed so that large answers (megabyte
    netmaps) still go back to the kernel when sent rather than growing the
    heap."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    try:
        libc = ctypes.CDLL(libc_name)
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: fixed at the default
    except (OSError, AttributeError):
        pass


def share_the_gil_quickly() -> None:
    """The event loop releases the GIL around every TLS read and write, and a
    worker thread with Python to run (a batch write) then keeps it for the
    whole switch interval: at 5 ms, hundreds of such hand-overs a second left
    the loop seconds behind (measured at 10,000 agents). At 1 ms it gets the
    GIL back five times sooner."""
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))


def create_app(settings: ControllerSettings) -> FastAPI:
    private_dir(settings.data_dir)  # the TLS key and, by default, the database live here
    pin_mmap_threshold()
    share_the_gil_quickly()
    postgres = settings.db_url.startswith("postgresql")
    slots = settings.write_slots or 1
    background = 2 if postgres else 0  # the heartbeat and statistics flushes
    engine = make_engine(settings.db_url, pool_size=slots + background + 4)
    migrate(engine)
    sessions = session_factory(engine)
    write_sessions = write_session_factory(engine)
    memory = State()
    feed = NetmapFeed(
        sessions,
        memory,
        coalesce=settings.coalesce_s,
        poll_interval=settings.poll_interval_s,
        listen_url=listen_url_for(settings.db_url),
        watch=[write_sessions],
    )
    writer = Writer(write_sessions, feed, slots=slots, background_slots=background)
    ctl = Controller(
        settings=settings,
        memory=memory,
        feed=feed,
        writer=writer,
        liveliness=Liveliness(
            memory, writer, sessions, flush_interval=settings.flush_s, refresh=postgres
        ),
        stats=StatsBook(memory, writer, sessions, flush_interval=settings.stats_flush_s),
        sessions=sessions,
        fingerprint=tls_files(settings).fingerprint,
        readers=asyncio.Semaphore(4),
        lag=LoopLag(),
    )

    collector = GcPolicy()
    heap = HeapTrim()

    async def prune_audit_log() -> None:
        while True:
            try:
                gone = await ctl.writer(
                    lambda db: auditlog_service.prune(db, settings.audit_days), patient=True
                )
                if gone:
                    log.info(
                        "audit log: %d events older than %g days pruned", gone, settings.audit_days
                    )
            except Exception:  # the database may be away for a moment: next hour
                log.exception("pruning the audit log failed")
            await asyncio.sleep(AUDIT_PRUNE_EVERY)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        pruner = asyncio.create_task(prune_audit_log(), name="audit-prune")
        ctl.liveliness.start()
        await ctl.stats.start()
        collector.start()
        heap.start()
        ctl.lag.start()
        try:
            yield
        finally:
            pruner.cancel()
            await asyncio.gather(pruner, return_exceptions=True)
            await ctl.lag.stop()
            await heap.stop()
            await collector.stop()
            await ctl.liveliness.stop()
            await ctl.stats.stop()
            await feed.stop()

    app = FastAPI(
        title="skylan controller",
        version=__version__,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.controller = ctl
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessions = sessions
    app.state.write_sessions = write_sessions
    app.state.feed = feed
    app.state.cert_fingerprint = ctl.fingerprint
    app.state.public_url = settings.public_url
    errors.install(app)
    app.state.lockout = Lockout(settings.lockout)
    app.state.login_cache = LoginCache()
    polls = longpoll.handlers()
    for handler in polls.values():
        handler.controller = ctl
    app.state.agent_front = AgentFront(
        ctl, lockout=app.state.lockout, max_body=settings.max_body_bytes
    )
    app.state.reflector = AddressReflector(memory)
    app.add_middleware(
        Gate,
        state=memory,
        sessions=sessions,
        login_cache=app.state.login_cache,
        lockout=app.state.lockout,
        max_body=settings.max_body_bytes,
        max_busy=settings.max_busy,
        long_polls=polls,
    )
    for module in (
        networks,
        ports,
        gateways,
        cloak_rules,
        security_rules,
        dns_records,
        tokens,
        nodes,
        stats,
        api_tokens,
        agent,
    ):
        app.include_router(module.router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)
    for router in (relays.router, relays.own, auditlog.router):
        app.include_router(router, prefix=API_PREFIX, responses=errors.ERROR_RESPONSES)

    console.install(app)

    registry = app.state.metrics_registry = CollectorRegistry()
    registry.register(ControllerCollector(ctl, app.state.agent_front, app.state.reflector))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        """Needs an API token (the gate checks it); for scrapers without one,
        ``skylan controller serve --metrics-listen`` serves the same on its own
        address."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(f"{API_PREFIX}/health", tags=["meta"], responses=errors.ERROR_RESPONSES)
    def health() -> dict[str, str | int]:
        return {"status": "ok", "version": __version__, "netmap_change": feed.last_change}

    return app
