"""A lane's reflexive address (the controller's reflector) and its standing
with relays, without sockets: questions, answers, retries, and refusals of
anything but the awaited answer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skylan.dataplane.discovery import FIRST_RETRY, REASK_EVERY, AddressDiscovery, ReflectorTarget
from skylan.dataplane.relaylinks import HELLO_EVERY, TLS_AFTER, RelayLinks
from skylan.model.netmap import RelayInfo
from skylan.model.reflexive import (
    ReflexiveError,
    credential_key,
    decode_answer,
    decode_request,
    encode_answer,
)
from skylan.relay.forwarder import Forwarder
from skylan.tunnel.keys import StaticKeypair
from skylan.tunnel.relaywire import (
    RelayWireError,
    decode_frame_header,
    encode_frame,
)

NODE = "2e6ce491-3ead-4979-bbe6-6a32f64b68d5"
CTL = ("198.18.1.1", 8443)


def target(credential: str = "skynode_secret") -> ReflectorTarget:
    return ReflectorTarget(CTL, NODE, credential_key(credential))


def test_discovery_asks_again_sooner_while_unanswered_then_every_little_while() -> None:
    d = AddressDiscovery(target())
    d.question(0.0)
    assert d.due == FIRST_RETRY
    d.question(d.due)
    assert d.due == FIRST_RETRY + 2 * FIRST_RETRY
    question = d.question(10.0)
    request = decode_request(question)
    assert request.node_id == NODE and request.authentic(target().key)
    answer = encode_answer(request.nonce, ("203.0.113.7", 40123), target().key)
    assert d.on_answer(answer, CTL, 10.1)
    assert d.address == ("203.0.113.7", 40123) and d.due == pytest.approx(10.1 + REASK_EVERY)
    # the same address again: no change to report
    again = decode_request(d.question(50.0))
    assert not d.on_answer(
        encode_answer(again.nonce, ("203.0.113.7", 40123), target().key), CTL, 50
    )


def test_discovery_refuses_forged_stale_and_strangers_answers() -> None:
    d = AddressDiscovery(target())
    request = decode_request(d.question(0.0))
    wrong_key = encode_answer(request.nonce, ("6.6.6.6", 1), credential_key("other"))
    with pytest.raises(ReflexiveError, match="bad_mac"):
        d.on_answer(wrong_key, CTL, 0.1)
    stale = encode_answer(b"x" * 16, ("6.6.6.6", 1), target().key)
    with pytest.raises(ReflexiveError, match="stale"):
        d.on_answer(stale, CTL, 0.1)
    good = encode_answer(request.nonce, ("6.6.6.6", 1), target().key)
    with pytest.raises(ReflexiveError, match="not_from_reflector"):
        d.on_answer(good, ("198.18.9.9", 8443), 0.1)
    assert d.address is None


@given(st.binary(max_size=80))
def test_answer_decoding_raises_only_its_own_error(data: bytes) -> None:
    try:
        decode_answer(data, b"k" * 32)
    except ReflexiveError:
        pass
    try:
        decode_request(data)
    except ReflexiveError:
        pass


def relay_info(keys: StaticKeypair, name: str = "r1", tls_port: int | None = None) -> RelayInfo:
    return RelayInfo(
        id=f"id-{name}",
        name=name,
        address="198.18.1.9:3478",
        public_key=keys.public_b64,
        tls_port=tls_port,
    )


def test_relay_links_say_hello_where_needed_and_learn_their_port() -> None:
    relay = StaticKeypair.generate()
    lane = StaticKeypair.generate()
    fwd = Forwarder(relay, range(40000, 40010), clock_ms=lambda: 1_800_000_000_000)
    fwd.set_allowed([lane.public])
    links = RelayLinks(lane, wall_ms=lambda: 1_800_000_000_000)
    assert links.set_relays([relay_info(relay)], [("198.18.1.9", 40005), ("10.0.0.1", 9)])
    hellos = links.due_hellos(0.0)
    assert sorted(a for a, _ in hellos) == [("198.18.1.9", 3478), ("198.18.1.9", 40005)]
    for (host, port), hello in hellos:
        answer = fwd.hello(port, ("203.0.113.5", 7000), hello, 0.0)
        assert answer is not None
        links.on_answer(answer, (host, port), 0.01)
    assert links.candidates() == ["198.18.1.9:40000"]
    assert links.name_of(("198.18.1.9", 40005)) == "r1" and links.name_of(("1.2.3.4", 1)) is None
    assert links.due_hellos(1.0) == [] and links.next_due() == pytest.approx(0.01 + HELLO_EVERY)
    # an answer nobody asked for, or from elsewhere
    with pytest.raises(RelayWireError):
        links.on_answer(answer, ("198.18.1.9", 40005), 2.0)
    with pytest.raises(RelayWireError, match="stranger"):
        links.on_answer(answer, ("198.18.7.7", 3478), 2.0)
    # the relay goes from the netmap: no candidate, no hellos
    assert links.set_relays([], [])
    assert links.candidates() == [] and links.next_due() is None


def test_relay_links_turn_to_tls_when_udp_gets_no_answer() -> None:
    relay, lane = StaticKeypair.generate(), StaticKeypair.generate()
    links = RelayLinks(lane)
    links.set_relays([relay_info(relay, tls_port=443)], [])
    now = 0.0
    for _ in range(TLS_AFTER):
        assert links.wants_tls() == []
        now = links.next_due() or now
        assert links.due_hellos(max(now, 0.0))
    (link,) = links.wants_tls()
    link.tls = True
    links.via = lambda lk, port: ("127.0.0.1", 50000 + port % 1000)
    assert links.translate(("198.18.1.9", 40002)) == ("127.0.0.1", 50002)
    assert links.translate(("203.0.113.1", 40002)) == ("203.0.113.1", 40002)
    assert links.name_of(("127.0.0.1", 50002)) == "r1"
    # a relay without the fallback is never asked over TLS
    other = RelayLinks(lane)
    other.set_relays([relay_info(relay)], [])
    for _ in range(TLS_AFTER + 2):
        other.due_hellos((other.next_due() or 0.0) + 0.001)
    assert other.wants_tls() == []


def test_frames_round_trip_and_junk_headers_are_refused() -> None:
    frame = encode_frame(40001, b"datagram")
    assert decode_frame_header(frame[:4]) == (8, 40001) and frame[4:] == b"datagram"
    with pytest.raises(RelayWireError):
        decode_frame_header(b"\x00\x00\x9c\x41")
    with pytest.raises(RelayWireError):
        encode_frame(1, b"")
