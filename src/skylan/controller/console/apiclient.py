"""The console's way to the REST API: the same endpoints the CLI and SDK call,
reached in-process through the ASGI app with the browser's own session.

Going through HTTP semantics (not calling handler functions) keeps one place
for validation, permissions and error messages: whatever the API says to the
CLI, the console shows next to the form field it concerns.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from fastapi import Request
from pydantic import BaseModel, TypeAdapter

from skylan.controller import logins

T = TypeVar("T", bound=BaseModel)
FORM = "_form"  # errors that belong to the form as a whole


def segment(ident: str) -> str:
    """A name or id from a URL, as one path segment of an API call: "?" or "#"
    in it must not end the path (``/networks/%3F`` is the network named "?")."""
    return quote(ident, safe="")


class ApiFailure(Exception):
    """The API refused: ``fields`` maps form field names to messages."""

    def __init__(self, status: int, message: str, fields: dict[str, str]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = fields


def field_errors(body: Any) -> dict[str, str]:
    """Which field each message of an API error is about.

    The API names it in ``detail.field`` (conflicts) or prefixes validation
    messages with the field's path (``cidr4: ...``); anything else is the
    form's.
    """
    if not isinstance(body, dict):
        return {FORM: "the controller gave an unexpected answer"}
    message = str(body.get("error") or "request failed")
    detail = body.get("detail") if isinstance(body.get("detail"), dict) else {}
    assert isinstance(detail, dict)
    out: dict[str, str] = {}
    for text in detail.get("fields", []) if isinstance(detail.get("fields"), list) else []:
        loc, sep, msg = str(text).partition(": ")
        if sep and loc:
            name = loc.split(".")[0]
            out[name] = (out[name] + "; " if name in out else "") + msg.removeprefix(
                "Value error, "
            )
        else:
            out[FORM] = str(text).removeprefix("Value error, ")
    if not out:
        field = detail.get("field")
        out[str(field) if isinstance(field, str) else FORM] = message
    return out


class ConsoleApi:
    def __init__(self, request: Request, csrf: str | None) -> None:
        headers = {"accept": "application/json"}
        if csrf is not None:
            headers[logins.CSRF_HEADER] = csrf
        cookie = request.cookies.get(logins.COOKIE, "")
        self._http = httpx.AsyncClient(
            # a failure inside the API comes back as its 500 answer, not as an exception
            # (from the browser's address, so a failure counts against it, not us)
            transport=httpx.ASGITransport(
                app=request.app,
                raise_app_exceptions=False,
                client=(request.client.host, request.client.port)
                if request.client
                else ("127.0.0.1", 123),
            ),
            # the browser's own origin: the API builds URLs (join commands) from it
            base_url=str(request.base_url).rstrip("/") + "/api/v1",
            headers=headers,
            cookies={logins.COOKIE: cookie},
            timeout=30,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        resp = await self._http.request(method, path, json=body, params=params)
        if resp.status_code >= 400:
            try:
                payload = resp.json()
            except ValueError:
                payload = {"error": resp.text or resp.reason_phrase}
            message = payload.get("error", "") if isinstance(payload, dict) else ""
            raise ApiFailure(resp.status_code, str(message), field_errors(payload))
        return None if resp.status_code == 204 else resp.json()

    async def one(self, model: type[T], path: str, params: dict[str, Any] | None = None) -> T:
        return model.model_validate(await self.call("GET", path, params=params))

    async def many(
        self, model: type[T], path: str, params: dict[str, Any] | None = None
    ) -> list[T]:
        adapter: TypeAdapter[list[T]] = TypeAdapter(list[model])  # type: ignore[valid-type]
        return adapter.validate_python(await self.call("GET", path, params=params))
