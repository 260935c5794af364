"""Alerts as values, their builders, the fan-out and the in-memory fake."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from gatepass.alerts import (
    Action,
    Alert,
    FanoutNotifier,
    Firing,
    MemoryNotifier,
    Notifier,
    NotifyError,
    SmtpNotifier,
    Threshold,
    Trip,
    WebhookNotifier,
    loop_alert,
    threshold_alert,
)
from gatepass.sensitive import Secret
from gatepass.units import Period
from tests.conftest import fake_secret

from .conftest import Receiver, SmtpServer, closed_port

AT = datetime(2024, 5, 14, 10, 22, 3, tzinfo=UTC)
MAY = datetime(2024, 5, 1, tzinfo=UTC)
STOP50 = Threshold.of(50_000_000, Period.MONTH, Action.STOP)
PEOPLE = {"agent": "acme-research-dev", "owner": "me@example.com", "agent_email": "me+acme-research-dev@example.com"}


def thr(firing: Firing, *, agent: str = "acme-research-dev", **kwargs: object) -> Alert:
    """threshold_alert for the usual agent and owner."""
    return threshold_alert(
        firing,
        agent=agent,
        owner="me@example.com",
        agent_email=f"me+{agent}@example.com",
        **kwargs,  # type: ignore[arg-type]
    )


def alert(**overrides: object) -> Alert:
    fields: dict[str, object] = {"kind": "loop", "action": "refuse", "summary": "looping", **PEOPLE, **overrides}
    return Alert(**fields)  # type: ignore[arg-type]


def test_threshold_alert_wording_and_details() -> None:
    a = thr(Firing(STOP50, MAY, 50_120_000), budget_micros=80_000_000, at=AT)
    assert (a.kind, a.action, a.at) == ("threshold", "stop", AT)
    assert a.summary == "acme-research-dev reached $50.00 this month: stopped"
    assert dict(a.details) == {
        "threshold": "50/month:stop",
        "period": "month",
        "period_start": "2024-05-01T00:00:00+00:00",
        "amount_micros": 50_000_000,
        "spent_micros": 50_120_000,
        "budget_micros": 80_000_000,
    }


@pytest.mark.parametrize(
    ("threshold", "summary"),
    [
        (Threshold.of(10_000_000, Period.DAY, Action.WARN), "acme-research-dev reached $10.00 today: warning"),
        (Threshold.of(5_500_000, Period.WEEK, Action.STOP), "acme-research-dev reached $5.50 this week: stopped"),
        (Threshold.of(10**8, Period.TOTAL, Action.REVOKE), "acme-research-dev reached $100.00 in total: keys revoked"),
    ],
)
def test_threshold_alert_summaries(threshold: Threshold, summary: str) -> None:
    assert thr(Firing(threshold, MAY, 10**9)).summary == summary


def test_threshold_alert_id_is_stable_per_agent_threshold_and_period() -> None:
    one = thr(Firing(STOP50, MAY, 50_000_000))
    assert thr(Firing(STOP50, MAY, 60_000_000)).id == one.id  # a retry dedupes
    assert thr(Firing(STOP50, datetime(2024, 6, 1, tzinfo=UTC), 1)).id != one.id
    assert thr(Firing(STOP50, MAY, 1), agent="acme-other-dev").id != one.id


def test_loop_alert() -> None:
    trip = Trip("agent-id", "ab" * 16, repeats=21, seconds=12.34, retry_after=60.0, first=True)
    people = {"agent": "acme-research-dev", "owner": "me@example.com", "agent_email": "x@example.com"}
    a = loop_alert(trip, at=AT, **people)
    assert (a.kind, a.action) == ("loop", "refuse")
    assert a.summary == "acme-research-dev sent the same request 21 times in 12s: repeats refused"
    assert dict(a.details) == {"body_digest": "ab" * 16, "repeats": 21, "seconds": 12.34, "retry_after_seconds": 60.0}
    assert a.id.startswith("alr_") and a.id != loop_alert(trip, at=AT, **people).id


def test_alert_is_frozen_and_copies_its_details() -> None:
    details: dict[str, str | int | float | None] = {"x": 1}
    a = alert(details=details)
    details["x"] = 2
    assert a.details["x"] == 1
    with pytest.raises(TypeError):
        a.details["x"] = 3  # type: ignore[index]
    with pytest.raises(AttributeError):
        a.summary = "other"  # type: ignore[misc]
    assert json.loads(json.dumps(a.as_dict()))["details"] == {"x": 1}


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"summary": "two\nlines"}, ValueError),
        ({"agent": "a\rb"}, ValueError),
        ({"kind": "Threshold!"}, ValueError),
        ({"action": ""}, ValueError),
        ({"id": "has space"}, ValueError),
        ({"at": datetime(2024, 5, 1)}, ValueError),
        ({"details": {"key": Secret("s3cr3t-value")}}, TypeError),
        ({"details": {"key": [1, 2]}}, TypeError),
    ],
)
def test_alert_refuses_bad_fields(overrides: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error) as info:
        alert(**overrides)
    assert "s3cr3t-value" not in str(info.value)


class Broken(Notifier):
    """A channel with a bug: its exception text must not reach the summary."""

    async def send(self, alert: Alert) -> None:
        raise RuntimeError(f"token={fake_secret()}")


async def test_fanout_delivers_on_the_others_and_names_the_failures() -> None:
    good, bad = MemoryNotifier("good"), MemoryNotifier("bad")
    bad.fail_with = NotifyError("bad: mailbox on fire")
    a = alert()
    with pytest.raises(NotifyError) as info:
        await FanoutNotifier([bad, Broken(), good]).send(a)
    assert good.alerts == [a]
    assert info.value.message == f"alert {a.id}: 2 of 3 channels failed: bad: mailbox on fire; Broken: RuntimeError"
    assert "token=" not in info.value.message


async def test_fanout_with_real_channels_one_down(
    smtp_server: SmtpServer, receiver: Receiver, signing_secret: Secret
) -> None:
    down = WebhookNotifier(f"http://127.0.0.1:{closed_port()}/hook", signing_secret, attempts=2, backoff=0.01)
    up = WebhookNotifier(receiver.url, signing_secret)
    mail = SmtpNotifier(smtp_server.host, smtp_server.port, "gatepass@example.com")
    a = thr(Firing(STOP50, MAY, 50_000_000))
    with pytest.raises(NotifyError, match=r"1 of 3 channels failed: webhook http://127.0.0.1:\d+: alert"):
        await FanoutNotifier([down, mail, up]).send(a)
    assert len(smtp_server.mailbox.messages) == 1
    assert [d.headers["x-gatepass-delivery"] for d in receiver.deliveries] == [a.id]
    assert (
        FanoutNotifier([mail, up]).name
        == f"fanout(email 127.0.0.1:{smtp_server.port}, webhook http://127.0.0.1:{receiver.url.split(':')[2].split('/')[0]})"
    )


async def test_fanout_all_good_and_empty() -> None:
    one, two = MemoryNotifier(), MemoryNotifier()
    await FanoutNotifier([one, two]).send(alert())
    assert len(one.alerts) == len(two.alerts) == 1
    await FanoutNotifier([]).send(alert())


async def test_fanout_does_not_turn_cancellation_into_a_failure() -> None:
    class Hangs(Notifier):
        async def send(self, alert: Alert) -> None:
            await asyncio.sleep(60)

    task = asyncio.create_task(FanoutNotifier([Hangs(), MemoryNotifier()]).send(alert()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_memory_notifier_waits_for_background_alerts() -> None:
    memory = MemoryNotifier()

    async def later() -> None:
        await asyncio.sleep(0.02)
        await memory.send(alert())

    task = asyncio.create_task(later())
    assert len(await memory.wait_for(1, timeout=2)) == 1
    await task
    with pytest.raises(TimeoutError, match=r"1 alert\(s\) after 0.05s, expected 2"):
        await memory.wait_for(2, timeout=0.05)
    assert repr(memory) == "MemoryNotifier('memory', alerts=1)"
