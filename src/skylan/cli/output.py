"""Rendering results: Rich tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

# soft_wrap: a printed command or token stays one line, whatever the width of the
# terminal or log, so it can be copied; tables still fit the width
console = Console(highlight=False, soft_wrap=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

Column = tuple[str, Callable[[Any], object]]


def emit(
    data: BaseModel | Sequence[BaseModel] | None,
    as_json: bool,
    columns: list[Column] | None = None,
    title: str | None = None,
) -> None:
    if as_json:
        if isinstance(data, BaseModel):
            payload: Any = data.model_dump(mode="json")
        elif data is None:
            payload = None
        else:
            payload = [d.model_dump(mode="json") for d in data]
        typer.echo(json.dumps(payload, indent=2))
        return
    if data is None:
        return
    rows = [data] if isinstance(data, BaseModel) else list(data)
    if columns is None:
        columns = [_field(k) for k in type(rows[0]).model_fields] if rows else []
    table = Table(*[c[0] for c in columns], title=title)
    for row in rows:
        table.add_row(*[_cell(fn(row)) for _, fn in columns])
    console.print(table)


def _field(name: str) -> Column:
    def get(row: Any) -> object:
        return getattr(row, name)

    return (name, get)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def detail(model: BaseModel, as_json: bool) -> None:
    """One object as a two-column table (or JSON)."""
    if as_json:
        emit(model, True)
        return
    table = Table("field", "value", show_header=False)
    for key, value in model.model_dump(mode="json").items():
        table.add_row(
            key,
            _cell(value) if not isinstance(value, (dict, list)) or not value else json.dumps(value),
        )
    console.print(table)
