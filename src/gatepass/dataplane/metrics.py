"""Prometheus metrics of the gateway (served on the control plane at /metrics).

The request path only adds to plain integers and floats (a dict update and a bisect); the
Prometheus objects are built from them when ``/metrics`` is scraped, by a custom collector. The
prometheus_client metric classes take a lock and loop over buckets in Python on every
observation, which costs more than the rest of a request's bookkeeping. Labels stay
low-cardinality (upstream, decision, reason): per-agent figures are in the audit log and in
``gatepass spend``.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gatepass.dataplane.exchange import Exchange

__all__ = ["Metrics"]

_TOKEN_KINDS = ("input", "output", "cache_write", "cache_read")
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics(Collector):
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, list[float]] = {}  # upstream -> bucket counts (+Inf last), then the sum
        self.cost_micros: dict[str, int] = {}
        self.token_counts: dict[str, list[int]] = {}  # upstream -> counts of each of _TOKEN_KINDS
        self.in_flight = 0
        self.egress: dict[tuple[str, str], int] = {}  # (decision, reason) -> egress proxy decisions
        self.egress_bytes = [0, 0]  # up (agent to host), down
        self.egress_open = 0  # tunnels and forwarded requests open now
        self.registry = CollectorRegistry()
        self.registry.register(self)

    @property
    def tokens(self) -> dict[tuple[str, str], int]:
        """Tokens by (upstream, kind), kinds that have counted none left out."""
        return {
            (upstream, kind): count
            for upstream, counts in self.token_counts.items()
            for kind, count in zip(_TOKEN_KINDS, counts, strict=True)
            if count
        }

    def observe(self, ex: Exchange) -> None:
        denial = ex.denial
        upstream = ex.upstream_name if ex.entry is not None else "-"
        if denial is not None and not ex.responded:
            key = (upstream, "deny", denial.code)
        else:
            key = (upstream, "allow", str(ex.decision.reason) if ex.decision else "allowed")
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        seconds = time.perf_counter() - ex.started
        counts = self.latency.get(upstream)
        if counts is None:
            counts = self.latency[upstream] = [0.0] * (len(_BUCKETS) + 2)
        counts[bisect.bisect_left(_BUCKETS, seconds)] += 1
        counts[-1] += seconds
        if ex.cost:
            self.cost_micros[upstream] = self.cost_micros.get(upstream, 0) + ex.cost
        usage = ex.usage
        if usage is not None:
            tokens = self.token_counts.get(upstream)
            if tokens is None:
                tokens = self.token_counts[upstream] = [0, 0, 0, 0]
            tokens[0] += usage.input_tokens
            tokens[1] += usage.output_tokens
            tokens[2] += usage.cache_write_tokens
            tokens[3] += usage.cache_read_tokens

    def observe_egress(self, decision: str, reason: str) -> None:
        key = (decision, reason)
        self.egress[key] = self.egress.get(key, 0) + 1

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "gatepass_requests", "Requests by upstream, decision and reason.", labels=["upstream", "decision", "reason"]
        )
        for (upstream, decision, reason), value in sorted(self.requests.items()):
            requests.add_metric([upstream, decision, reason], value)
        yield requests
        latency = HistogramMetricFamily(
            "gatepass_request_seconds", "Time from request to audit record, by upstream.", labels=["upstream"]
        )
        for upstream, counts in sorted(self.latency.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip((*_BUCKETS, float("inf")), counts[:-1], strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else str(bound), cumulative))
            latency.add_metric([upstream], buckets, counts[-1])
        yield latency
        cost = CounterMetricFamily("gatepass_cost_usd", "Settled cost in USD, by upstream.", labels=["upstream"])
        for upstream, micros in sorted(self.cost_micros.items()):
            cost.add_metric([upstream], micros / 1_000_000)
        yield cost
        tokens = CounterMetricFamily(
            "gatepass_tokens", "Tokens reported by providers, by upstream and kind.", labels=["upstream", "kind"]
        )
        for (upstream, kind), tokens_seen in sorted(self.tokens.items()):
            tokens.add_metric([upstream, kind], tokens_seen)
        yield tokens
        yield GaugeMetricFamily("gatepass_requests_in_flight", "Requests being handled.", value=self.in_flight)
        egress = CounterMetricFamily(
            "gatepass_egress_decisions", "Egress proxy decisions by decision and reason.", labels=["decision", "reason"]
        )
        for (decision, reason), value in sorted(self.egress.items()):
            egress.add_metric([decision, reason], value)
        yield egress
        moved = CounterMetricFamily(
            "gatepass_egress_bytes", "Bytes through the egress proxy, by direction.", labels=["direction"]
        )
        moved.add_metric(["up"], self.egress_bytes[0])
        moved.add_metric(["down"], self.egress_bytes[1])
        yield moved
        yield GaugeMetricFamily(
            "gatepass_egress_open", "Egress tunnels and forwarded requests open now.", value=self.egress_open
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
