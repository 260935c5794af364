"""Alerts by email: a plain-text message to the owner, Cc the agent's own address.

Sent with the standard library's :mod:`smtplib` in a worker thread (``asyncio.to_thread``), so
the event loop never blocks. The message is built with :class:`email.message.EmailMessage` and
every address is parsed as exactly one ``addr_spec``: a name or address cannot add a header or a
recipient, and the envelope recipients are exactly the owner and the agent.

A password is never sent in clear to another host: ``username`` needs ``starttls=True`` unless
the server is on loopback (a local relay). With ``starttls`` a server that does not offer STARTTLS
is an error, never a silent downgrade.
"""

from __future__ import annotations

import asyncio
import email.errors
import email.policy
import ipaddress
import smtplib
import socket
import ssl
from datetime import UTC
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Final

from gatepass.errors import InvalidInputError
from gatepass.sensitive import Secret
from gatepass.units import format_usd

from .notify import Alert, Notifier, NotifyError

__all__ = ["SmtpNotifier"]

_SUBJECT_PREFIX: Final = "[gatepass] "
# Headers unfolded up to RFC 5322's hard limit: the standard folder would put a subject starting
# with "[gatepass]" on a continuation line, which some readers show with a leading space.
_POLICY: Final = email.policy.default.clone(max_line_length=998)


def _address(text: str, what: str) -> Address:
    """Exactly one plain address (``name@example.com``), or InvalidInputError."""
    try:
        address = Address(addr_spec=text)
    except (ValueError, IndexError, email.errors.MessageError):
        address = None
    if address is None or not address.username or not address.domain:
        raise InvalidInputError(f"invalid {what} {text!r}: use one plain address such as owner@example.com")
    return address


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _advice(alert: Alert) -> list[str]:
    name = alert.agent
    match (alert.kind, alert.action):
        case ("threshold", "warn"):
            return ["Nothing was stopped. To stop the agent now:", f"  gatepass agent suspend {name}"]
        case ("threshold", "stop"):
            return [
                "The agent is suspended: gatepass refuses its requests until you resume it.",
                "To let it work again (raise its budget or threshold first if it should spend more):",
                f"  gatepass agent resume {name}",
            ]
        case ("threshold", "revoke"):
            return [
                "Every key of the agent was revoked and the agent is suspended.",
                "To bring it back, resume it and issue it a new key:",
                f"  gatepass agent resume {name}",
                f"  gatepass key issue {name}",
            ]
        case ("loop", _):
            return [
                "Repeats of that request are refused until they stop for a while; other requests go through.",
                f"If the agent is stuck, stop it:  gatepass agent suspend {name}",
                f"To cut it off at once:  gatepass revoke {name}",
            ]
        case _:
            return [f"See what happened:  gatepass audit tail  (agent {name})"]


def _render(key: str, value: object) -> tuple[str, str]:
    """A detail as a label and a value; ``*_micros`` amounts print as USD."""
    if key.endswith("_micros"):
        key = key.removesuffix("_micros")
        if isinstance(value, int) and not isinstance(value, bool):
            return key, format_usd(value)
    return key, "-" if value is None else str(value)


def _body(alert: Alert) -> str:
    lines = [
        alert.summary,
        "",
        f"Agent:   {alert.agent}",
        f"Event:   {alert.kind} ({alert.action})",
        f"When:    {alert.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
    ]
    if alert.details:
        lines += ["", "Details:"]
        lines += [f"  {label}: {value}" for label, value in (_render(k, v) for k, v in alert.details.items())]
    lines += ["", "What you can do:", *(f"  {line}" for line in _advice(alert))]
    lines += ["", f"Alert id: {alert.id}", "-- ", "Sent by gatepass to the agent's owner and the agent's address."]
    return "\n".join(lines) + "\n"


class SmtpNotifier(Notifier):
    """Emails each alert to its owner (Cc the agent's address) through an SMTP server."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: Secret | None = None,
        timeout: float = 10,
    ) -> None:
        if not host or any(c in host for c in " \r\n/") or not 0 < port < 65536:
            raise InvalidInputError(f"invalid SMTP server {host!r}:{port}: use a host name and a port such as 587")
        self._sender = _address(sender, "sender address")
        if (username is None) != (password is None):
            raise InvalidInputError("SMTP login needs both a username and a password; give both or neither")
        if username is not None and not starttls and not _is_loopback(host):
            raise InvalidInputError(f"refusing to send an SMTP password in clear to {host}: turn on starttls")
        if not timeout > 0:
            raise InvalidInputError("invalid SMTP timeout: use a number of seconds above 0, e.g. 10")
        self._host = host
        self._port = port
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = float(timeout)

    @property
    def name(self) -> str:
        return f"email {self._host}:{self._port}"

    def __repr__(self) -> str:
        return (
            f"SmtpNotifier({self._host!r}, {self._port}, {str(self._sender)!r}, starttls={self._starttls}, "
            f"username={self._username!r}, password={self._password!r})"
        )

    def message_for(self, alert: Alert) -> tuple[EmailMessage, list[str]]:
        """The message for ``alert`` and its envelope recipients (owner first, then the agent)."""
        to = [_address(alert.owner, "owner address")] if alert.owner else []
        cc = [_address(alert.agent_email, "agent address")] if alert.agent_email else []
        if not to:
            to, cc = cc, []
        if not to:
            raise NotifyError(f"{self.name}: alert {alert.id} has no recipient; set the agent's owner address")
        cc = [a for a in cc if a.addr_spec.lower() != to[0].addr_spec.lower()]
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._sender
        message["To"] = to
        if cc:
            message["Cc"] = cc
        message["Subject"] = _SUBJECT_PREFIX + alert.summary
        message["Date"] = format_datetime(alert.at.astimezone(UTC))
        message["Message-ID"] = make_msgid(domain=self._sender.domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
        message["X-Gatepass-Alert-Id"] = alert.id
        message.set_content(_body(alert))
        return message, [a.addr_spec for a in to + cc]

    async def send(self, alert: Alert) -> None:
        try:
            message, recipients = self.message_for(alert)
        except InvalidInputError as exc:
            raise NotifyError(f"{self.name}: alert {alert.id} not sent: {exc.message}") from None
        reason = await asyncio.to_thread(self._deliver, message, recipients)
        if reason is not None:
            raise NotifyError(f"{self.name}: alert {alert.id} not sent: {reason}")

    def _deliver(self, message: EmailMessage, recipients: list[str]) -> str | None:
        """Send in this (worker) thread; return why it failed, or None. Only safe texts come back."""
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as client:
                if self._starttls:
                    client.starttls(context=ssl.create_default_context())
                if self._username is not None and self._password is not None:
                    client.login(self._username, self._password.reveal())
                refused = client.send_message(message, from_addr=self._sender.addr_spec, to_addrs=recipients)
        except smtplib.SMTPNotSupportedError:
            return "the server does not offer STARTTLS (or login); check the port and the starttls setting"
        except smtplib.SMTPAuthenticationError as exc:
            return f"login refused ({exc.smtp_code}); check the SMTP username and password"
        except smtplib.SMTPRecipientsRefused:
            return "the server refused every recipient; check the owner's and the agent's addresses"
        except smtplib.SMTPSenderRefused as exc:
            return f"the server refused the sender address ({exc.smtp_code}); check the sender setting"
        except smtplib.SMTPResponseException as exc:
            return f"the server answered {exc.smtp_code}; check the SMTP server's log"
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib reports a read timeout so
                return f"no answer from {self._host}:{self._port} within {self._timeout:g}s"
            return "the server closed the connection; check the host, the port and the starttls setting"
        except smtplib.SMTPException as exc:
            return f"SMTP failed ({type(exc).__name__})"
        except ssl.SSLError as exc:
            return f"TLS failed ({exc.reason or type(exc).__name__}); check the server's certificate"
        except ConnectionRefusedError:
            return f"connection to {self._host}:{self._port} refused; check the SMTP host and port"
        except socket.gaierror:
            return f"host {self._host!r} not found; check the SMTP host"
        except TimeoutError:
            return f"no answer from {self._host}:{self._port} within {self._timeout:g}s"
        except OSError as exc:
            return f"network error talking to {self._host}:{self._port} ({type(exc).__name__})"
        if recipients[0] in refused:
            return "the server refused the owner's address; check it"
        return None
