"""Printing for the CLI: data on stdout (tables or JSON), diagnostics on stderr."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click

__all__ = ["echo_fields", "echo_json", "echo_table", "fmt_time", "iso", "note"]


def fmt_time(value: datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%SZ")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, empty: str) -> None:
    """An aligned table on stdout; ``empty`` goes to stderr when there are no rows."""
    if not rows:
        note(empty)
        return
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def echo_fields(fields: Mapping[str, object]) -> None:
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        click.echo(f"{key + ':':<{width + 1}} {value}")


def note(message: str) -> None:
    """A diagnostic for the person at the terminal (stderr)."""
    click.echo(message, err=True)
