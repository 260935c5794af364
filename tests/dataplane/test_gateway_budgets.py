"""Strict budgets: reserve the worst case, settle to the real cost, never pass the budget."""

from __future__ import annotations

import asyncio
import http.client as http_client
import json
import socket
import time

import anthropic
import pytest

from gatepass.metering.prices import PriceTable
from tests.dataplane.harness import Setup, http

HAIKU = "claude-haiku-4-5-20251001"
MSG = [{"role": "user", "content": "hi"}]


def _worst(max_tokens: int, body: bytes) -> int:
    price = PriceTable.load().lookup("anthropic", HAIKU)
    assert price is not None
    return price.worst_case_micros(len(body), max_tokens)


def test_200_concurrent_requests_never_pass_a_budget_that_fits_about_20(setup: Setup) -> None:
    # Distinct prompts of one length (identical ones would trip the loop breaker), so one worst case;
    # a cache write of 1,024 tokens per reply brings each real cost close to that worst case.
    setup.fake.cache_write_tokens = 1024
    prompts = [f"question {i:03d}" for i in range(200)]
    body = json.dumps({"model": HAIKU, "max_tokens": 8, "messages": [{"role": "user", "content": prompts[0]}]})
    worst = _worst(8, body.encode())
    budget = worst * 20 + worst // 2  # about 20 worst cases
    dollars = f"{budget / 1_000_000:.6f}"
    assert setup.gp("agent", "update", "acme-research-dev", "--budget", f"{dollars}/day").code == 0

    async def main() -> list[int]:
        client = anthropic.AsyncAnthropic(base_url=setup.url + "/anthropic", api_key=setup.key, max_retries=0)

        async def one(prompt: str) -> int:
            try:
                await client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": prompt}])
                return 200
            except anthropic.APIStatusError as exc:
                assert exc.response.headers["x-gatepass-denied"] == "budget_exhausted"
                assert exc.response.headers["x-should-retry"] == "false"
                return exc.status_code

        try:
            return await asyncio.gather(*(one(p) for p in prompts))
        finally:
            await client.close()

    statuses = asyncio.run(main())
    allowed = statuses.count(200)
    assert set(statuses) <= {200, 402} and statuses.count(402) == 200 - allowed
    records = setup.audit()
    spent = sum(r["meta"]["cost_micros"] for r in records)
    assert spent <= budget
    day = next(p for p in setup.spend()["agents"][0]["periods"] if p["period"] == "day")
    assert day["spent_micros"] == spent and day["reserved_micros"] == 0
    assert 20 <= allowed < 40  # the 20 worst cases that fit at once, and a few more as costs settled
    # No false refusals: now that nothing is in flight, requests go through while their worst case fits.
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key, max_retries=0)
    for i in range(50):
        if budget - spent < worst:
            break
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": f"more {i:04d}"}])
        spent = sum(r["meta"]["cost_micros"] for r in setup.audit())
    else:
        raise AssertionError("the budget never ran out")
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "last one"}])
    assert info.value.status_code == 402 and spent <= budget


def test_budget_refusal_names_the_budget_and_what_is_left(setup: Setup) -> None:
    assert setup.gp("agent", "update", "acme-research-dev", "--budget", "0.000001/day").code == 0
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key)
    try:
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
        raise AssertionError("not refused")
    except anthropic.APIStatusError as exc:
        assert exc.status_code == 402
        assert "$0.000001/day budget has $0.000001 left" in str(exc)
    assert [r["reason"] for r in setup.audit()] == ["budget_exhausted"]  # not retried


def test_key_budget_applies_on_top_of_the_agents(setup: Setup) -> None:
    capped = setup.issue("--budget", "0.000001/day")
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=capped)
    try:
        client.messages.create(model=HAIKU, max_tokens=8, messages=MSG)
        raise AssertionError("not refused")
    except anthropic.APIStatusError as exc:
        assert exc.status_code == 402 and "key's" in str(exc)
    anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key).messages.create(
        model=HAIKU, max_tokens=8, messages=MSG
    )


def test_a_client_that_disconnects_mid_stream_is_still_charged(setup: Setup) -> None:
    setup.fake.set_slow_stream(tokens=30, interval=0.02)
    body = json.dumps({"model": HAIKU, "max_tokens": 64, "stream": True, "messages": MSG}).encode()
    host, port = setup.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /anthropic/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"x-api-key: " + setup.key.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )
        first = sock.recv(4096)
        assert b"200" in first.split(b"\r\n", 1)[0]
    deadline = time.monotonic() + 10
    while not setup.audit() and time.monotonic() < deadline:
        time.sleep(0.05)
    (record,) = setup.audit()
    meta = record["meta"]
    assert meta["client_disconnected"] is True
    assert meta["output_tokens"] == 30 and meta["cost_micros"] > 0
    stream = setup.fake.last_stream
    assert stream is not None and stream.finished  # the gateway read the upstream to its end


def test_upstream_failures_release_or_charge_and_the_gateway_keeps_serving(setup: Setup) -> None:
    body = json.dumps({"model": HAIKU, "max_tokens": 64, "messages": MSG}).encode()
    headers = {"x-api-key": setup.key, "content-type": "application/json"}
    url = setup.url + "/anthropic/v1/messages"
    setup.fake.fail_next(status=529)
    overloaded = http("POST", url, headers=headers, body=body)
    assert overloaded.status == 529 and overloaded.json()["error"]["type"] == "overloaded_error"  # unchanged
    setup.fake.set_reset()
    reset = http("POST", url, headers=headers, body=body)
    assert reset.status == 502 and reset.headers["x-gatepass-denied"] == "upstream_unavailable"
    setup.fake.reset_behaviour()
    stream_body = json.dumps({"model": HAIKU, "max_tokens": 64, "stream": True, "messages": MSG}).encode()
    setup.fake.set_cut_after(3)
    with pytest.raises(http_client.IncompleteRead):  # the client sees the stream cut, as the upstream cut it
        http("POST", url, headers=headers, body=stream_body)
    setup.fake.reset_behaviour()
    fine = http("POST", url, headers=headers, body=body)
    assert fine.status == 200
    records = setup.audit()
    costs = [(r["meta"]["status"], r["meta"]["cost_micros"], r["meta"].get("usage_complete", True)) for r in records]
    assert costs[0] == (529, 0, True)  # the provider refused: nothing charged
    assert costs[1][1] == _worst(64, body)  # sent, then reset: the worst case is charged
    assert costs[2][2] is False and costs[2][1] == _worst(64, stream_body)  # half-sent stream
    assert costs[3][1] > 0 and costs[3][1] < _worst(64, body)
    day = next(p for p in setup.spend()["agents"][0]["periods"] if p["period"] == "day")
    assert day["reserved_micros"] == 0 and day["spent_micros"] == sum(c[1] for c in costs)
