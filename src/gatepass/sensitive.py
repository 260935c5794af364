"""`Secret`: a value that hides itself.

Secret values (upstream credentials, gatepass keys, the master key) travel inside this type so
that a log line, an f-string, a traceback's locals or a repr shows ``Secret('[secure]')`` rather
than the value. The value is read only on purpose, through :meth:`Secret.reveal`.
"""

from __future__ import annotations

import hmac
from typing import Final, NoReturn

__all__ = ["Secret"]

_MASK: Final = "[secure]"


class Secret:
    """Holds a secret string; every way of printing it prints a mask instead."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret holds a str")
        self._value = value

    def reveal(self) -> str:
        """Return the value. Call this only where the value must leave (encryption, injection)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        # Not hashable on purpose: a hash of a secret is a way of leaking it.
        raise TypeError("Secret is not hashable")

    def __len__(self) -> int:
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("Secret cannot be pickled")
