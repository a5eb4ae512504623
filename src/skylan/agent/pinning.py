"""TLS certificate pinning for talking to the controller.

The join token carries the SHA-256 of the controller's certificate; every
connection must present exactly that certificate. CA verification is off
because the pin is a stronger statement than any CA's.
"""

from __future__ import annotations

import hashlib
import ssl

import httpx


class PinMismatch(httpx.TransportError):
    """The controller presented a different certificate than the pinned one."""


def pinned_ssl_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # trust comes from the pin, checked per response
    return ctx


def presented_fingerprint(response: httpx.Response) -> str | None:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    der = ssl_object.getpeercert(True) if ssl_object is not None else None
    return hashlib.sha256(der).hexdigest() if der else None


def check_pin(response: httpx.Response, fingerprint: str) -> None:
    if response.url.scheme != "https":
        raise PinMismatch("refusing plain HTTP: the controller must be reached over HTTPS")
    if presented_fingerprint(response) != fingerprint:
        raise PinMismatch("the controller's TLS certificate does not match the pinned fingerprint")
