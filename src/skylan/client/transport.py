"""The SDK's HTTP client: pinned to the controller's certificate when a
fingerprint is given (see :mod:`skylan.pinning`), ordinary CA verification
otherwise."""

from __future__ import annotations

import httpx

from skylan.pinning import PinnedTransport


def pinned_client(
    base_url: str, fingerprint: str | None, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Client:
    transport = PinnedTransport(fingerprint) if fingerprint is not None else None
    return httpx.Client(
        base_url=base_url, timeout=timeout, headers=headers or {}, transport=transport
    )
