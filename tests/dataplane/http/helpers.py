"""Test helpers: a raw HTTP/1.1 client over a socket, and small scripted upstreams.

The raw client parses responses with its own few lines (not httptools), so the server under test
is checked by an independent reader. Every wait is bounded by ``WAIT``.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from gatepass.dataplane.http import HttpServer, IncomingRequest, ResponseWriter, start_server

WAIT = 5.0  # upper bound of any single wait in these tests


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


async def read_head(reader: asyncio.StreamReader) -> tuple[int, str, list[tuple[str, str]]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    lines = head.decode("latin-1").split("\r\n")
    _version, status, *reason = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
    return int(status), (reason[0] if reason else ""), headers


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT)
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT)  # no trailers expected
            return bytes(body)
        body += await asyncio.wait_for(reader.readexactly(size + 2), WAIT)
        del body[-2:]


async def read_response(reader: asyncio.StreamReader, *, head_request: bool = False) -> RawResponse:
    """Read one final response (1xx responses are skipped)."""
    while True:
        status, reason, headers = await read_head(reader)
        if status >= 200 or status == 101:
            break
    response = RawResponse(status, reason, headers, b"")
    length = response.header("content-length")
    if head_request or status in (204, 304):
        return response
    if response.header("transfer-encoding") == "chunked":
        response.body = await read_chunked(reader)
    elif length is not None:
        response.body = await asyncio.wait_for(reader.readexactly(int(length)), WAIT)
    else:
        response.body = await asyncio.wait_for(reader.read(), WAIT)
    return response


class RawClient:
    """One TCP connection that sends whatever bytes a test wants."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, **kwargs: Any) -> RawClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, **kwargs), WAIT)
        return cls(reader, writer)

    @property
    def local_port(self) -> int:
        return int(self.writer.get_extra_info("sockname")[1])

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self, *, head_request: bool = False) -> RawResponse:
        return await read_response(self.reader, head_request=head_request)

    async def closed_by_peer(self) -> bool:
        """True when the server closes the connection (EOF or reset) within WAIT, having sent nothing more."""
        try:
            data = await asyncio.wait_for(self.reader.read(1), WAIT)
        except (ConnectionResetError, BrokenPipeError):
            return True
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


Handler = Callable[[IncomingRequest, ResponseWriter], Awaitable[None]]


@asynccontextmanager
async def serving(handler: Handler, **kwargs: Any) -> AsyncIterator[HttpServer]:
    server = await start_server(handler, "127.0.0.1", 0, **kwargs)
    try:
        yield server
    finally:
        await server.close(grace=1.0)


async def echo(request: IncomingRequest, writer: ResponseWriter) -> None:
    """Answers with what it got: method, path, query and body."""
    writer.send(
        200,
        [(b"content-type", b"text/plain"), (b"x-method", request.method.encode()), (b"x-path", request.path.encode())],
        request.body,
    )


def request_bytes(method: str = "GET", path: str = "/", body: bytes = b"", headers: str = "") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body or method in ("POST", "PUT") else ""
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}{length}\r\n".encode() + body


# -- scripted upstreams ----------------------------------------------------------------------


@dataclass
class UpstreamRequest:
    head: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


async def read_upstream_request(reader: asyncio.StreamReader) -> UpstreamRequest | None:
    """One request as the pool sends it (Content-Length bodies only), or None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    headers = []
    for line in head.split(b"\r\n")[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers.append((name.strip().lower(), value.strip()))
    request = UpstreamRequest(head, headers, b"")
    length = request.header(b"content-length")
    if length:
        request.body = await reader.readexactly(int(length))
    return request


Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "ScriptedUpstream"], Awaitable[None]]


@dataclass
class ScriptedUpstream:
    """A local upstream whose every connection runs ``script``; counts connections and requests."""

    script: Script
    connections: int = 0
    requests: list[UpstreamRequest] = field(default_factory=list)
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def next_request(self, reader: asyncio.StreamReader) -> UpstreamRequest | None:
        request = await read_upstream_request(reader)
        if request is not None:
            self.requests.append(request)
        return request


@asynccontextmanager
async def scripted_upstream(script: Script) -> AsyncIterator[ScriptedUpstream]:
    upstream = ScriptedUpstream(script)
    upstream.server = await asyncio.start_server(upstream._serve, "127.0.0.1", 0)
    try:
        yield upstream
    finally:
        upstream.server.close()
        # Connections the script still holds are closed by the loop's teardown.


def ok_response(body: bytes = b"ok", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n" + extra + b"content-length: %d\r\n\r\n" % len(body) + body


async def keep_alive_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: ScriptedUpstream) -> None:
    """Answers every request on the connection with 200 and the request count as the body."""
    while (await up.next_request(reader)) is not None:
        writer.write(ok_response(str(len(up.requests)).encode()))
        await writer.drain()


# -- TLS -------------------------------------------------------------------------------------


def self_signed_cert(host: str = "127.0.0.1") -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) for ``host``, made at run time."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
