"""Reading TOML files so that every error names the file, the line and the fix.

``tomllib`` reports syntax errors with a line; for errors found after parsing (a wrong type, an
unknown key, a bad budget) :func:`find_line` walks the text to the table and key at fault.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gatepass.errors import ConfigError

__all__ = ["config_error", "find_line", "load_toml", "validate"]

M = TypeVar("M", bound=BaseModel)

_LOC_RE = re.compile(r"\(at line (\d+), column \d+\)")
_KEY_RE = re.compile(r"""^((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")


def load_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Parse a TOML file; a missing file or bad syntax raises ConfigError naming file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file: create it or point -f at the right file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc.__class__.__name__}): check the file") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        detail = str(exc)
        match = _LOC_RE.search(detail)
        line = match.group(1) if match else "1"
        reason = _LOC_RE.sub("", detail).strip()
        raise ConfigError(f"{path}:{line}: invalid TOML: {reason}; fix the syntax on that line") from None


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def find_line(text: str, loc: Sequence[str | int]) -> int | None:
    """The line that best matches a location such as ``("agents", "x", "grants", 0, "models")``."""
    want = tuple(str(p) for p in loc)
    best: tuple[int, int] | None = None  # (depth, line)
    table: tuple[str, ...] = ()
    arrays: Counter[tuple[str, ...]] = Counter()
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            header = _split_dotted(line[2:].split("]]", 1)[0])
            arrays[header] += 1
            table = (*header, str(arrays[header] - 1))
            path = table
        elif line.startswith("["):
            table = _split_dotted(line[1:].split("]", 1)[0])
            path = table
        else:
            match = _KEY_RE.match(line)
            if not match:
                continue
            path = table + _split_dotted(match.group(1))
        if want[: len(path)] == path and (best is None or len(path) > best[0]):
            best = (len(path), lineno)
    return None if best is None else best[1]


def config_error(path: Path, text: str, loc: Sequence[str | int], message: str) -> ConfigError:
    line = find_line(text, loc)
    where = f"{path}:{line}" if line else str(path)
    dotted = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
    return ConfigError(f"{where}: {dotted}: {message}" if dotted else f"{where}: {message}")


def _explain(error: dict[str, Any]) -> str:
    kind = error["type"]
    loc = error["loc"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}: remove it or check its spelling"
    if kind == "missing":
        return f"missing key {loc[-1]!r}: add it"
    message = str(error["msg"])
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def validate(model: type[M], data: dict[str, Any], path: Path, text: str) -> M:
    """Validate parsed TOML against a pydantic model; the first error becomes one ConfigError line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # An unknown key is usually a typo of a missing one: report it first.
        first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        raise config_error(path, text, first["loc"], _explain(dict(first))) from None
