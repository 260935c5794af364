"""Globs in grants: model names (``claude-haiku-*``) and URL paths (``/repos/acme/**``).

Model globs: ``*`` matches any run of characters, ``?`` one character.
Path globs: ``*`` matches within one path segment, ``**`` (a whole segment) matches any number
of segments, ``?`` one character other than ``/``. Character classes and braces are refused so
that a grant reads the same to everyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from gatepass.errors import InvalidInputError

__all__ = ["HTTP_METHODS", "Glob", "parse_method", "parse_model_glob", "parse_path_glob"]

HTTP_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_MODEL_CHARS: Final = re.compile(r"[A-Za-z0-9._:/@*?+-]{1,200}")
_PATH_CHARS: Final = re.compile(r"/[A-Za-z0-9._~!$&'()+,;=:@%/*?-]{0,500}")


@dataclass(frozen=True, slots=True)
class Glob:
    """A validated glob; ``matches`` is a full match against its compiled pattern."""

    text: str
    _pattern: re.Pattern[str] = field(repr=False, compare=False)

    def matches(self, value: str) -> bool:
        return self._pattern.fullmatch(value) is not None

    def __str__(self) -> str:
        return self.text


def parse_model_glob(text: str) -> Glob:
    if not _MODEL_CHARS.fullmatch(text):
        raise InvalidInputError(
            f"invalid model glob {text!r}: use model-name characters with * and ? as wildcards "
            "(e.g. claude-haiku-* or gpt-4o-mini)"
        )
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return Glob(text, re.compile(regex, re.DOTALL))


def parse_path_glob(text: str) -> Glob:
    if not _PATH_CHARS.fullmatch(text):
        raise InvalidInputError(
            f"invalid path glob {text!r}: start with / and use URL path characters with *, ** and ? "
            "(e.g. /repos/acme/docs/**)"
        )
    segments = text.split("/")[1:]
    if any(seg in (".", "..") for seg in segments):
        raise InvalidInputError(f"invalid path glob {text!r}: '.' and '..' segments are not allowed")
    out: list[str] = []
    i = 0
    while i < len(text):
        if text.startswith("/**", i) and (i + 3 == len(text) or text[i + 3] == "/"):
            out.append("(?:/.*)?")
            i += 3
            continue
        c = text[i]
        if text.startswith("**", i):
            raise InvalidInputError(f"invalid path glob {text!r}: ** must be a whole path segment (e.g. /repos/**)")
        out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
        i += 1
    return Glob(text, re.compile("".join(out), re.DOTALL))


def parse_method(text: str) -> str:
    method = text.strip().upper()
    if method != "*" and method not in HTTP_METHODS:
        raise InvalidInputError(f"invalid HTTP method {text!r}: use one of {', '.join(sorted(HTTP_METHODS))} or *")
    return method
