"""Email alerts against a real aiosmtpd server on loopback: recipients, subject, body, failures."""

from __future__ import annotations

import email
import email.policy
import socket
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from gatepass.alerts import Action, Alert, Firing, NotifyError, SmtpNotifier, Threshold, loop_alert, threshold_alert
from gatepass.alerts.breaker import Trip
from gatepass.errors import InvalidInputError
from gatepass.sensitive import Secret
from gatepass.units import Period
from tests.conftest import fake_secret

from .conftest import SmtpServer, closed_port

SENDER = "gatepass@example.com"
OWNER = "owner@example.com"
AGENT = "owner+acme-research-dev@example.com"
STOP50 = Threshold.of(50_000_000, Period.MONTH, Action.STOP)
FIRING = Firing(STOP50, datetime(2024, 5, 1, tzinfo=UTC), 50_120_000)
AT = datetime(2024, 5, 14, 10, 22, 3, tzinfo=UTC)


def stop_alert(**overrides: str) -> Alert:
    people = {"agent": "acme-research-dev", "owner": OWNER, "agent_email": AGENT, **overrides}
    return threshold_alert(FIRING, budget_micros=80_000_000, at=AT, **people)


def received(server: SmtpServer) -> EmailMessage:
    (envelope,) = server.mailbox.messages
    content = envelope.content
    assert isinstance(content, bytes)
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


async def test_emails_the_owner_and_ccs_the_agent(smtp_server: SmtpServer) -> None:
    await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert())
    (envelope,) = smtp_server.mailbox.messages
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == [OWNER, AGENT]
    message = received(smtp_server)
    assert message["Subject"] == "[gatepass] acme-research-dev reached $50.00 this month: stopped"
    assert (message["From"], message["To"], message["Cc"]) == (SENDER, OWNER, AGENT)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Gatepass-Alert-Id"].startswith("thr_")
    body = message.get_content()
    for line in [
        "acme-research-dev reached $50.00 this month: stopped",
        "Agent:   acme-research-dev",
        "When:    2024-05-14 10:22:03 UTC",
        "threshold: 50/month:stop",
        "spent: $50.12",
        "budget: $80.00",
        "The agent is suspended",
        "gatepass agent resume acme-research-dev",
    ]:
        assert line in body


@pytest.mark.parametrize(
    ("alert", "advice"),
    [
        (threshold_alert(Firing(Threshold.of(10_000_000, Period.DAY, Action.WARN), AT, 10_000_000), agent="a-b-dev",
                         owner=OWNER, agent_email=AGENT), "gatepass agent suspend a-b-dev"),
        (threshold_alert(Firing(Threshold.of(10_000_000, Period.TOTAL, Action.REVOKE), AT, 10_000_000),
                         agent="a-b-dev", owner=OWNER, agent_email=AGENT), "gatepass key issue a-b-dev"),
        (loop_alert(Trip("id-1", "ab" * 16, 21, 12.5, 60.0, True), agent="a-b-dev", owner=OWNER, agent_email=AGENT),
         "gatepass revoke a-b-dev"),
    ],
)  # fmt: skip
async def test_each_kind_says_what_the_owner_can_do(smtp_server: SmtpServer, alert: Alert, advice: str) -> None:
    await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(alert)
    message = received(smtp_server)
    assert message["Subject"] == "[gatepass] " + alert.summary
    assert advice in message.get_content()


async def test_no_cc_when_the_agent_shares_the_owners_address(smtp_server: SmtpServer) -> None:
    await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert(agent_email=OWNER.upper()))
    assert smtp_server.mailbox.messages[0].rcpt_tos == [OWNER]
    assert received(smtp_server)["Cc"] is None


async def test_without_an_owner_the_agent_address_gets_it(smtp_server: SmtpServer) -> None:
    await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert(owner=""))
    assert smtp_server.mailbox.messages[0].rcpt_tos == [AGENT]
    with pytest.raises(NotifyError, match="no recipient"):
        await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert(owner="", agent_email=""))


@pytest.mark.parametrize("address", ["owner@example.com, evil@example.net", "Evil <evil@example.net>", "nobody"])
async def test_an_address_cannot_add_recipients(smtp_server: SmtpServer, address: str) -> None:
    with pytest.raises(NotifyError, match="invalid agent address") as info:
        await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert(agent_email=address))
    assert "\n" not in info.value.message
    assert smtp_server.mailbox.messages == []


def test_a_header_cannot_be_injected_through_the_alert() -> None:
    with pytest.raises(ValueError, match="single line"):
        stop_alert(agent_email=f"{AGENT}\r\nBcc: evil@example.net")
    with pytest.raises(ValueError, match="single line"):
        Alert("loop", "a", OWNER, AGENT, "refuse", "looping\nBcc: evil@example.net")


async def test_refused_recipients_are_a_one_line_error(smtp_server: SmtpServer) -> None:
    smtp_server.mailbox.refuse_rcpt = True
    with pytest.raises(NotifyError, match="refused every recipient") as info:
        await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER).send(stop_alert())
    assert info.value.message.startswith(f"email 127.0.0.1:{smtp_server.port}: alert thr_")
    assert "\n" not in info.value.message


async def test_an_unreachable_server_is_a_one_line_error() -> None:
    port = closed_port()
    with pytest.raises(NotifyError, match=f"connection to 127.0.0.1:{port} refused") as info:
        await SmtpNotifier("127.0.0.1", port, SENDER, timeout=2).send(stop_alert())
    assert "\n" not in info.value.message


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) but never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock.getsockname()[1]


async def test_a_silent_server_times_out(silent_port: int) -> None:
    with pytest.raises(NotifyError, match=r"no answer from 127\.0\.0\.1:\d+ within 0\.3s"):
        await SmtpNotifier("127.0.0.1", silent_port, SENDER, timeout=0.3).send(stop_alert())


async def test_starttls_is_never_silently_skipped(smtp_server: SmtpServer) -> None:
    with pytest.raises(NotifyError, match="does not offer STARTTLS"):
        await SmtpNotifier(smtp_server.host, smtp_server.port, SENDER, starttls=True).send(stop_alert())
    assert smtp_server.mailbox.messages == []


async def test_a_refused_login_never_shows_the_password(smtp_server_with_auth: SmtpServer) -> None:
    password = fake_secret("pw-")
    server = smtp_server_with_auth
    notifier = SmtpNotifier(server.host, server.port, SENDER, username="gatepass", password=Secret(password))
    with pytest.raises(NotifyError, match=r"login refused \(535\)") as info:
        await notifier.send(stop_alert())
    said = "".join(traceback.format_exception(info.value)) + repr(info.value) + repr(notifier)
    assert password not in said
    assert "Secret('[secure]')" in repr(notifier)


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"host": "smtp.example.com", "username": "u", "password": Secret("p")}, "in clear to smtp.example.com"),
        ({"username": "u"}, "both a username and a password"),
        ({"sender": "not an address"}, "invalid sender address"),
        ({"port": 0}, "invalid SMTP server"),
        ({"host": "smtp.example.com\r\nX: y"}, "invalid SMTP server"),
        ({"timeout": 0}, "invalid SMTP timeout"),
    ],
)
def test_invalid_settings(kwargs: dict[str, object], says: str) -> None:
    options: dict[str, object] = {"host": "127.0.0.1", "port": 25, "sender": SENDER, **kwargs}
    with pytest.raises(InvalidInputError, match=says) as info:
        SmtpNotifier(**options)  # type: ignore[arg-type]
    assert "\n" not in info.value.message


def test_a_local_relay_may_take_a_login_without_tls() -> None:
    SmtpNotifier("localhost", 25, SENDER, username="u", password=Secret(fake_secret()))
    SmtpNotifier("smtp.example.com", 587, SENDER, starttls=True, username="u", password=Secret(fake_secret()))
