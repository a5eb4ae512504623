"""Receiving: datagrams one by one or as GRO batches, demultiplexed by
receiver index to a session or a handshake, opened, reassembled, and handed
up as events. Anything malformed is dropped and counted.

The common case of a GRO batch, consecutive chunks of one super-frame, goes
to reassembly as a run: one header check, session lookup and replay check
for the run instead of one per chunk.
"""

from __future__ import annotations

from skylan.tunnel import segments, wire
from skylan.tunnel.events import Address, FrameRowsReceived, FramesReceived, SuperFrameReceived
from skylan.tunnel.handshakes import Handshakes
from skylan.tunnel.paths import Paths
from skylan.tunnel.peer import Peer
from skylan.tunnel.peertable import PeerTable
from skylan.tunnel.sending import Sender
from skylan.tunnel.session import Session
from skylan.tunnel.wire import MsgType, WireError

_DATA = int(MsgType.DATA)


class Receiver:
    def __init__(
        self, table: PeerTable, handshakes: Handshakes, sender: Sender, paths: Paths
    ) -> None:
        self.table = table
        self.config = table.config
        self.handshakes = handshakes
        self.sender = sender
        self.paths = paths

    def receive_datagram(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        try:
            if data and data[0] == _DATA:  # the hot path: skip building the enum
                self._on_data(data, addr, now)
                return
            kind = wire.message_type(data)
            if kind is MsgType.INITIATION:
                self.handshakes.on_initiation(data, addr, now)
            elif kind is MsgType.RESPONSE:
                established = self.handshakes.on_response(data, addr, now)
                if established is not None:
                    peer, session = established
                    self.sender.flush_queue(peer, session, now, confirm=True)
            elif kind is MsgType.PROBE:
                self.paths.on_probe(data, addr, now)
            elif kind is MsgType.PROBE_ACK:
                self.paths.on_probe_ack(data, addr, now)
            elif kind is MsgType.COOKIE_REPLY:
                self.handshakes.on_cookie_reply(data)
            else:  # (the reflexive-address answers are the data plane's)
                self.table.drops.add("unknown_type")
        except WireError as exc:
            self.table.drops.add(exc.reason)

    def _on_data(self, data: bytes | memoryview, addr: Address, now: float) -> None:
        table = self.table
        header = wire.decode_data_header(data)
        peer, session = table.index.get(header.receiver_index, (None, None))
        if peer is None or not isinstance(session, Session):
            table.drops.add("unknown_index")
            return
        table.touched.add(peer.public)
        if session.age(now) >= self.config.reject_after_time:
            table.drops.add("expired_session")
            return
        chunk = memoryview(data)[wire.DATA_HDR_LEN :]
        if header.flags & wire.FLAG_REDUNDANT:
            plaintext = session.open_redundant(header, chunk, now)
        else:
            plaintext = session.open(header, chunk, now)
        if plaintext is not None:
            self._on_plaintext(peer, session, header, plaintext, addr=addr, now=now)

    def receive_segments(
        self, data: bytes | memoryview, segment: int, addr: Address, now: float
    ) -> None:
        view = memoryview(data)
        n = len(view)
        if segment <= 0:
            segment = n
        off = 0
        while off < n:
            taken = self._data_run(view, off, segment, addr, now) if view[off] == _DATA else 0
            if taken:
                off += taken * segment
                continue
            end = min(off + segment, n)
            self.receive_datagram(view[off:end], addr, now)
            off = end

    def _data_run(self, view: memoryview, off: int, segment: int, addr: Address, now: float) -> int:
        """Chunks of one message from ``off`` on; how many segments were used
        (0: let the per-datagram path handle, and count, the one at ``off``)."""
        n = len(view)
        if n - off <= wire.DATA_HDR_LEN or min(segment, n - off) <= wire.DATA_HDR_LEN:
            return 0
        unpack = wire.DATA_HDR.unpack_from
        _, flags, index, count, receiver, counter = unpack(view, off)
        if flags != 0 or count < 2 or count > wire.MAX_CHUNKS or index >= count:
            return 0
        peer, session = self.table.index.get(receiver, (None, None))
        if peer is None or not isinstance(session, Session):
            return 0
        self.table.touched.add(peer.public)
        if session.age(now) >= self.config.reject_after_time or not session.replay.check(counter):
            return 0
        whole, used = None, 0
        rows = segments.as_rows(view, off, segment, count - 1 - index)
        taken = segments.run_length(rows) if len(rows) >= 2 else 0
        if taken >= 2:  # the common case: one copy for the lot
            block = rows[:taken, wire.DATA_HDR_LEN :]
            tail = None
            if index + taken == count - 1:  # the rows end right before the last chunk
                after = _chunks(
                    view,
                    off + taken * segment,
                    segment,
                    receiver=receiver,
                    count=count,
                    counter=counter,
                )
                if after and after[0][0] == count - 1:
                    tail = after[0][1]
            whole, used = session.reassembly.add_block(
                counter, count, index, block, now, tail=tail
            ) or (None, 0)
        if whole is None:  # the rest (often just the short last chunk), one by one
            start = off + used * segment
            chunks = _chunks(view, start, segment, receiver=receiver, count=count, counter=counter)
            if chunks:
                whole, more = session.reassembly.add_many(counter, count, chunks, now)
                used += more
        if whole is not None:
            header = wire.DataHeader(0, count, receiver, counter)
            plaintext = session.decrypt(header, whole)
            if plaintext is not None:
                self._on_plaintext(peer, session, header, plaintext, addr=addr, now=now)
        return used

    def _on_plaintext(
        self,
        peer: Peer,
        session: Session,
        header: wire.DataHeader,
        plaintext: bytes,
        *,
        addr: Address,
        now: float,
    ) -> None:
        peer.stats.rx_packets += header.chunk_count
        peer.stats.rx_bytes += len(plaintext) + wire.DATA_HDR_LEN * header.chunk_count
        if session is peer.next:  # the initiator's first data confirms our response
            peer.next = None
            peer.rtt = now - session.created  # our response, then their first packet
            self.handshakes.install(peer, session, now)
            self.sender.flush_queue(peer, session, now, confirm=False)
        self.table.authenticated_from(peer, addr, now)
        self.sender.ask_for_redundancy(peer, session, now)
        try:
            container = wire.decode_container(plaintext)
        except WireError as exc:  # authentic but malformed: that message alone is lost
            self.table.drops.add(exc.reason)
            return
        if container.kind is wire.Kind.KEEPALIVE:
            return
        if container.kind is wire.Kind.FEEDBACK:
            if container.want_fec:
                peer.fec_until = now + self.config.fec_hold
            return
        if peer.keepalive_due is None:
            peer.keepalive_due = now + self.config.keepalive_timeout
        events = self.table.events
        if container.kind is wire.Kind.SUPERFRAME:
            events.append(
                SuperFrameReceived(
                    peer.public, container.network_id, container.vnet_hdr, container.frames[0]
                )
            )
        elif container.rows is not None:
            events.append(FrameRowsReceived(peer.public, container.network_id, container.rows))
        else:
            events.append(
                FramesReceived(
                    peer.public, container.network_id, container.frames, container.vnet_hdrs
                )
            )


def _chunks(
    view: memoryview, off: int, segment: int, *, receiver: int, count: int, counter: int
) -> list[tuple[int, memoryview]]:
    """The chunks of message ``counter`` from ``off`` on, until another datagram."""
    n = len(view)
    unpack = wire.DATA_HDR.unpack_from
    run: list[tuple[int, memoryview]] = []
    while off < n:
        end = min(off + segment, n)
        if end - off <= wire.DATA_HDR_LEN or view[off] != _DATA:
            break
        _, flags, index, chunk_count, chunk_receiver, chunk_counter = unpack(view, off)
        if (
            chunk_counter != counter
            or chunk_receiver != receiver
            or chunk_count != count
            or flags != 0
            or index >= count
        ):
            break
        run.append((index, view[off + wire.DATA_HDR_LEN : end]))
        off = end
    return run
