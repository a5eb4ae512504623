"""HTTP transport with certificate pinning for the SDK.

A skylan controller usually has a self-signed certificate. Rather than
turning verification off, the SDK pins its SHA-256 fingerprint (from the join
token or ``skylan login``) and checks it on every response, exactly as the
agent does (:mod:`skylan.agent.pinning`).
"""

from __future__ import annotations

import ssl

import httpx

from skylan.agent.pinning import PinMismatch, check_pin, pinned_ssl_context
from skylan.client.errors import SkylanError


def pinned_client(
    base_url: str, fingerprint: str | None, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Client:
    verify: ssl.SSLContext | bool = True
    hooks = {}
    if fingerprint is not None:
        verify = pinned_ssl_context()

        def hook(response: httpx.Response) -> None:
            try:
                check_pin(response, fingerprint)
            except PinMismatch as exc:
                response.close()
                raise SkylanError(f"{exc}; refusing to talk to it") from None

        hooks = {"response": [hook]}
    return httpx.Client(
        base_url=base_url, verify=verify, timeout=timeout, headers=headers or {}, event_hooks=hooks
    )
