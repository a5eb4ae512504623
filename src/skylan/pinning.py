"""TLS certificate pinning for every client of the controller (agent, SDK, CLI).

The join token (or ``skylan login --fingerprint``) carries the SHA-256 of the
controller's certificate. The pin must be proven *before* a single byte of HTTP
leaves the client, because the first request already carries a secret (a join
token, ``Bearer skynode_…`` or ``Bearer skyadm_…``). So the first connection to a
controller only completes a TLS handshake, takes the certificate the server
presents and compares its fingerprint, then closes; every request after that goes
over connections whose TLS handshake trusts exactly that certificate and nothing
else (it is the only CA of the session). An impostor, whatever certificate it
has, never gets past a handshake.

The transports below do this lazily, on the first request to each origin, so an
SDK object can be built offline and an agent keeps retrying an unreachable
controller.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import ssl
import threading

import httpx

FINGERPRINT_LEN = 64  # hex SHA-256


class PinMismatch(httpx.TransportError):
    """The controller presented a different certificate than the pinned one,
    or could only be reached without TLS; nothing was sent to it."""


def fingerprint_of_der(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def presented_certificate(host: str, port: int, timeout: float | None) -> bytes:
    """The DER certificate ``host:port`` presents, from a TLS handshake alone:
    the connection is closed before any application data is sent."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    probe.check_hostname = False
    probe.verify_mode = ssl.CERT_NONE  # only to read the certificate; trust comes next
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        probe.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise PinMismatch(f"{host}:{port} presented no TLS certificate")
    return der


def context_trusting(der: bytes) -> ssl.SSLContext:
    """A client context whose only trust anchor is the certificate ``der``.

    The pin names a certificate, not a host name, so names are not checked; a
    partial chain is allowed so that a CA-issued certificate can be pinned too.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cadata=der)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return ctx


def pinned_context(url: httpx.URL, fingerprint: str, timeout: float | None) -> ssl.SSLContext:
    """The context for talking to ``url``, once its certificate matches ``fingerprint``."""
    if url.scheme != "https":
        raise PinMismatch("refusing plain HTTP: the controller must be reached over HTTPS")
    host = url.host
    port = url.port or 443
    try:
        der = presented_certificate(host, port, timeout)
    except (OSError, ssl.SSLError) as exc:
        raise httpx.ConnectError(f"cannot reach {host}:{port}: {exc}") from None
    if not hmac.compare_digest(fingerprint_of_der(der), fingerprint.lower()):
        raise PinMismatch(
            f"the TLS certificate at {host}:{port} does not match the pinned fingerprint; "
            "nothing was sent to it"
        )
    return context_trusting(der)


def pin_failure(exc: BaseException) -> str | None:
    """Why a connection was refused for its certificate (it is not the pinned
    one: at first contact, or changed since), or None for any other failure."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, PinMismatch):
            return str(seen)
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return (
                "the controller's TLS certificate no longer matches the pinned fingerprint; "
                "nothing was sent to it"
            )
        seen = seen.__cause__ or seen.__context__
    return None


def _connect_timeout(request: httpx.Request) -> float | None:
    timeouts = request.extensions.get("timeout", {})
    value = timeouts.get("connect")
    return float(value) if value is not None else None


def _origin(request: httpx.Request) -> tuple[str, str, int]:
    url = request.url
    return url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80)


class PinnedTransport(httpx.BaseTransport):
    """A synchronous transport that proves the pin before the first request."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._inner: dict[tuple[str, str, int], httpx.HTTPTransport] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request)
        with self._lock:
            inner = self._inner.get(origin)
            if inner is None:
                ctx = pinned_context(request.url, self._fingerprint, _connect_timeout(request))
                inner = self._inner[origin] = httpx.HTTPTransport(verify=ctx)
        return inner.handle_request(request)

    def close(self) -> None:
        for inner in self._inner.values():
            inner.close()
        self._inner.clear()


class PinnedAsyncTransport(httpx.AsyncBaseTransport):
    """The asynchronous twin of :class:`PinnedTransport` (the agent's)."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint
        self._inner: dict[tuple[str, str, int], httpx.AsyncHTTPTransport] = {}
        self._lock = asyncio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = _origin(request)
        async with self._lock:
            inner = self._inner.get(origin)
            if inner is None:
                # the probe is a blocking handshake: keep it off the event loop
                ctx = await asyncio.to_thread(
                    pinned_context, request.url, self._fingerprint, _connect_timeout(request)
                )
                inner = self._inner[origin] = httpx.AsyncHTTPTransport(verify=ctx)
        return await inner.handle_async_request(request)

    async def aclose(self) -> None:
        for inner in self._inner.values():
            await inner.aclose()
        self._inner.clear()
