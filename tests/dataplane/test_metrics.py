from datetime import UTC, datetime
from types import SimpleNamespace

from gatepass.dataplane.exchange import Denial
from gatepass.dataplane.metrics import Metrics
from gatepass.providers import Usage


def _ex(**kw: object) -> SimpleNamespace:
    base = dict(
        denial=None,
        responded=True,
        upstream_name="anthropic",
        entry=object(),
        decision=None,
        started=0.0,
        cost=0,
        usage=None,
        now=datetime.now(UTC),
    )
    base.update(kw)
    return SimpleNamespace(**base)


def test_exposition() -> None:
    metrics = Metrics()
    metrics.observe(_ex(cost=2_500_000, usage=Usage(10, 5)))  # type: ignore[arg-type]
    metrics.observe(_ex(denial=Denial(402, "budget_exhausted", "x"), responded=False))  # type: ignore[arg-type]
    text = metrics.render().decode()
    assert 'gatepass_requests_total{decision="allow",reason="allowed",upstream="anthropic"} 1.0' in text
    assert 'gatepass_requests_total{decision="deny",reason="budget_exhausted",upstream="anthropic"} 1.0' in text
    assert 'gatepass_cost_usd_total{upstream="anthropic"} 2.5' in text
    assert 'gatepass_tokens_total{kind="output",upstream="anthropic"} 5.0' in text
    assert 'gatepass_request_seconds_count{upstream="anthropic"} 2.0' in text
    assert 'gatepass_request_seconds_bucket{le="+Inf",upstream="anthropic"} 2.0' in text


def test_egress_exposition() -> None:
    metrics = Metrics()
    metrics.observe_egress("allow", "egress_allowed")
    metrics.observe_egress("deny", "address_not_allowed")
    metrics.observe_egress("deny", "address_not_allowed")
    metrics.egress_bytes[0] += 10
    metrics.egress_bytes[1] += 2048
    metrics.egress_open = 3
    text = metrics.render().decode()
    assert 'gatepass_egress_decisions_total{decision="deny",reason="address_not_allowed"} 2.0' in text
    assert 'gatepass_egress_decisions_total{decision="allow",reason="egress_allowed"} 1.0' in text
    assert 'gatepass_egress_bytes_total{direction="up"} 10.0' in text
    assert 'gatepass_egress_bytes_total{direction="down"} 2048.0' in text
    assert "gatepass_egress_open 3.0" in text
