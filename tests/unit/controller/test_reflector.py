"""The controller's reflexive-address service, without a socket: it answers
its nodes only, never more than asked, and not too often."""

from __future__ import annotations

import os
from hashlib import sha256

from skylan.controller.reflector import AddressReflector
from skylan.dataplane.discovery import AddressDiscovery, ReflectorTarget
from skylan.model.reflexive import ANSWER_LEN, REQUEST_LEN, credential_key

NODE = "2e6ce491-3ead-4979-bbe6-6a32f64b68d5"
CTL = ("198.18.1.1", 8443)


def target(credential: str = "skynode_secret") -> ReflectorTarget:
    return ReflectorTarget(CTL, NODE, credential_key(credential))


class _Node:
    def __init__(self, node_id: str, credential: str, status: str = "approved") -> None:
        self.id = node_id
        self.status = status
        self.credential_hash = sha256(credential.encode()).hexdigest()


class _State:
    def __init__(self, *nodes: _Node) -> None:
        self.nodes = {n.id: n for n in nodes}


def test_the_controllers_reflector_answers_its_nodes_only_and_not_too_often() -> None:
    clock = [0.0]
    state = _State(_Node(NODE, "skynode_secret"), _Node("0" * 8 + NODE[8:], "x", "denied"))
    reflector = AddressReflector(state, clock=lambda: clock[0])  # type: ignore[arg-type]
    d = AddressDiscovery(target())
    answer = reflector.answer(d.question(0), ("203.0.113.7", 40123))
    assert answer is not None and len(answer) == ANSWER_LEN
    assert d.on_answer(answer, CTL, 0) and d.address == ("203.0.113.7", 40123)
    # a stranger's credential, a denied node, junk: nothing, counted
    impostor = AddressDiscovery(ReflectorTarget(CTL, NODE, credential_key("guess")))
    assert reflector.answer(impostor.question(0), ("203.0.113.8", 1)) is None
    denied = AddressDiscovery(ReflectorTarget(CTL, "0" * 8 + NODE[8:], credential_key("x")))
    assert reflector.answer(denied.question(0), ("203.0.113.8", 1)) is None
    assert reflector.answer(os.urandom(56), ("203.0.113.8", 1)) is None
    assert reflector.answer(b"", ("203.0.113.8", 1)) is None
    assert reflector.drops == {"bad_mac": 1, "unknown_node": 1, "malformed": 2}
    # one source asking in a loop gets its burst, then a trickle
    answered = sum(
        reflector.answer(d.question(0), ("203.0.113.9", 5)) is not None for _ in range(200)
    )
    assert 60 <= answered <= 70 and reflector.drops["rate_limited"] == 200 - answered


def test_no_answer_is_larger_than_its_question() -> None:
    assert ANSWER_LEN <= REQUEST_LEN
