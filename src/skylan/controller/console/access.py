"""Who is looking at the console: the login cookie, checked on every request,
and the login and logout pages."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from skylan.controller import logins
from skylan.controller.console.apiclient import ConsoleApi
from skylan.controller.console.render import render

LOGIN_CSRF_COOKIE = "skylan_login_csrf"
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by pages when there is no live session; answered with a redirect."""


@dataclass
class Viewer:
    login: logins.Login
    api: ConsoleApi


def _lookup(request: Request, cookie: str) -> logins.Login | None:
    with request.app.state.sessions() as db:
        return logins.lookup(db, cookie)


async def viewer(request: Request) -> AsyncIterator[Viewer]:
    cookie = request.cookies.get(logins.COOKIE)
    login = await run_in_threadpool(_lookup, request, cookie) if cookie else None
    if login is None:
        raise LoginRequired
    # Changes carry the CSRF token the page echoed (header from htmx, or a form
    # field); the API checks it against the session, exactly as for any client.
    presented = request.headers.get(logins.CSRF_HEADER)
    api = ConsoleApi(request, presented)
    try:
        yield Viewer(login, api)
    finally:
        await api.aclose()


CurrentViewer = Annotated[Viewer, Depends(viewer)]


def redirect_to_login(request: Request) -> Response:
    target = "/login?next=" + quote(request.url.path)
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _safe_next(value: str | None) -> str:
    """Only paths on this site: never a redirect to somewhere else."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_form(
    request: Request, next: str | None, error: str | None = None, status: int = 200
) -> HTMLResponse:
    """The login page with a fresh double-submit token (cookie + hidden field)."""
    csrf = secrets.token_urlsafe(24)
    context = {"csrf": csrf, "next": _safe_next(next), "error": error}
    resp = render(request, "login.html", context, status=status)
    resp.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, secure=True, samesite="strict")
    return resp


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_form(request, next)


def _start(request: Request, token: str) -> tuple[str, logins.Login] | None:
    with request.app.state.write_sessions() as db:
        return logins.create(db, token.strip())


@router.post("/login")
async def login_submit(
    request: Request,
    token: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    error = None
    started = None
    if not expected or not secrets.compare_digest(expected, csrf):
        error = "the login form expired; please try again"
    elif not token.strip():
        error = "enter an API token (skyadm_...)"
    else:
        started = await run_in_threadpool(_start, request, token)
        if started is None:
            error = "that API token is not valid or has been revoked"
    if started is None:
        return _login_form(request, next, error, status=401)
    secret, _ = started
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(
        logins.COOKIE,
        secret,
        max_age=int(logins.LIFETIME.total_seconds()),
        httponly=True,
        secure=True,
        samesite="strict",
    )
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


def _end(request: Request, cookie: str, csrf: str) -> None:
    with request.app.state.write_sessions() as db:
        login = logins.lookup(db, cookie)
        if login is not None and logins.csrf_ok(login.csrf, csrf):
            logins.end(db, cookie)
    request.app.state.login_cache.forget(cookie)


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=100)] = "") -> Response:
    """Ends the session (if the form carries its CSRF token) and forgets the cookie."""
    cookie = request.cookies.get(logins.COOKIE)
    if cookie:
        await run_in_threadpool(_end, request, cookie, csrf)
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(logins.COOKIE)
    return resp
