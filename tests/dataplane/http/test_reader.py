"""RequestReader driven without sockets: framing, limits, smuggling defences, upgrades."""

from __future__ import annotations

from collections import deque

import pytest

from gatepass.dataplane.http.messages import IncomingRequest, ServerLimits
from gatepass.dataplane.http.reader import BODY, HEAD, IDLE, Refusal, RequestReader, split_target

Out = deque[IncomingRequest | Refusal]


def reader(**limits: int) -> tuple[RequestReader, Out]:
    out: Out = deque()
    return RequestReader(ServerLimits(**limits), ("10.0.0.7", 4242), out), out


def only_request(out: Out) -> IncomingRequest:
    assert len(out) == 1
    item = out[0]
    assert isinstance(item, IncomingRequest), item
    return item


def only_refusal(out: Out) -> Refusal:
    assert len(out) >= 1
    item = out[-1]
    assert isinstance(item, Refusal), item
    return item


def test_a_request_with_every_field() -> None:
    r, out = reader()
    r.feed(
        b"POST /anthropic/v1/messages?beta=true HTTP/1.1\r\nHost: gw\r\nX-Api-Key: k1\r\n"
        b"Accept: a\r\naccept: b\r\nContent-Length: 5\r\n\r\nhello"
    )
    req = only_request(out)
    assert req.method == "POST"
    assert req.target == b"/anthropic/v1/messages?beta=true"
    assert req.path == "/anthropic/v1/messages"
    assert req.query == b"beta=true"
    assert req.headers == [
        (b"host", b"gw"),
        (b"x-api-key", b"k1"),
        (b"accept", b"a"),
        (b"accept", b"b"),
        (b"content-length", b"5"),
    ]
    assert req.header(b"accept") == b"a"
    assert req.header(b"missing") is None
    assert req.body == b"hello"
    assert (req.client_ip, req.client_port) == ("10.0.0.7", 4242)
    assert req.http_version == "1.1"
    assert req.keep_alive is True
    assert r.state == IDLE


def test_byte_by_byte_gives_the_same_request() -> None:
    data = b"POST /a%20b HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    r, out = reader()
    states = set()
    for i in range(len(data)):
        r.feed(data[i : i + 1])
        states.add(r.state)
    req = only_request(out)
    assert req.path == "/a%20b"  # not percent-decoded
    assert req.body == b"abcde"
    assert {HEAD, BODY, IDLE} <= states


def test_chunked_body_is_decoded_and_trailers_are_dropped() -> None:
    r, out = reader()
    r.feed(
        b"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    req = only_request(out)
    assert req.body == b"hello world"
    assert req.header(b"x-trailer") is None


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"/", "/", b""),
        (b"/p?q=1&r=%2F", "/p", b"q=1&r=%2F"),
        (b"/p#frag", "/p", b""),
        (b"http://example.com/x/y?z", "/x/y", b"z"),
        (b"http://example.com", "/", b""),
        (b"*", "*", b""),
    ],
)
def test_split_target(target: bytes, path: str, query: bytes) -> None:
    assert split_target(target) == (path, query)


@pytest.mark.parametrize(
    ("data", "version", "keep_alive"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", "1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "1.0", True),
        (b"GET / HTTP/1.1\r\n\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", "1.1", False),
    ],
)
def test_http_version_and_keep_alive(data: bytes, version: str, keep_alive: bool) -> None:
    r, out = reader()
    r.feed(data)
    req = only_request(out)
    assert (req.http_version, req.keep_alive) == (version, keep_alive)


def test_bytes_after_a_closing_request_are_refused() -> None:
    r, out = reader()
    r.feed(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
    assert isinstance(out[0], IncomingRequest)
    assert only_refusal(out).status == 400


SMUGGLING = [
    ("cl-then-te", b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
    ("te-then-cl", b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"),
    ("conflicting-cl", b"Content-Length: 3\r\nContent-Length: 4\r\n"),
    ("repeated-cl", b"Content-Length: 3\r\nContent-Length: 3\r\n"),
    ("cl-list", b"Content-Length: 3, 3\r\n"),
    ("cl-sign", b"Content-Length: +3\r\n"),
    ("te-gzip", b"Transfer-Encoding: gzip\r\n"),
    ("te-gzip-chunked", b"Transfer-Encoding: gzip, chunked\r\n"),
    ("te-twice", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
    ("space-before-colon", b"Content-Length : 3\r\n"),
    ("obs-fold", b"X-A: 1\r\n 2\r\n"),
    ("bare-lf", b"X-A: 1\nX-B: 2\r\n"),
]


@pytest.mark.parametrize(("case", "headers"), SMUGGLING, ids=[case for case, _ in SMUGGLING])
def test_smuggling_shapes_are_refused_with_400(case: str, headers: bytes) -> None:
    r, out = reader()
    r.feed(b"POST /x HTTP/1.1\r\nHost: gw\r\n" + headers + b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n")
    refusal = only_refusal(out)
    assert refusal.status == 400, case
    assert refusal.code == "bad_request"
    assert r.stopped
    assert not any(isinstance(x, IncomingRequest) for x in out)  # nothing of it reaches a handler


def test_a_refusal_comes_after_the_requests_already_read() -> None:
    r, out = reader()
    r.feed(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nBROKEN\r\n\r\nGET /3 HTTP/1.1\r\n\r\n")
    assert [x.path for x in out] == ["/1", "/2", ""]
    assert isinstance(out[2], Refusal) and out[2].status == 400
    r.feed(b"GET /4 HTTP/1.1\r\n\r\n")  # ignored once stopped
    assert len(out) == 3


def test_body_over_the_limit_is_refused_from_content_length_alone() -> None:
    r, out = reader(max_body_bytes=10)
    r.feed(b"POST /big HTTP/1.1\r\nContent-Length: 11\r\n\r\n")  # no body byte sent
    refusal = only_refusal(out)
    assert (refusal.status, refusal.code, refusal.path) == (413, "body_too_large", "/big")


def test_chunked_body_is_refused_as_soon_as_it_passes_the_limit() -> None:
    r, out = reader(max_body_bytes=10)
    r.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n")
    assert not out
    r.feed(b"8\r\n12345678\r\n")
    assert only_refusal(out).status == 413


def test_body_at_the_limit_is_accepted() -> None:
    r, out = reader(max_body_bytes=10)
    r.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789")
    assert only_request(out).body == b"0123456789"


def test_head_over_the_limit_in_one_piece_is_431() -> None:
    r, out = reader(max_header_bytes=1024)
    r.feed(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 1100 + b"\r\n\r\n")
    assert only_refusal(out).status == 431


def test_head_just_under_the_limit_is_accepted() -> None:
    r, out = reader(max_header_bytes=1024)
    r.feed(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 900 + b"\r\n\r\n")
    assert only_request(out).path == "/"


def test_an_endless_header_line_is_cut_off_while_it_arrives() -> None:
    r, out = reader(max_header_bytes=1024)
    r.feed(b"GET / HTTP/1.1\r\nX-Pad: ")
    for _ in range(100):
        r.feed(b"a" * 100)
        if out:
            break
    assert only_refusal(out).status == 431
    assert r.stopped


def test_a_long_url_is_431() -> None:
    r, out = reader(max_header_bytes=1024)
    r.feed(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n")
    assert only_refusal(out).status == 431


def test_endless_trailers_are_cut_off() -> None:
    r, out = reader(max_body_bytes=100, max_header_bytes=100)
    r.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ")
    for _ in range(100):
        r.feed(b"t" * 50)
        if out:
            break
    assert only_refusal(out).status == 413


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"GET / HTTP/2.0\r\n\r\n", 505, "http_version_not_supported"),
        (b"POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 1\r\n\r\n", 417, "expectation_failed"),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405, "method_not_allowed"),
        (b"GET /\x01 HTTP/1.1\r\n\r\n", 400, "bad_request"),
        (b"\r\n\r\nHELLO\r\n", 400, "bad_request"),
        (b"POST / HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\nhi", 400, "bad_request"),
    ],
)
def test_refusals(data: bytes, status: int, code: str) -> None:
    r, out = reader()
    r.feed(data)
    refusal = only_refusal(out)
    assert (refusal.status, refusal.code) == (status, code)


def test_a_refusal_of_a_head_request_knows_it() -> None:
    r, out = reader(max_body_bytes=1)
    r.feed(b"HEAD /h HTTP/1.1\r\nContent-Length: 5\r\n\r\n")
    assert only_refusal(out).head is True


def test_expect_100_continue_is_flagged_until_the_body_arrives() -> None:
    r, out = reader()
    r.feed(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert r.continue_wanted
    r.feed(b"hi")
    assert not r.continue_wanted
    assert only_request(out).body == b"hi"


def test_expect_100_continue_is_ignored_for_http_1_0_and_bodiless_requests() -> None:
    r, _ = reader()
    r.feed(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert not r.continue_wanted
    r2, out2 = reader()
    r2.feed(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n")
    assert not r2.continue_wanted and len(out2) == 1


def test_an_upgrade_without_body_is_served_as_plain_http_and_parsing_goes_on() -> None:
    r, out = reader()
    r.feed(
        b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /next HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        b"POST /last HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"
    )
    assert [(x.method, x.path) for x in out if isinstance(x, IncomingRequest)] == [
        ("GET", "/ws"),
        ("GET", "/next"),
        ("POST", "/last"),
    ]
    assert not r.stopped


def test_connect_is_refused_after_earlier_requests() -> None:
    r, out = reader()
    r.feed(b"GET /1 HTTP/1.1\r\n\r\nCONNECT a.example:443 HTTP/1.1\r\n\r\n\x16\x03\x01")
    assert isinstance(out[0], IncomingRequest)
    assert only_refusal(out).status == 405


def test_with_allow_connect_a_connect_is_handed_on_and_what_follows_is_kept_for_the_tunnel() -> None:
    out: Out = deque()
    r = RequestReader(ServerLimits(), ("10.0.0.7", 4242), out, allow_connect=True)
    r.feed(
        b"GET /1 HTTP/1.1\r\n\r\nCONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n\x16\x03\x01GET / HTTP"
    )
    assert [(x.method, x.target) for x in out if isinstance(x, IncomingRequest)] == [
        ("GET", b"/1"),
        ("CONNECT", b"a.example:443"),
    ]
    assert r.stopped and r.tunnel_data == bytearray(b"\x16\x03\x01GET / HTTP")
    r.feed(b"more")  # the connection keeps later bytes itself: the reader parses no more
    assert len(out) == 2 and r.tunnel_data == bytearray(b"\x16\x03\x01GET / HTTP")


def test_with_allow_connect_a_connect_with_a_body_is_refused() -> None:
    out: Out = deque()
    r = RequestReader(ServerLimits(), ("10.0.0.7", 4242), out, allow_connect=True)
    r.feed(b"CONNECT a.example:443 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
    refusal = only_refusal(out)
    assert (refusal.status, refusal.code, r.tunnel_data) == (400, "bad_request", None)
