"""The agent's HTTPS client for the controller's ``/api/v1/agent`` endpoints."""

from __future__ import annotations

from typing import Any

import httpx

from skylan.model.netmap import NetMap
from skylan.pinning import PinnedAsyncTransport, pin_failure


class ControlPlaneError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ControlPlane:
    def __init__(
        self, url: str, fingerprint: str, credential: str | None = None, timeout: float = 20.0
    ) -> None:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        # the pin is proven in a TLS handshake before the first request (which
        # carries the join token or the node credential) is sent
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=PinnedAsyncTransport(fingerprint),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        try:
            response = await self._http.request(
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
            raise ControlPlaneError(f"controller unreachable: {exc!r}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise ControlPlaneError(str(message), response.status_code)
        return response

    async def enroll(self, body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = (await self._call("POST", "/enroll", json=body)).json()
        return data

    async def netmap(self, since: int, wait: float) -> NetMap | None:
        """The next netmap after ``since``; None if nothing changed within ``wait``."""
        response = await self._call(
            "GET", "/netmap", params={"since": since, "timeout": wait}, timeout=wait + 15
        )
        if response.status_code == 304:
            return None
        return NetMap.model_validate_json(response.content)

    async def heartbeat(self, body: dict[str, Any]) -> None:
        await self._call("POST", "/heartbeat", json=body)

    async def stats(self, body: dict[str, Any]) -> None:
        await self._call("POST", "/stats", json=body)
