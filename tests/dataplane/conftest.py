from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.testing.fake_upstream import fake_upstream_in_thread
from tests.conftest import Gp
from tests.dataplane.harness import GatewayThread, Setup, prepare_home


@pytest.fixture
def setup(gp: Gp, home: Path) -> Iterator[Setup]:
    """A home with anthropic and openai on a fake upstream, an agent with a $50/month budget, a key,
    and the gateway running."""
    with fake_upstream_in_thread() as fake:
        values = prepare_home(gp, fake.url)
        fake.expect_key("anthropic", values["anthropic"])
        fake.expect_key("openai", values["openai"])
        s = Setup(gp=gp, home=home, fake=fake, secrets=values)
        s.key = s.issue("--ttl", "1h")
        s.gateway = GatewayThread()
        try:
            yield s
        finally:
            s.gateway.stop()
