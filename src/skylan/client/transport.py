"""HTTP transport with certificate pinning.

A skylan controller usually has a self-signed certificate. Rather than
turning verification off, the SDK pins its SHA-256 fingerprint (from the join
token or ``skylan login``) and checks it on every connection.
"""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import httpx

from skylan.client.errors import SkylanError


def pinned_client(
    base_url: str, fingerprint: str | None, timeout: float, headers: dict[str, str] | None = None
) -> httpx.Client:
    verify: ssl.SSLContext | bool = True
    if fingerprint is not None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # trust comes from the pin below, not a CA
        verify = ctx
    hooks = {"response": [_check_pin(fingerprint)]} if fingerprint else {}
    return httpx.Client(
        base_url=base_url, verify=verify, timeout=timeout, headers=headers or {}, event_hooks=hooks
    )


def _check_pin(fingerprint: str | None) -> Any:
    def hook(response: httpx.Response) -> None:
        if response.url.scheme != "https":
            return
        stream = response.extensions.get("network_stream")
        ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
        der = ssl_object.getpeercert(True) if ssl_object is not None else None
        if der is None or hashlib.sha256(der).hexdigest() != fingerprint:
            response.close()
            raise SkylanError(
                "the controller's TLS certificate does not match the pinned fingerprint; "
                "refusing to talk to it"
            )

    return hook
