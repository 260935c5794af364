"""What every command shares: opening the home, and options that parse into domain values."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from gatepass.control.app import Gatepass

__all__ = ["json_option", "open_app", "split_values"]

F = TypeVar("F", bound=Callable[..., Any])


def open_app(ctx: click.Context) -> Gatepass:
    """The home this command works on, opened once per invocation and closed when it ends."""
    root = ctx.find_root()
    app = root.meta.get("gatepass.app")
    if app is None:
        app = Gatepass.open(env=os.environ)
        root.meta["gatepass.app"] = app
        root.call_on_close(app.close)
    assert isinstance(app, Gatepass)
    return app


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(func)


def split_values(values: Iterable[str]) -> list[str]:
    """Values of a repeatable option, each of which may also hold a comma-separated list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]
