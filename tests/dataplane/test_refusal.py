import json

from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.refusal import refusal_response
from gatepass.providers import get_provider


def test_a_refusal_waiting_cannot_fix_tells_the_sdks_not_to_retry() -> None:
    status, headers, body = refusal_response(
        Denial(402, "budget_exhausted", "no money left"), "req_1", get_provider("anthropic")
    )
    assert status == 402
    assert dict(headers) == {
        b"content-type": b"application/json",
        b"x-gatepass-request-id": b"req_1",
        b"x-gatepass-denied": b"budget_exhausted",
        b"x-should-retry": b"false",
    }
    error = json.loads(body)
    assert error["type"] == "error" and error["error"]["type"] == "billing_error"
    assert error["error"]["message"] == "no money left"


def test_rate_limits_may_be_retried_after_retry_after() -> None:
    status, headers, body = refusal_response(
        Denial(429, "rate_limited", "slow down", retry_after=2.2), "req_2", get_provider("openai")
    )
    values = dict(headers)
    assert status == 429 and values[b"retry-after"] == b"3" and b"x-should-retry" not in values
    assert json.loads(body)["error"]["code"] == "rate_limited"


def test_without_a_provider_the_body_is_generic_json() -> None:
    _, headers, body = refusal_response(Denial(404, "unknown_upstream", "no such upstream"), "req_3", None)
    assert json.loads(body) == {
        "error": {"type": "unknown_upstream", "code": "unknown_upstream", "message": "no such upstream"}
    }
    assert (b"x-should-retry", b"false") in headers
