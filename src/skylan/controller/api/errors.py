"""Every error leaves the API as JSON ``{"error": ..., "detail": ...}`` with a
4xx status and a sentence a person can act on; never a stack trace."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from skylan.controller.service.errors import ServiceError
from skylan.controller.storage.database import POOL_TIMEOUT_S
from skylan.controller.writes import Busy
from skylan.model.api import ErrorBody

log = logging.getLogger("skylan.controller")


class ApiError(Exception):
    def __init__(self, status: int, message: str, **detail: object) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, f"{kind} {ident!r} not found")


def conflict(message: str, **detail: object) -> ApiError:
    return ApiError(409, message, **detail)


def _describe(err: dict[str, object]) -> str:
    raw_loc = err.get("loc", ())
    parts = raw_loc if isinstance(raw_loc, (list, tuple)) else ()
    loc = ".".join(str(p) for p in parts if p not in ("body", "query", "path"))
    msg = str(err.get("msg", "invalid"))
    return f"{loc}: {msg}" if loc else msg


_MEANINGS = {
    400: "The request could not be read",
    401: "Missing, wrong or revoked credentials",
    403: "The credentials do not allow this",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input; the message names the field",
    429: "Too many failed authentications from this address, or too many reports; see Retry-After",
    503: "Overloaded or the database is unavailable: nothing was done; see Retry-After",
}
# declared on every operation of the API, with the one error body they all share
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": meaning} for status, meaning in _MEANINGS.items()
}


def allowed_methods(app: FastAPI, path: str) -> list[str] | None:
    """The methods the API document lists for ``path`` (None if it has no such
    path). Starlette's own 405 names only the first route that matched, and a
    path such as ``/networks`` has a route per method."""
    for template, item in app.openapi()["paths"].items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return sorted(m.upper() for m in item if m in _HTTP_METHODS)
    return None


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def validation_error(errors: list[dict[str, Any]]) -> JSONResponse:
    described = [_describe(dict(e)) for e in errors]
    return JSONResponse(
        {"error": "; ".join(described), "detail": {"fields": described}}, status_code=422
    )


def known_error(exc: BaseException) -> JSONResponse | None:
    """The answer to a refusal or an overload, or None for a real bug."""
    if isinstance(exc, ApiError | ServiceError):
        return JSONResponse({"error": exc.message, "detail": exc.detail}, status_code=exc.status)
    if isinstance(exc, Busy):
        return JSONResponse(
            {"error": str(exc), "detail": {}},
            status_code=503,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, SQLAlchemyTimeout):
        log.warning("no database connection free within %s s", POOL_TIMEOUT_S)
        return JSONResponse(
            {"error": "the database is busy; retry in a moment", "detail": {}},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc.orig)
        return JSONResponse(
            {"error": "the database is unavailable or locked; retry in a moment", "detail": {}},
            status_code=503,
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, ValidationError):
        return validation_error([dict(e) for e in exc.errors()])
    return None


def internal_error(exc: BaseException) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return JSONResponse(
        {"error": "internal error; see the controller log", "detail": {}}, status_code=500
    )


def install(app: FastAPI) -> None:
    async def _known(_req: Request, exc: Exception) -> JSONResponse:
        return known_error(exc) or internal_error(exc)

    for kind in (
        ApiError,
        ServiceError,
        Busy,
        SQLAlchemyTimeout,
        OperationalError,
        ValidationError,
    ):
        app.add_exception_handler(kind, _known)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error([dict(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (methods := allowed_methods(app, req.url.path)):
            headers["Allow"] = ", ".join(methods)  # every method of the path, not one route's
        return JSONResponse(
            {"error": str(exc.detail), "detail": {}}, status_code=exc.status_code, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        return internal_error(exc)
