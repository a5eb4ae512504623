"""uvicorn, serving HTTPS through the controller's own TLS connections
(``tlslistener``) instead of the event loop's, with agents' long-polls on a
lean protocol of their own (``agentconnection``): everything else (HTTP
parsing, lifespan, graceful shutdown, signals) stays uvicorn's."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
from collections.abc import Callable

import uvicorn

from skylan.controller.agentconnection import AgentConnection, AgentFront
from skylan.controller.reflector import AddressReflector
from skylan.controller.tlslistener import TlsListener, bind

log = logging.getLogger("uvicorn.error")

STARTUP_FAILURE = 3  # uvicorn's exit status when it cannot start


class HttpsServer(uvicorn.Server):
    def __init__(
        self,
        config: uvicorn.Config,
        agents: AgentFront | None = None,
        reflector: AddressReflector | None = None,
        stopping: Callable[[], None] | None = None,
    ) -> None:
        """With ``agents``, every connection starts on the agents' lean protocol
        and goes to uvicorn's at its first request of another kind. Not behind
        a trusted proxy: the client's address is then uvicorn's to find."""
        super().__init__(config)
        self.agents = None if config.proxy_headers else agents
        self.reflector = reflector  # on the UDP port of the HTTPS port's number
        self.stopping = stopping  # called first thing at shutdown (ends held requests)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config = self.config
        if config.ssl is None:
            raise ValueError("HttpsServer needs a certificate and key")

        def make_uvicorn() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        agents = self.agents
        make_protocol = make_uvicorn
        if agents is not None:
            agents.hand_over = make_uvicorn
            agents.connections = self.server_state.connections  # shut down with the rest
            agents.keep_alive = config.timeout_keep_alive

            def make_protocol() -> asyncio.Protocol:
                assert agents is not None
                return AgentConnection(agents)

        try:
            listening = sockets or bind(config.host, config.port, config.backlog)
        except OSError as exc:
            log.error("cannot listen on %s:%s: %s", config.host, config.port, exc)
            await self.lifespan.shutdown()
            sys.exit(STARTUP_FAILURE)
        listener = TlsListener(listening, config.ssl, make_protocol)
        listener.start()
        if self.reflector is not None:
            host, port = listening[0].getsockname()[:2]
            await self.reflector.serve(host, port)
        self.servers = [listener]  # type: ignore[list-item]  # has close() and wait_closed()
        for sock in listening:
            host, port = sock.getsockname()[:2]
            shown = f"[{host}]" if ":" in host else host
            log.info("serving on https://%s:%d", shown, port)
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.stopping is not None:
            self.stopping()
        if self.reflector is not None:
            self.reflector.close()
        await super().shutdown(sockets)
