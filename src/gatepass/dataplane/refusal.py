"""Refusals as the client's own provider would send them, plus gatepass's headers.

Every refusal carries ``x-gatepass-request-id`` and ``x-gatepass-denied: <reason>``, and a body in
the upstream provider's error shape so the official SDKs raise their usual exception with our
message. Refusals that waiting cannot fix carry ``x-should-retry: false``, which the official
SDKs obey; rate limits answer 429 with ``retry-after`` and may be retried.
"""

from __future__ import annotations

import json
import math
from typing import Final

from gatepass.dataplane.exchange import Denial
from gatepass.providers import Provider

__all__ = ["RETRYABLE", "refusal_response"]

#: Reasons that waiting can fix: the SDKs may retry them (after retry-after).
RETRYABLE: Final = frozenset(
    {"rate_limited", "upstream_unavailable", "upstream_timeout", "internal_error", "audit_unavailable"}
)

Headers = list[tuple[bytes, bytes]]


def _generic_body(denial: Denial) -> bytes:
    return json.dumps({"error": {"type": denial.code, "code": denial.code, "message": denial.message}}).encode()


def refusal_response(denial: Denial, request_id: str, provider: Provider | None) -> tuple[int, Headers, bytes]:
    body = provider.error_body(denial.status, denial.code, denial.message) if provider else _generic_body(denial)
    headers: Headers = [
        (b"content-type", b"application/json"),
        (b"x-gatepass-request-id", request_id.encode()),
        (b"x-gatepass-denied", denial.code.encode()),
    ]
    if denial.retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(denial.retry_after))).encode()))
    if denial.code not in RETRYABLE:
        headers.append((b"x-should-retry", b"false"))
    return denial.status, headers, body
