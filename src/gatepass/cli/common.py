"""What every command shares: opening the home, and options that parse into domain values."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click

from gatepass.control.app import Gatepass
from gatepass.model import RateLimits

__all__ = ["json_option", "limit_options", "limits_from", "merge_limits", "open_app", "split_values"]

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


def limit_options(func: F) -> F:
    """--rpm, --tpm and --concurrency, for agents and keys."""
    for name, text in (
        ("concurrency", "Most requests in flight at once."),
        ("tpm", "Most tokens per minute (input + output, as the provider reports them)."),
        ("rpm", "Most requests per minute."),
    ):
        func = click.option(f"--{name}", type=int, metavar="N", help=text)(func)
    return func


def limits_from(rpm: int | None, tpm: int | None, concurrency: int | None) -> RateLimits:
    return RateLimits(rpm=rpm, tpm=tpm, concurrency=concurrency)


def merge_limits(current: RateLimits, rpm: int | None, tpm: int | None, concurrency: int | None) -> RateLimits:
    """Options given replace the current values; 0 removes a limit."""

    def pick(given: int | None, now: int | None) -> int | None:
        return now if given is None else (given or None)

    return RateLimits(pick(rpm, current.rpm), pick(tpm, current.tpm), pick(concurrency, current.concurrency))
