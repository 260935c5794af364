from datetime import UTC, datetime

from gatepass.dataplane.exchange import Denial, Exchange
from gatepass.dataplane.http.messages import IncomingRequest
from gatepass.dataplane.metrics import Metrics
from gatepass.providers import Usage
from tests.factories import make_upstream_entry


def _ex(**kw: object) -> Exchange:
    request = IncomingRequest(
        "POST", b"/anthropic/v1/messages", "/anthropic/v1/messages", b"", [], b"{}", "127.0.0.1", 5000, "1.1", True
    )
    ex = Exchange(request, "req_t", 0.0, datetime.now(UTC))
    ex.upstream_name, ex.entry, ex.responded = "anthropic", make_upstream_entry(), True
    for name, value in kw.items():
        setattr(ex, name, value)
    return ex


def test_exposition() -> None:
    metrics = Metrics()
    metrics.observe(_ex(cost=2_500_000, usage=Usage(10, 5)))
    metrics.observe(_ex(denial=Denial(402, "budget_exhausted", "x"), responded=False))
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
