"""Agents' connections: their long-polls served on a lean HTTP/1.1 protocol,
everything else handed to uvicorn.

A controller holds one connection per agent, and each has a long-poll parked
on it nearly all the time. Under uvicorn each connection kept its protocol,
parser, flow control and keep-alive objects, and each parked request its
request-response cycle, events and a stack of middleware frames: about 8 KiB
an agent beyond TLS (measured at 2,000 agents). Here a connection is one
small object; a request is taken in by a task, and then parked without one
(:mod:`skylan.controller.parking`) until the feed answers it.

Only a strict subset of HTTP is taken here: an HTTP/1.1 ``POST`` to the sync
or ``GET`` of the netmap, with a valid node credential, a ``Content-Length``
within the limit, and none of ``Transfer-Encoding``, ``Expect``,
``Connection: close``, repeated headers or bare line ends. Any other request
(the first of a browser, an admin, a wrong credential, a locked-out source)
is handed over with its bytes to uvicorn, which then has the connection for
good and answers exactly as it always did, through the gate. So this path
never has to decide a hard case, and never answers differently.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from skylan.controller.api.longpoll import Waiting, finish, take_in
from skylan.controller.gate import LONG_POLLS, Principal, Refused, node_principal
from skylan.controller.lockout import Lockout
from skylan.controller.parking import Parked
from skylan.controller.runtime import Controller

log = logging.getLogger(__name__)

HEAD_LIMIT = 8192  # a request head longer than this goes to uvicorn
SYNC = b"/api/v1/agent/sync"
NETMAP = b"/api/v1/agent/netmap"
_ROUTES = {(b"POST", SYNC): True, (b"GET", NETMAP): False}  # -> sync?
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REFUSED = frozenset({b"transfer-encoding", b"expect", b"upgrade"})
assert {p.encode() for p in LONG_POLLS} == {SYNC, NETMAP}


@dataclass(frozen=True, slots=True)
class Head:
    sync: bool
    query: bytes
    authorization: str
    length: int


def parse_head(head: bytes, max_body: int) -> Head | None:
    """The long-poll ``head`` (up to its blank line) asks for, or None: not
    one this path takes."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return None
    path, _, query = parts[1].partition(b"?")
    sync = _ROUTES.get((parts[0], path))
    if sync is None:
        return None
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or b"\r" in line or b"\n" in line or not _TOKEN.fullmatch(name):
            return None
        key = name.lower()
        if key in fields or key in _REFUSED:
            return None
        fields[key] = value.strip(b" \t")
    if fields.get(b"connection", b"keep-alive").lower() != b"keep-alive":
        return None
    length = fields.get(b"content-length", b"0")
    if not length.isdigit() or len(length) > 12 or int(length) > max_body:
        return None
    try:
        authorization = fields.get(b"authorization", b"").decode("ascii")
    except UnicodeDecodeError:
        return None
    return Head(sync, query, authorization, int(length))


def render(response: Response) -> bytes:
    status = response.status_code
    lines = [b"HTTP/1.1 %d %s\r\n" % (status, HTTPStatus(status).phrase.encode())]
    lines += [b"%s: %s\r\n" % (name, value) for name, value in response.raw_headers]
    lines += [b"\r\n", bytes(response.body)]
    return b"".join(lines)


class AgentFront:
    """What every agent connection shares: the controller whose long-polls
    they are, the lockout, and how to hand a connection to uvicorn."""

    def __init__(
        self,
        ctl: Controller,
        *,
        lockout: Lockout,
        max_body: int,
        keep_alive: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.lockout = lockout
        self.max_body = max_body
        self.ctl = ctl
        self.keep_alive = keep_alive  # idle between requests
        self.read_timeout = read_timeout  # for a request to arrive whole
        self.connections: set[Any] = set()  # the server's: it shuts them down
        self.hand_over: Callable[[], asyncio.Protocol] | None = None  # uvicorn's protocol
        # times a connection stopped taking requests because its client did not
        # read its answers (exported: a client that pipelines and never reads)
        self.write_pauses = 0

    def principal(self, head: Head, source: str, now: float) -> Principal | None:
        if self.lockout.retry_after(source, now) is not None:
            return None  # the gate answers that (429)
        try:
            return node_principal(self.ctl.memory, head.authorization)
        except Refused:
            return None  # and that (401, counted against the source)


class AgentConnection(asyncio.Protocol):
    __slots__ = (
        "_buf",
        "_busy",
        "_front",
        "_loop",
        "_parked",
        "_source",
        "_task",
        "_timer",
        "_transport",
        "_waiting",
        "_write_paused",
    )

    def __init__(self, front: AgentFront) -> None:
        self._front = front
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buf: bytearray | None = None  # only while a request is coming in
        self._busy = False  # a request is being answered (taken in, or parked)
        self._task: asyncio.Task[None] | None = None  # taking one in
        self._waiting: Waiting | None = None  # parked: what for
        self._parked: Parked | None = None
        # the client is not reading its answers: take no further request
        # until it does (else a pipelining client could queue answers unbounded)
        self._write_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._source = ""

    # -- the transport's calls -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._source = str(peer[0]) if peer else ""
        self._front.connections.add(self)
        self._arm(self._front.keep_alive)

    def data_received(self, data: bytes) -> None:
        if self._buf is None:
            self._buf = bytearray(data)
        else:
            self._buf += data
        if not self._busy and not self._write_paused:
            self._next_request()
        elif len(self._buf) > HEAD_LIMIT and self._transport is not None:
            self._transport.pause_reading()  # pipelined ahead: until these are taken

    def eof_received(self) -> bool | None:
        return None

    def pause_writing(self) -> None:
        self._write_paused = True
        self._front.write_pauses += 1

    def resume_writing(self) -> None:
        self._write_paused = False
        if not self._busy and self._buf:
            self._next_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.connections.discard(self)
        self._disarm()
        self._buf = None
        if self._task is not None:
            self._task.cancel()  # nobody to answer
            self._task = None
        if self._parked is not None:
            self._front.ctl.feed.parking.cancel(self._parked)
            self._parked = None
        self._waiting = None
        self._transport = None

    def shutdown(self) -> None:
        """The server stops: a parked long-poll is dropped (its agent polls
        again, elsewhere or later)."""
        self._close()

    # -- requests ----------------------------------------------------------------

    def _next_request(self) -> None:
        buf = self._buf
        if not buf:
            return
        end = buf.find(b"\r\n\r\n", 0, HEAD_LIMIT + 4)
        if end < 0:
            if len(buf) > HEAD_LIMIT:
                self._hand_over()
            else:
                self._arm(self._front.read_timeout)
            return
        front = self._front
        head = parse_head(bytes(buf[:end]), front.max_body)
        principal = None
        if head is not None:
            principal = front.principal(head, self._source, self._loop.time())
        if head is None or principal is None:
            self._hand_over()
            return
        start = end + 4
        if len(buf) < start + head.length:
            self._arm(front.read_timeout)
            return
        body = bytes(buf[start : start + head.length])
        rest = buf[start + head.length :]
        self._buf = rest if rest else None
        transport = self._transport
        if transport is not None and not transport.is_reading() and len(rest) <= HEAD_LIMIT:
            transport.resume_reading()
        self._disarm()
        self._busy = True
        self._task = self._loop.create_task(self._take_in(head, principal, body))

    async def _take_in(self, head: Head, principal: Principal, body: bytes) -> None:
        taken = await take_in(
            self._front.ctl,
            principal,
            sync=head.sync,
            query_string=head.query,
            body=body,
            client=self._source or None,
        )
        del body
        self._task = None
        if isinstance(taken, Response):
            self._respond(taken)
            return
        self._waiting = taken
        parking = self._front.ctl.feed.parking
        parked = parking.park(taken.node_id, taken.since, taken.wait, self._woken)
        if self._waiting is taken:  # (not answered at once)
            self._parked = parked

    def _woken(self, found: bytes | None) -> None:
        waiting, self._waiting, self._parked = self._waiting, None, None
        if waiting is not None:
            self._respond(finish(self._front.ctl, waiting, found))

    def _respond(self, response: Response) -> None:
        self._busy = False
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.write(render(response))
        if self._buf:
            if not self._write_paused:
                self._next_request()
        else:
            self._arm(self._front.keep_alive)

    def _hand_over(self) -> None:
        """uvicorn takes the connection, and the request so far."""
        transport, make = self._transport, self._front.hand_over
        data = bytes(self._buf or b"")
        self._front.connections.discard(self)
        self._disarm()
        self._buf = None
        if transport is None or make is None:
            self._close()
            return
        if not transport.is_reading():
            transport.resume_reading()  # (paused for pipelined requests: uvicorn's now)
        protocol = make()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        self._transport = None
        protocol.data_received(data)

    # -- timers --------------------------------------------------------------------

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._timer = self._loop.call_later(delay, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if not self._busy:
            self._close()

    def _close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
