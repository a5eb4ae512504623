"""The agent's HTTPS client for the controller's ``/api/v1/agent`` endpoints."""

from __future__ import annotations

from typing import Any

import httpx

from skylan.agent.pinning import PinMismatch, check_pin, pinned_ssl_context
from skylan.model.netmap import NetMap


class ControlPlaneError(Exception):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ControlPlane:
    def __init__(
        self, url: str, fingerprint: str, credential: str | None = None, timeout: float = 20.0
    ) -> None:
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        self._fingerprint = fingerprint
        self._http = httpx.AsyncClient(
            base_url=url.rstrip("/"),
            verify=pinned_ssl_context(),
            headers=headers,
            timeout=timeout,
            event_hooks={"response": [self._pin]},
        )

    async def _pin(self, response: httpx.Response) -> None:
        check_pin(response, self._fingerprint)

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
        except PinMismatch as exc:
            raise ControlPlaneError(str(exc)) from None
        except httpx.HTTPError as exc:
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
