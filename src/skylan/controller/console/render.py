"""Jinja2 templates, the filters they use, and partial rendering.

Pages refresh their live sections by asking for themselves with
``?part=<block>``: the same template renders only that block, so a table
looks the same whether it came with the page or five seconds later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from skylan import __version__
from skylan.controller import logins

HERE = Path(__file__).parent
NONE = "\N{EN DASH}"  # shown for "no value"
env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _scaled(n: float | None, units: tuple[str, ...]) -> str:
    """``n`` in the largest unit that keeps it under 1000 (steps of 1000)."""
    if n is None:
        return NONE
    for unit in units:
        if abs(n) < 1000 or unit == units[-1]:
            return f"{n:.0f} {unit}" if unit == units[0] else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def human_bytes(n: float | None) -> str:
    return _scaled(n, ("B", "KB", "MB", "GB", "TB"))


def bits_per_second(n: float | None) -> str:
    return _scaled(n, ("bit/s", "kbit/s", "Mbit/s", "Gbit/s"))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return NONE
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def ago(ts: datetime | None) -> str:
    if ts is None:
        return "never"
    when = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return duration((datetime.now(UTC) - when).total_seconds()) + " ago"


env.filters["bytes"] = human_bytes
env.filters["bits"] = bits_per_second
env.filters["duration"] = duration
env.filters["ago"] = ago
env.globals["version"] = __version__
# The form and badge macros are globals (not per-template imports) so that a
# block rendered on its own, for a live refresh, has them too.
_macros = env.get_template("macros.html").make_module()
for _name in ("field", "protocol", "checkbox", "form_error", "online", "chart"):
    env.globals[_name] = getattr(_macros, _name)


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    login: logins.Login | None = None,
) -> HTMLResponse:
    template = env.get_template(name)
    ctx = {"request": request, "login": login, "path": request.url.path, **context}
    part = request.query_params.get("part")
    if part is not None and part in template.blocks and part.startswith("live_"):
        html = "".join(template.blocks[part](template.new_context(ctx)))
    else:
        html = template.render(ctx)
    return HTMLResponse(html, status_code=status)


def fragment(name: str, **context: Any) -> str:
    return env.get_template(name).render(context)
