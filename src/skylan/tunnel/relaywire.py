"""What a node and a relay say to each other, apart from the tunnel
datagrams a relay forwards unread.

A relay gives each node (each lane key) a UDP port of its own; whatever
arrives on that port from a registered node goes to that node, and looks to
it as coming from the sender's port. So a peer's relay candidate is just an
address, ``relay:port``, and the data plane (the compiled core too) sends
and receives relayed traffic exactly as direct traffic.

To be known on a port, a node sends a *hello* to it from its tunnel socket
(on each port it sends to: a symmetric NAT maps each destination apart).
The hello names the node's public key and carries a MAC under a key both
sides derive from X25519 between the node's and the relay's static keys:
only the key's holder makes one, and the relay, which knows the keys of the
controller's nodes and nothing else, answers nothing it cannot check. Its
timestamp must grow, so a copy replayed from elsewhere moves nothing. The
*answer*, under the same key, tells the node its own port on the relay
(its relay candidate) and the address the relay saw (a reflexive address
too); it is smaller than the hello, so the relay amplifies nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from skylan.model.wireaddress import pack_ip, unpack_ip
from skylan.tunnel.keys import StaticKeypair

HELLO = 9
ANSWER = 10
MAC_LEN = 16
NONCE_LEN = 8
_HELLO = struct.Struct("!B3x32sQ8s")  # type, public key, unix time in ms, nonce
_ANSWER = struct.Struct("!B3xH16sH8s")  # type, the node's own port, seen address and port, nonce
HELLO_LEN = _HELLO.size + MAC_LEN  # 68
ANSWER_LEN = _ANSWER.size + MAC_LEN  # 48

Address = tuple[str, int]


class RelayWireError(ValueError):
    """Malformed or not authentic; ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def shared_key(own: StaticKeypair, other: bytes) -> bytes:
    """The hello's MAC key between ``own`` and the public key ``other``
    (the same from either side). ValueError for a key with no shared secret."""
    return hashlib.blake2s(own.dh(other), key=b"skylan relay hello v1").digest()


def _mac(key: bytes, body: bytes | memoryview) -> bytes:
    return hashlib.blake2s(body, key=key, digest_size=MAC_LEN).digest()


@dataclass(frozen=True)
class Hello:
    public: bytes
    millis: int
    nonce: bytes
    body: bytes
    mac: bytes

    def authentic(self, key: bytes) -> bool:
        return hmac.compare_digest(_mac(key, self.body), self.mac)


def encode_hello(public: bytes, millis: int, nonce: bytes, key: bytes) -> bytes:
    body = _HELLO.pack(HELLO, public, millis, nonce)
    return body + _mac(key, body)


def decode_hello(data: bytes | memoryview) -> Hello:
    """Parse (the MAC is the relay's to check, with the key it derives)."""
    if len(data) != HELLO_LEN or data[0] != HELLO or bytes(data[1:4]) != bytes(3):
        raise RelayWireError("malformed_hello")
    _, public, millis, nonce = _HELLO.unpack_from(data)
    return Hello(public, millis, nonce, bytes(data[: _HELLO.size]), bytes(data[_HELLO.size :]))


@dataclass(frozen=True)
class Answer:
    port: int  # the node's own port on the relay
    seen: Address  # where the relay saw the hello come from
    nonce: bytes


def encode_answer(port: int, seen: Address, nonce: bytes, key: bytes) -> bytes:
    body = _ANSWER.pack(ANSWER, port, pack_ip(seen[0]), seen[1], nonce)
    return body + _mac(key, body)


def decode_answer(data: bytes | memoryview, key: bytes) -> Answer:
    if len(data) != ANSWER_LEN or data[0] != ANSWER or bytes(data[1:4]) != bytes(3):
        raise RelayWireError("malformed_answer")
    body = bytes(data[: _ANSWER.size])
    if not hmac.compare_digest(_mac(key, body), bytes(data[_ANSWER.size :])):
        raise RelayWireError("bad_mac")
    _, port, packed, seen_port, nonce = _ANSWER.unpack(body)
    return Answer(port, (unpack_ip(packed), seen_port), nonce)


# -- the TCP fallback -------------------------------------------------------------
#
# A node that cannot use UDP at all reaches the relay over TLS on TCP 443 and
# carries each datagram in a frame: its length, the relay port it goes to (or,
# from the relay, the port it comes from), then the datagram. The relay treats
# the connection as one more address of the node.

_FRAME = struct.Struct("!HH")  # length of the datagram, relay port
FRAME_HEADER_LEN = _FRAME.size


def encode_frame(port: int, datagram: bytes | memoryview) -> bytes:
    if not 0 < len(datagram) <= 0xFFFF:
        raise RelayWireError("frame_size")
    return _FRAME.pack(len(datagram), port) + bytes(datagram)


def decode_frame_header(header: bytes) -> tuple[int, int]:
    """(datagram length, port); a zero length is junk."""
    length, port = _FRAME.unpack(header)
    if length == 0:
        raise RelayWireError("empty_frame")
    return length, port
