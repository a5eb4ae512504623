"""The agent's HTTPS client for the controller's ``/api/v1/agent`` endpoints.

It knows one or more controller URLs (replicas behind no load balancer, say)
and moves to the next when one cannot be reached or is overloaded; the pin
(the certificate every replica shares) is proven before anything is sent.
"""

from __future__ import annotations

from typing import Any

import httpx

from skylan.model.agentapi import EnrollRequest, EnrollResponse, SyncAnswer, SyncRequest
from skylan.pinning import PinnedAsyncTransport, pin_failure

RETRY_ELSEWHERE = frozenset({502, 503, 504})


class ControlPlaneError(Exception):
    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def controller_urls(text: str) -> list[str]:
    """``https://a:8443,https://b:8443`` -> the replicas, in order."""
    urls = [u.strip().rstrip("/") for u in text.split(",") if u.strip()]
    if not urls:
        raise ControlPlaneError("no controller URL given")
    return urls


class ControlPlane:
    def __init__(
        self,
        urls: str | list[str],
        fingerprint: str,
        credential: str | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.urls = controller_urls(urls) if isinstance(urls, str) else list(urls)
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        # the pin is proven in a TLS handshake before the first request (which
        # carries the join token or the node credential) is sent
        self._clients = [
            httpx.AsyncClient(
                base_url=url,
                headers=headers,
                timeout=timeout,
                transport=PinnedAsyncTransport(fingerprint),
            )
            for url in self.urls
        ]
        self.current = 0  # the replica in use

    @property
    def url(self) -> str:
        return self.urls[self.current]

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """The answer of the first replica (from the current one on) that
        answers; a refusal is final, an unreachable or overloaded replica
        passes the request to the next."""
        last: ControlPlaneError | None = None
        for _ in range(len(self._clients)):
            try:
                response = await self._clients[self.current].request(
                    method,
                    "/api/v1/agent" + path,
                    json=json,
                    params=params,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.HTTPError as exc:
                refused = pin_failure(exc)
                if refused is not None:
                    raise ControlPlaneError(refused) from None
                last = ControlPlaneError(f"controller {self.url} unreachable: {exc!r}")
            else:
                if response.status_code < 400:
                    return response
                last = _refusal(response)
                if response.status_code not in RETRY_ELSEWHERE:
                    raise last
            self.current = (self.current + 1) % len(self._clients)
        assert last is not None
        raise last

    async def enroll(self, body: EnrollRequest) -> EnrollResponse:
        response = await self._call("POST", "/enroll", json=body.model_dump(exclude_none=True))
        return EnrollResponse.model_validate_json(response.content)

    async def sync(self, since: int, wait: float, body: SyncRequest) -> SyncAnswer:
        """The heartbeat and statistics in, the next netmap (or none within
        ``wait`` seconds) out."""
        response = await self._call(
            "POST",
            "/sync",
            params={"since": since, "wait": wait},
            json=body.model_dump(mode="json", exclude_none=True),
            timeout=wait + 15,
        )
        return SyncAnswer.model_validate_json(response.content)


def _refusal(response: httpx.Response) -> ControlPlaneError:
    try:
        message = response.json().get("error", response.text)
    except ValueError:
        message = response.text
    retry = response.headers.get("retry-after", "")
    retry_after = float(retry) if retry.replace(".", "", 1).isdigit() else None
    return ControlPlaneError(str(message), response.status_code, retry_after)
