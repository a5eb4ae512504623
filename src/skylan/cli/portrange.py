"""``--port 443`` or ``--port 8000-8100``, as the rule commands take it and
show it."""

from __future__ import annotations

import typer


def parse(text: str | None) -> tuple[int | None, int | None]:
    if text is None:
        return None, None
    low, _, high = text.partition("-")
    if not low.isdigit() or (high and not high.isdigit()):
        raise typer.BadParameter(f"--port {text!r}: expected 443 or 8000-8100")
    return int(low), int(high or low)


def shown(port_from: int | None, port_to: int | None) -> str:
    """A rule's ports in a table: "-" for a protocol without ports."""
    return f"{port_from}-{port_to}" if port_from else "-"
