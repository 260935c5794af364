"""Fixtures of the alert tests: a real webhook receiver and a real SMTP server, both on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from gatepass.alerts import verify_signature
from gatepass.sensitive import Secret
from tests.conftest import fake_secret


@pytest.fixture
def signing_secret() -> Secret:
    return Secret(fake_secret("whsec_"))


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    signature_ok: bool


@dataclass
class Receiver:
    """A webhook receiver: answers with ``statuses`` in turn (then 200) and records each delivery."""

    secret: Secret
    url: str = ""
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("x-gatepass-signature", "")
        self.deliveries.append(Delivery(dict(request.headers), body, verify_signature(self.secret, header, body)))
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"location": "http://127.0.0.1:9/elsewhere"} if 300 <= status < 400 else {}
        return web.Response(status=status, text="ok" if status < 300 else "no", headers=headers)


@pytest.fixture
async def receiver(signing_secret: Secret) -> AsyncIterator[Receiver]:
    recv = Receiver(signing_secret)
    app = web.Application()
    app.router.add_post("/hooks/{token}", recv.handle)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recv.url = f"http://127.0.0.1:{port}/hooks/{fake_secret('tok')}"
    yield recv
    await runner.cleanup()


def closed_port() -> int:
    """A loopback port with nothing listening on it (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class Mailbox:
    """What the SMTP server received; ``refuse_rcpt`` makes it answer 550 to every recipient."""

    messages: list[Envelope] = field(default_factory=list)
    refuse_rcpt: bool = False

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """aiosmtpd's Controller on port 0: it learns the real port before its readiness check."""

    def _trigger_server(self) -> None:
        server = self.server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class SmtpServer:
    mailbox: Mailbox
    host: str
    port: int


def _start(**kwargs: Any) -> tuple[_Controller, SmtpServer]:
    mailbox = Mailbox()
    controller = _Controller(mailbox, hostname="127.0.0.1", port=0, ready_timeout=5, **kwargs)
    controller.start()
    return controller, SmtpServer(mailbox, "127.0.0.1", controller.port)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    controller, server = _start()
    yield server
    controller.stop()


@pytest.fixture
def smtp_server_with_auth() -> Iterator[SmtpServer]:
    """A server that offers AUTH on plain text (loopback only) and refuses every login."""
    from aiosmtpd.smtp import AuthResult

    def refuse(*_: object) -> AuthResult:
        return AuthResult(success=False, handled=False)

    controller, server = _start(authenticator=refuse, auth_require_tls=False)
    yield server
    controller.stop()
