"""The agent's side of the controller API (``/api/v1/agent``): enrolment, the
heartbeat, traffic statistics and the combined ``sync`` call.

The agent builds these and the controller validates with the very same
models, so a field the agent sends and the controller does not know is a type
error, not a 422 found in an end-to-end test. Every number a node sends has
bounds (a node is not trusted to keep its counters sane).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skylan.model import validators
from skylan.model.agentstatus import PathName
from skylan.model.lanelimit import MAX_LANES
from skylan.model.netmap import MAX_CANDIDATES, Candidate, NetMap
from skylan.model.publickey import decode_public

MAX_COUNT = 2**63 - 1  # what a BIGINT column holds
# per report: more than any link carries between two reports (2^48 bytes in 10 s
# is 225 Tbit/s); with at most REPORTS_PER_MINUTE a node's minute stays far
# below MAX_COUNT, so no stored total can overflow
MAX_REPORTED = 2**48
REPORTS_PER_MINUTE = 120
MAX_RTT_MS = 1e7
MAX_UPTIME_S = 1e9  # 31 years (1e12 overflowed a date)
MAX_UNIX_TIME = 2**35  # the year 3058
MAX_PEER_REPORTS = 1000  # tunnels per heartbeat
MAX_STATS_PEERS = 10_000
MAX_PENDING_REPORTS = 32  # statistics reports one sync may carry

Count = Annotated[int, Field(ge=0, le=MAX_REPORTED)]


class AgentMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class InterfaceReport(AgentMessage):
    name: str = Field(max_length=32)
    mac: str | None = Field(None, max_length=17)
    addresses: list[str] = Field(default_factory=list, max_length=64)
    default_route: bool = False

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, values: list[str]) -> list[str]:
        return validators.all_parse(
            values, ipaddress.ip_interface, "an address/prefix like 10.0.0.5/24"
        )


class EnrollRequest(AgentMessage):
    token: str = Field(max_length=300)
    public_key: str
    request_id: str | None = Field(
        None,
        min_length=16,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the agent's random id for this enrolment: sending the same request again "
        "(the answer was lost) gets the node again, with a new credential, not a conflict",
    )
    hostname: str
    os: str = Field("", max_length=200)
    agent_version: str = Field("", max_length=50)
    interfaces: list[InterfaceReport] = Field(default_factory=list, max_length=64)
    endpoints: list[str] = Field(default_factory=list, max_length=16)

    _hostname = field_validator("hostname")(validators.name)
    _endpoints = field_validator("endpoints")(validators.endpoints)

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        decode_public(value)
        return value


class EnrollResponse(BaseModel):
    node_id: str
    name: str
    status: str
    credential: str = Field(description="the node's bearer credential; keep it secret")


class PeerStatusReport(AgentMessage):
    """One tunnel as the agent sees it."""

    node_id: str = Field(max_length=36)
    established: bool = False
    endpoint: str | None = Field(None, max_length=64)
    handshake_age_s: float | None = Field(None, ge=0, le=MAX_UPTIME_S)
    rtt_ms: float | None = Field(None, ge=0, le=MAX_RTT_MS)
    dead: bool = False
    path: PathName | None = Field(
        None, description="which of the peer's candidates the tunnel uses"
    )
    relay: str | None = Field(None, max_length=64, description="through which relay")


class Heartbeat(AgentMessage):
    """Liveness and what the node knows of itself. Every field is optional:
    what is left out keeps its last value."""

    agent_version: str | None = Field(None, max_length=50)
    os: str | None = Field(None, max_length=200)
    uptime_s: float | None = Field(None, ge=0, le=MAX_UPTIME_S)
    interfaces: list[InterfaceReport] | None = Field(None, max_length=64)
    endpoints: list[str] | None = Field(None, max_length=16)
    peers: list[PeerStatusReport] | None = Field(None, max_length=MAX_PEER_REPORTS)
    seen_ips: dict[str, list[str]] | None = Field(
        None, max_length=1_000, description="per network id: IPv4s this node announced by ARP"
    )
    lane_keys: list[str] | None = Field(
        None,
        max_length=MAX_LANES - 1,
        description="public keys of the data-plane worker lanes 1..N-1 (lane 0 is public_key)",
    )
    candidates: list[Candidate] | None = Field(
        None,
        max_length=MAX_CANDIDATES,
        description="addresses beyond its interfaces that peers may try: each lane's "
        "reflexive address (as the controller's UDP reflector saw it), relays' ports",
    )

    _endpoints = field_validator("endpoints")(validators.endpoints)

    @field_validator("lane_keys")
    @classmethod
    def _lane_keys(cls, value: list[str] | None) -> list[str] | None:
        for key in value or ():
            decode_public(key)
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lane keys must be distinct")
        return value

    @field_validator("seen_ips")
    @classmethod
    def _seen(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        for net_id, ips in value.items():
            if len(net_id) > 36 or len(ips) > 64:
                raise ValueError("at most 64 addresses per network id")
            validators.all_parse(ips, ipaddress.IPv4Address, "an IPv4 address")
        return value


class HeartbeatAnswer(BaseModel):
    status: Literal["pending", "approved", "denied"]
    server_time: str


class Counters(AgentMessage):
    rx_bytes: Count = 0
    tx_bytes: Count = 0
    rx_packets: Count = 0
    tx_packets: Count = 0
    drops: Count = 0


class PeerCounters(Counters):
    peer_id: str = Field(max_length=36)
    rtt_ms: float | None = Field(None, ge=0, le=MAX_RTT_MS)


class PortCounters(Counters):
    """A node's traffic in one network: what crossed its TAP for that network."""

    network_id: str = Field(max_length=36)


class StatsReport(AgentMessage):
    """Counter deltas since the agent's previous report.

    ``seq`` makes a report count once however often it is sent: the agent
    numbers its reports (increasing, also across restarts) and sends each
    until the controller says it is stored; a replica that already stored it
    ignores it. Without ``seq`` a report is simply added.
    """

    seq: int | None = Field(None, ge=1, le=MAX_COUNT)
    at: float | None = Field(
        None, ge=0, le=MAX_UNIX_TIME, description="unix time of the sample; default: now"
    )
    total: Counters = Field(default_factory=Counters)
    peers: list[PeerCounters] = Field(default_factory=list, max_length=MAX_STATS_PEERS)
    ports: list[PortCounters] = Field(default_factory=list, max_length=1_000)
    drops_by_reason: dict[Annotated[str, Field(max_length=64)], Count] = Field(
        default_factory=dict, max_length=100
    )


class SyncRequest(AgentMessage):
    """One call for everything an agent does periodically: its heartbeat (when
    due), the statistics reports not yet stored, and the wait for its next
    netmap. One connection per agent, one request per heartbeat interval."""

    heartbeat: Heartbeat | None = None
    stats: list[StatsReport] = Field(default_factory=list, max_length=MAX_PENDING_REPORTS)
    held_by: str | None = Field(
        None,
        max_length=32,
        description="the controller process (its `epoch`) that holds this agent's reports "
        "sent and not yet stored. Another process takes no reports from this request: it "
        "answers with its own epoch and the agent sends every unstored report again, oldest "
        "first, so a later report never arrives before an earlier one that was lost with a "
        "replica (each node's reports count once by a high-water mark of their seq)",
    )


class SyncAnswer(BaseModel):
    status: Literal["pending", "approved", "denied"]
    netmap: NetMap | None = Field(
        None, description="the node's netmap, when newer than `since`; null if none came in time"
    )
    stats_stored: int = Field(0, description="every report of this node up to this seq is stored")
    epoch: str = Field(
        "",
        description="the answering controller process; when it changes (a restart, another "
        "replica), send again the reports sent before and not yet stored",
    )
