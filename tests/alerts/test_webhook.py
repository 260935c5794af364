"""Webhooks against a real aiohttp receiver on loopback: signature, headers, retries, timeouts, secrecy."""

from __future__ import annotations

import json
import time
import traceback
from datetime import UTC, datetime

import pytest

from gatepass.alerts import (
    Alert,
    NotifyError,
    WebhookNotifier,
    encode_alert,
    sign,
    verify_signature,
)
from gatepass.errors import InvalidInputError
from gatepass.sensitive import Secret
from tests.conftest import fake_secret

from .conftest import Receiver, closed_port

ALERT = Alert(
    kind="threshold",
    agent="acme-research-dev",
    owner="owner@example.com",
    agent_email="owner+acme-research-dev@example.com",
    action="stop",
    summary="acme-research-dev reached $50.00 this month: stopped",
    details={"threshold": "50/month:stop", "spent_micros": 50_120_000, "budget_micros": None},
    at=datetime(2024, 5, 14, 10, 22, 3, tzinfo=UTC),
    id="thr_0123456789abcdef",
)


def notifier(url: str, secret: Secret, **kwargs: float) -> WebhookNotifier:
    options: dict[str, float] = {"backoff": 0.01, **kwargs}
    return WebhookNotifier(url, secret, **options)  # type: ignore[arg-type]


def _everything_said(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc)


async def test_delivers_signed_json_with_the_headers(receiver: Receiver, signing_secret: Secret) -> None:
    await notifier(receiver.url, signing_secret).send(ALERT)
    (delivery,) = receiver.deliveries
    assert delivery.signature_ok
    headers = {k.lower(): v for k, v in delivery.headers.items()}
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == "gatepass"
    assert headers["x-gatepass-event"] == "alert.threshold"
    assert headers["x-gatepass-delivery"] == "thr_0123456789abcdef"
    assert json.loads(delivery.body) == {"event": "alert.threshold", **ALERT.as_dict()}
    assert json.loads(delivery.body)["details"] == {
        "threshold": "50/month:stop",
        "spent_micros": 50_120_000,
        "budget_micros": None,
    }
    assert delivery.body == encode_alert(ALERT)


async def test_retries_5xx_then_succeeds_with_the_same_delivery_id(receiver: Receiver, signing_secret: Secret) -> None:
    receiver.statuses = [500, 503]
    await notifier(receiver.url, signing_secret, attempts=3).send(ALERT)
    assert len(receiver.deliveries) == 3
    assert {d.headers["x-gatepass-delivery"] for d in receiver.deliveries} == {ALERT.id}
    assert all(d.signature_ok for d in receiver.deliveries)


async def test_gives_up_after_the_attempts(receiver: Receiver, signing_secret: Secret) -> None:
    receiver.statuses = [500] * 5
    with pytest.raises(NotifyError, match=r"not delivered after 3 attempt\(s\): answered 500") as info:
        await notifier(receiver.url, signing_secret, attempts=3).send(ALERT)
    assert len(receiver.deliveries) == 3
    assert "\n" not in info.value.message


async def test_429_is_retried(receiver: Receiver, signing_secret: Secret) -> None:
    receiver.statuses = [429]
    await notifier(receiver.url, signing_secret).send(ALERT)
    assert len(receiver.deliveries) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
async def test_other_answers_are_final(receiver: Receiver, signing_secret: Secret, status: int) -> None:
    receiver.statuses = [status]
    with pytest.raises(NotifyError, match=f"refused with status {status} \\(not retried\\)"):
        await notifier(receiver.url, signing_secret, attempts=3).send(ALERT)
    assert len(receiver.deliveries) == 1  # and a redirect is not followed


async def test_a_slow_receiver_times_out_within_the_bound(receiver: Receiver, signing_secret: Secret) -> None:
    receiver.delay = 0.8
    started = time.monotonic()
    with pytest.raises(NotifyError, match=r"after 2 attempt\(s\): no answer within 0.2s"):
        await notifier(receiver.url, signing_secret, timeout=0.2, attempts=2).send(ALERT)
    assert time.monotonic() - started < 0.8 * 2  # bounded by the timeouts, not by the receiver
    assert len(receiver.deliveries) == 2


async def test_an_unreachable_receiver_is_a_notify_error(signing_secret: Secret) -> None:
    url = f"http://127.0.0.1:{closed_port()}/hooks/x"
    with pytest.raises(NotifyError, match=r"after 2 attempt\(s\): connection failed") as info:
        await notifier(url, signing_secret, attempts=2).send(ALERT)
    assert info.value.message.startswith(f"webhook http://127.0.0.1:{url.split(':')[2].split('/')[0]}: ")


async def test_the_secret_and_the_url_token_never_show(receiver: Receiver, signing_secret: Secret) -> None:
    hook = notifier(receiver.url, signing_secret, attempts=1)
    token = receiver.url.rsplit("/", 1)[1]
    secret = signing_secret.reveal()
    await hook.send(ALERT)
    receiver.statuses = [403]
    with pytest.raises(NotifyError) as info:
        await hook.send(ALERT)
    said = [repr(hook), str(hook.name), _everything_said(info.value)]
    for delivery in receiver.deliveries:
        said += [repr(delivery.headers), delivery.body.decode()]
    for text in said:
        assert secret not in text
        assert token not in text


def test_verify_signature_accepts_the_real_thing_only(signing_secret: Secret) -> None:
    body = encode_alert(ALERT)
    now = 1_700_000_000
    header = sign(signing_secret, body, timestamp=now)
    assert verify_signature(signing_secret, header, body, now=now)
    assert verify_signature(signing_secret, header, body, now=now + 299)
    assert not verify_signature(Secret(fake_secret("whsec_")), header, body, now=now), "wrong secret"
    assert not verify_signature(signing_secret, header, body.replace(b"stop", b"warn"), now=now), "tampered body"
    assert not verify_signature(signing_secret, header, body, now=now + 301), "old timestamp: a replay"
    assert not verify_signature(signing_secret, header, body, now=now - 301), "timestamp from the future"
    t, v1 = header.split(",")
    assert not verify_signature(signing_secret, f"t={now + 1},{v1}", body, now=now), "timestamp moved"
    other = sign(Secret(fake_secret("whsec_")), body, timestamp=now).split(",")[1]
    assert verify_signature(signing_secret, f"{t},{other},{v1}", body, now=now), "one of several v1 matches"


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        "t=1700000000",
        "v1=abcd",
        "t=abc,v1=abcd",
        "t=1700000000,t=1700000000,v1=ab",
        "t=-5,v1=ab",
        "t=٣,v1=a",
    ],
)
def test_verify_signature_rejects_malformed_headers(signing_secret: Secret, header: str) -> None:
    assert not verify_signature(signing_secret, header, b"{}", now=1_700_000_000)


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body(signing_secret: Secret) -> None:
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(signing_secret.reveal().encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(signing_secret, body, timestamp=1_700_000_000) == f"t=1700000000,v1={expected}"


@pytest.mark.parametrize(
    ("url", "secret", "says"),
    [
        ("ftp://example.com/x", "s" * 32, "invalid webhook URL"),
        ("https:///nohost", "s" * 32, "invalid webhook URL"),
        ("example.com/hook", "s" * 32, "invalid webhook URL"),
        ("https://example.com/hook", "short", "signing secret"),
    ],
)
def test_invalid_settings(url: str, secret: str, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says) as info:
        WebhookNotifier(url, Secret(secret))
    assert secret not in info.value.message or secret == "s" * 32


def test_repr_hides_the_path_and_the_secret(signing_secret: Secret) -> None:
    hook = WebhookNotifier("https://user:pw@hooks.example.com:8443/services/T0/B0/XYZ?token=abc", signing_secret)
    assert (
        repr(hook) == "WebhookNotifier('https://hooks.example.com:8443', signing_secret=Secret('[secure]'), attempts=3)"
    )
    assert hook.name == "webhook https://hooks.example.com:8443"
