"""What crosses the gateway: the credential goes in only here, hop-by-hop headers go nowhere."""

from gatepass.dataplane.forward import downstream_headers, is_event_stream, upstream_headers
from gatepass.dataplane.state import Credential


def test_the_credential_replaces_whatever_the_agent_sent_under_its_name() -> None:
    agent_headers = [
        (b"x-api-key", b"gp_agentkey"),
        (b"authorization", b"Bearer gp_agentkey"),
        (b"content-type", b"application/json"),
        (b"anthropic-version", b"2023-06-01"),
        (b"connection", b"keep-alive, x-custom"),
        (b"x-custom", b"hop"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-authorization", b"Basic Zm9v"),
        (b"te", b"trailers"),
        (b"host", b"gateway"),
        (b"content-length", b"12"),
        (b"accept-encoding", b"gzip"),
        (b"cookie", b"a=b"),
        (b"x-gatepass-denied", b"spoofed"),
    ]
    out = upstream_headers(agent_headers, Credential(b"x-api-key", b"real-upstream-secret"))
    names = [n for n, _ in out]
    assert out.count((b"x-api-key", b"real-upstream-secret")) == 1 and names.count(b"x-api-key") == 1
    assert (b"content-type", b"application/json") in out and (b"anthropic-version", b"2023-06-01") in out
    for dropped in (
        b"authorization",
        b"connection",
        b"x-custom",
        b"keep-alive",
        b"proxy-authorization",
        b"te",
        b"host",
        b"content-length",
        b"cookie",
        b"x-gatepass-denied",
    ):
        assert dropped not in names, dropped
    assert (b"accept-encoding", b"identity") in out  # bodies the gateway can meter


def test_bearer_credential_and_no_credential() -> None:
    headers = [(b"authorization", b"Bearer gp_agentkey")]
    assert upstream_headers(headers, Credential(b"authorization", b"Bearer real")) == [
        (b"accept-encoding", b"identity"),
        (b"authorization", b"Bearer real"),
    ]
    assert upstream_headers(headers, None) == [(b"accept-encoding", b"identity")]


def test_downstream_headers_drop_framing_and_add_the_request_id() -> None:
    upstream = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"transfer-encoding", b"chunked"),
        (b"content-length", b"5"),
        (b"connection", b"close"),
        (b"set-cookie", b"x=y"),
        (b"request-id", b"req_up"),
    ]
    out = downstream_headers(upstream, b"req_gw")
    assert out == [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"request-id", b"req_up"),
        (b"x-gatepass-request-id", b"req_gw"),
    ]
    assert is_event_stream(upstream) and not is_event_stream([(b"content-type", b"application/json")])
