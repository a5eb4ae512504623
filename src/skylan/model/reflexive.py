"""The reflexive-address exchange: a node asks the controller, on the
controller's UDP port and from its data plane's own socket, where it sees
the node's datagrams come from. That address is the node's NAT's outside for
that socket: its *reflexive* candidate, which peers try (see
:mod:`skylan.tunnel.paths`).

Both messages carry a MAC keyed by the SHA-256 of the node's credential,
which the controller holds (it stores only that hash): the credential itself
never travels, only holders of the node's credential get answers, and a node
knows an answer comes from its controller. An answer is never larger than
its question, so the reflector amplifies nothing. Message types 7 and 8
share the tunnel socket's type space (``skylan.tunnel.wire``).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

from skylan.model.wireaddress import pack_ip, unpack_ip

REQUEST_TYPE = 7
ANSWER_TYPE = 8
MAC_LEN = 16
NONCE_LEN = 16
_REQUEST = struct.Struct("!B3x16s16s4x")  # type, node id (UUID), nonce, room for the answer
_ANSWER = struct.Struct("!B3x16s16sH")  # type, nonce, address (IPv6, or IPv4-mapped), port
REQUEST_LEN = _REQUEST.size + MAC_LEN  # 56
ANSWER_LEN = _ANSWER.size + MAC_LEN  # 54


class ReflexiveError(ValueError):
    """Not a well-formed, authentic message; ``reason`` names the counter."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def credential_key(credential: str) -> bytes:
    """The MAC key, from the credential (the node's side)."""
    return hashlib.sha256(credential.encode()).digest()


def stored_key(credential_hash: str) -> bytes:
    """The MAC key, from the stored hash (the controller's side)."""
    return bytes.fromhex(credential_hash)


def _mac(key: bytes, body: bytes | memoryview) -> bytes:
    return hashlib.blake2s(body, key=key, digest_size=MAC_LEN).digest()


@dataclass(frozen=True)
class Request:
    node_id: str
    nonce: bytes
    body: bytes
    mac: bytes

    def authentic(self, key: bytes) -> bool:
        return hmac.compare_digest(_mac(key, self.body), self.mac)


def encode_request(node_id: str, nonce: bytes, key: bytes) -> bytes:
    body = _REQUEST.pack(REQUEST_TYPE, uuid.UUID(node_id).bytes, nonce)
    return body + _mac(key, body)


def decode_request(data: bytes | memoryview) -> Request:
    """Parse (the MAC is the caller's to check: it needs the node's key)."""
    if len(data) != REQUEST_LEN or data[0] != REQUEST_TYPE or bytes(data[1:4]) != bytes(3):
        raise ReflexiveError("malformed")
    _, node, nonce = _REQUEST.unpack_from(data)
    body = bytes(data[: _REQUEST.size])
    return Request(str(uuid.UUID(bytes=node)), nonce, body, bytes(data[_REQUEST.size :]))


def encode_answer(nonce: bytes, address: tuple[str, int], key: bytes) -> bytes:
    body = _ANSWER.pack(ANSWER_TYPE, nonce, pack_ip(address[0]), address[1])
    return body + _mac(key, body)


def decode_answer(data: bytes | memoryview, key: bytes) -> tuple[bytes, tuple[str, int]]:
    """The nonce it answers and the address it reports."""
    if len(data) != ANSWER_LEN or data[0] != ANSWER_TYPE or bytes(data[1:4]) != bytes(3):
        raise ReflexiveError("malformed")
    body = bytes(data[: _ANSWER.size])
    if not hmac.compare_digest(_mac(key, body), bytes(data[_ANSWER.size :])):
        raise ReflexiveError("bad_mac")
    _, nonce, packed, port = _ANSWER.unpack(body)
    return nonce, (unpack_ip(packed), port)
