"""Prometheus metrics of the gateway (served on the control plane at /metrics).

Labels stay low-cardinality (upstream, decision, reason): per-agent figures are in the audit log
and in ``gatepass spend``, not in labels that would grow with every agent.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from gatepass.dataplane.exchange import Exchange

__all__ = ["Metrics"]

_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("gatepass_requests", "Requests by upstream, decision and reason.",
                                ["upstream", "decision", "reason"], registry=self.registry)
        self.latency = Histogram("gatepass_request_seconds", "Time from request to audit record, by upstream.",
                                 ["upstream"], buckets=_BUCKETS, registry=self.registry)
        self.cost = Counter("gatepass_cost_usd", "Settled cost in USD, by upstream.", ["upstream"],
                            registry=self.registry)
        self.tokens = Counter("gatepass_tokens", "Tokens reported by providers, by upstream and kind.",
                              ["upstream", "kind"], registry=self.registry)
        self.inflight = Gauge("gatepass_requests_in_flight", "Requests being handled.", registry=self.registry)

    def observe(self, ex: Exchange) -> None:
        refused = ex.denial is not None and not ex.responded
        upstream = ex.upstream_name if ex.entry is not None else "-"
        reason = ex.denial.code if refused and ex.denial else (ex.decision.reason.value if ex.decision else "allowed")
        self.requests.labels(upstream, "deny" if refused else "allow", reason).inc()
        self.latency.labels(upstream).observe(time.perf_counter() - ex.started)
        if ex.cost:
            self.cost.labels(upstream).inc(ex.cost / 1_000_000)
        usage = ex.usage
        if usage is not None:
            for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens),
                                ("cache_write", usage.cache_write_tokens), ("cache_read", usage.cache_read_tokens)):
                if count:
                    self.tokens.labels(upstream, kind).inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)
