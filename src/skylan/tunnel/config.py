"""Timers and limits of the tunnel protocol, in seconds and counts.

The defaults keep every session key younger than two minutes: the session
initiator rekeys at 90 s, the responder at 100 s if the initiator did not,
and no key is used for anything at 120 s.
"""

from __future__ import annotations

from dataclasses import dataclass

from skylan.tunnel.noise import PROLOGUE


@dataclass(frozen=True)
class TunnelConfig:
    prologue: bytes = PROLOGUE
    rekey_after_time: float = 90.0
    reject_after_time: float = 120.0
    rekey_timeout: float = 5.0  # retransmit an unanswered initiation (at most this late)
    first_retry: float = 0.5  # …but the first retries come sooner: 0.5, 1, 2, 4, 5, 5 s
    rekey_attempt_time: float = 30.0  # then declare the peer dead
    keepalive_timeout: float = 10.0  # answer received data within this
    persistent_keepalive: float | None = None  # keep NAT mappings open
    chunk_size: int = 1404  # ciphertext per datagram: 1420-byte UDP payloads
    queue_limit: int = 256  # containers held per peer while handshaking
    reassembly_timeout: float = 0.5
    fec_hold: float = 10.0  # send parity this long after the peer last asked for it
    feedback_interval: float = 1.0  # ask a lossy peer for parity at most this often
    handshake_load_threshold: int = 64  # initiations per second before cookies
    handshake_per_source_rate: float = 20.0  # per second, once under load
    handshake_per_source_burst: float = 5.0
