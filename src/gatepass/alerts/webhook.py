"""Alerts as signed webhooks, and the check that receivers run.

Each delivery is a POST of the alert as JSON (``{"event": "alert.<kind>", "id": ..., ...}``) with::

    content-type: application/json
    user-agent: gatepass
    x-gatepass-event: alert.<kind>
    x-gatepass-delivery: <alert id>            the same on every retry: drop ids already seen
    x-gatepass-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}." + body)>

The scheme is Stripe's: a receiver recomputes the HMAC over the raw body it received with
:func:`verify_signature`, which also rejects a timestamp more than ``tolerance`` seconds away
(a replayed old delivery). Several ``v1=`` entries may appear; one match is enough.

Retries: a connection error, a timeout, a 5xx or a 429 is retried (``attempts`` in all, backoff
doubling from ``backoff`` seconds), each attempt freshly signed. Any other answer that is not 2xx
is final; redirects are not followed. A delivery takes at most about
``attempts * timeout + backoff * (2 ** (attempts - 1) - 1)`` seconds.
The URL's path and query can hold a token (many chat webhooks work so): errors and reprs show
only its scheme, host and port.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Final
from urllib.parse import urlsplit

import aiohttp

from gatepass.errors import InvalidInputError
from gatepass.sensitive import Secret

from .notify import Alert, Notifier, NotifyError

__all__ = ["SIGNATURE_HEADER", "WebhookNotifier", "encode_alert", "sign", "verify_signature"]

SIGNATURE_HEADER: Final = "x-gatepass-signature"
_RETRY_STATUSES: Final = frozenset({429})


def encode_alert(alert: Alert) -> bytes:
    """The exact JSON body sent for ``alert`` (compact, keys sorted)."""
    payload = {"event": f"alert.{alert.kind}", **alert.as_dict()}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(secret: Secret, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.reveal().encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: Secret, body: bytes, *, timestamp: int | None = None) -> str:
    """The ``x-gatepass-signature`` value for ``body``: ``t=<unix seconds>,v1=<hex hmac>``."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: Secret, header_value: str, body: bytes, *, tolerance: float = 300, now: float | None = None
) -> bool:
    """True if ``header_value`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` s of now."""
    timestamp: int | None = None
    candidates: list[str] = []
    for item in header_value.split(","):
        key, eq, value = item.strip().partition("=")
        if not eq:
            return False
        if key == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                return False
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body).encode()
    matched = False
    for candidate in candidates:  # compare them all: the time taken does not depend on which matched
        matched |= hmac.compare_digest(expected, candidate.encode("ascii", "replace"))
    return matched


class WebhookNotifier(Notifier):
    """POSTs each alert as signed JSON to ``url``; see the module docstring for headers and retries."""

    def __init__(
        self,
        url: str,
        signing_secret: Secret,
        *,
        timeout: float = 5,
        attempts: int = 3,
        backoff: float = 0.5,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInputError(
                "invalid webhook URL: use http(s)://HOST[:PORT]/PATH, e.g. https://hooks.example.com/gatepass"
            )
        if not isinstance(signing_secret, Secret) or len(signing_secret) < 16:
            raise InvalidInputError("invalid webhook signing secret: use a random value of at least 16 characters")
        if not timeout > 0 or attempts < 1 or backoff < 0:
            raise InvalidInputError(
                "invalid webhook settings: timeout above 0 s, attempts 1 or more, backoff 0 s or more"
            )
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        port = f":{parts.port}" if parts.port else ""
        self._url = url
        self._origin = f"{parts.scheme}://{host}{port}"
        self._secret = signing_secret
        self._timeout = float(timeout)
        self._attempts = attempts
        self._backoff = float(backoff)

    @property
    def name(self) -> str:
        return f"webhook {self._origin}"

    def __repr__(self) -> str:
        return f"WebhookNotifier({self._origin!r}, signing_secret={self._secret!r}, attempts={self._attempts})"

    def _headers(self, alert: Alert, body: bytes) -> dict[str, str]:
        return {
            "content-type": "application/json",
            "user-agent": "gatepass",
            "x-gatepass-event": f"alert.{alert.kind}",
            "x-gatepass-delivery": alert.id,
            SIGNATURE_HEADER: sign(self._secret, body),
        }

    async def send(self, alert: Alert) -> None:
        body = encode_alert(alert)
        problem = "not attempted"
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            for attempt in range(self._attempts):
                if attempt:
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                try:
                    async with session.post(
                        self._url, data=body, headers=self._headers(alert, body), allow_redirects=False
                    ) as response:
                        status = response.status
                except TimeoutError:
                    problem = f"no answer within {self._timeout:g}s"
                    continue
                except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                    problem = f"connection failed ({type(exc).__name__})"
                    continue
                except aiohttp.ClientError as exc:
                    raise NotifyError(
                        f"{self.name}: alert {alert.id} not delivered: {type(exc).__name__}; check the webhook URL"
                    ) from None
                if 200 <= status < 300:
                    return
                if status >= 500 or status in _RETRY_STATUSES:
                    problem = f"answered {status}"
                    continue
                raise NotifyError(
                    f"{self.name}: alert {alert.id} refused with status {status} (not retried); "
                    "check the webhook URL and the receiver's signing secret"
                )
        raise NotifyError(f"{self.name}: alert {alert.id} not delivered after {self._attempts} attempt(s): {problem}")
