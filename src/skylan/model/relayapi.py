"""The relay's side of the controller API (``/api/v1/relay``): it says who
it is and what it carried, and learns which keys may use it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skylan.model.agentapi import MAX_COUNT
from skylan.model.publickey import decode_public


class RelaySync(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    public_key: str
    keys_version: str = Field("", max_length=64, description="the key list it holds")
    tls_port: int | None = Field(None, ge=1, le=65535, description="its TCP fallback, if any")
    nodes: int = Field(0, ge=0, le=10_000_000)
    forwarded_bytes: int = Field(0, ge=0, le=MAX_COUNT, description="since it started")
    forwarded_packets: int = Field(0, ge=0, le=MAX_COUNT)
    dropped: int = Field(0, ge=0, le=MAX_COUNT)

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        decode_public(value)
        return value


class RelaySyncAnswer(BaseModel):
    keys_version: str
    keys: list[str] | None = Field(
        description="every approved node's public keys (lane keys too); null: unchanged"
    )
