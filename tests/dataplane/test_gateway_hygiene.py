"""Invariant 5 through the gateway: no secret value in logs, audit records, metrics, refusals or files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anthropic
import pytest

from tests.dataplane.harness import Setup, http

HAIKU = "claude-haiku-4-5-20251001"


def test_no_secret_or_key_leaks_anywhere(setup: Setup, caplog: pytest.LogCaptureFixture, home: Path) -> None:
    caplog.set_level(logging.DEBUG)
    client = anthropic.Anthropic(base_url=setup.url + "/anthropic", api_key=setup.key, max_retries=0)
    client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    with client.messages.stream(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "yo"}]) as stream:
        stream.get_final_message()
    setup.fake.fail_next(status=500)
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "err"}])
    setup.fake.set_reset()
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(model=HAIKU, max_tokens=8, messages=[{"role": "user", "content": "reset"}])
    setup.fake.reset_behaviour()
    refusals = [
        http("POST", setup.url + "/anthropic/v1/messages", headers={"x-api-key": setup.key}, body=b"{bad"),
        http("GET", setup.url + "/anthropic/v1/models", headers={"x-api-key": setup.key + "x"}),
        http("GET", setup.url + "/openai/v1/models", headers={"authorization": "Bearer " + setup.key[:-1]}),
    ]
    token = (home / "admin.token").read_text().strip()
    gateway = setup.gateway
    assert gateway is not None
    metrics = http("GET", gateway.service.admin_url + "/metrics", headers={"authorization": f"Bearer {token}"})
    spend = http("GET", gateway.service.admin_url + "/v1/spend", headers={"authorization": f"Bearer {token}"})
    status = http("GET", gateway.service.admin_url + "/v1/status", headers={"authorization": f"Bearer {token}"})
    gateway.run(gateway.service.audit.flush())

    secrets = [setup.secrets["anthropic"], setup.secrets["openai"], setup.key]
    texts = {
        "logs": caplog.text,
        "metrics": metrics.body.decode(),
        "spend": spend.body.decode(),
        "status": status.body.decode(),
        "audit": json.dumps(setup.audit(n=100)),
    }
    for i, reply in enumerate(refusals):
        texts[f"refusal {i}"] = reply.body.decode() + json.dumps(reply.headers)
    for where, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a secret leaked into the {where}"
            assert secret[8:-8] not in text, f"part of a secret leaked into the {where}"
    for path in home.rglob("*"):
        if path.is_file() and path.name != "admin.token":
            data = path.read_bytes()
            for secret in secrets:
                assert secret.encode() not in data, f"a secret is in {path}"
