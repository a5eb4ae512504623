"""Puts the console on the controller's app: pages at ``/``, assets at ``/static``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape

from skylan.controller.console import access, actions, pages, vendor
from skylan.controller.console.apiclient import ApiFailure
from skylan.controller.console.render import HERE, render

STOP_POLLING = 286  # htmx: stop the section's polling, swap what we send
log = logging.getLogger("skylan.controller")


def install(app: FastAPI) -> None:
    if missing := vendor.missing():
        log.warning(
            "console assets missing (%s): run `python -m skylan.controller.console.vendor`",
            ", ".join(a.package for a in missing),
        )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for module in (access, pages, actions):
        app.include_router(module.router)

    @app.exception_handler(access.LoginRequired)
    async def _login(request: Request, _exc: access.LoginRequired) -> Response:
        return access.redirect_to_login(request)

    @app.exception_handler(ApiFailure)
    async def _page_failure(request: Request, exc: ApiFailure) -> Response:
        """A page whose subject the API refused (gone, or not allowed)."""
        if exc.status == 401:
            return access.redirect_to_login(request)
        if request.query_params.get("part"):
            return HTMLResponse(
                f'<p class="notice" role="status">{escape(exc.message)}</p>',
                status_code=STOP_POLLING,
            )
        return render(request, "error.html", {"message": exc.message}, status=exc.status)
