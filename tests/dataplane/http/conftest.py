"""Run these tests on uvloop, the loop the gateway runs on (asyncio's own loop where uvloop is absent)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from gatepass.dataplane.http import new_event_loop


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> Mapping[str, Callable[[], Any]]:
    return {"uvloop": new_event_loop}
