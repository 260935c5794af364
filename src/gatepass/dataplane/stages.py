"""The admission stages of the pipeline, in order; each does one job and may deny.

    route -> authenticate -> parse -> authorize -> leak scan -> loop breaker -> rate-limit
      -> price and reserve

They are plain functions over the Exchange and the gateway's in-memory state: no I/O, no await,
so each check and the update that follows it happen atomically on the event loop. Forwarding,
settling and auditing follow in :mod:`gatepass.dataplane.gateway`.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import replace
from typing import Final
from urllib.parse import unquote

from gatepass.dataplane.exchange import Exchange
from gatepass.dataplane.forward import body_encoded, forwarded_headers
from gatepass.dataplane.leaks import ENCODED_BODY, describe
from gatepass.dataplane.parts import DigestFn, GatewayParts
from gatepass.dataplane.state import RuntimeState
from gatepass.metering.counters import BudgetDenied, Counters
from gatepass.metering.prices import PriceTable
from gatepass.metering.ratelimit import RateDenied, RateLimiter
from gatepass.policy.decision import Reason, Request, decide
from gatepass.providers import BadRequest
from gatepass.units import format_usd

__all__ = ["admit"]

_UNSAFE_PATH: Final = re.compile(rb"%2[fF]|%5[cC]|\\|%00")
_AUTH_STATUS: Final = {
    Reason.KEY_MALFORMED: 401,
    Reason.KEY_UNKNOWN: 401,
    Reason.KEY_REVOKED: 401,
    Reason.KEY_EXPIRED: 401,
    Reason.KEY_USED_UP: 401,
}


def _split_target(target: bytes) -> tuple[str, str, str, bytes]:
    """``/{upstream}/rest`` -> (refusal or "", upstream name, percent-decoded path, target to forward)."""
    raw_path, _, _ = target.partition(b"?")
    if not raw_path.startswith(b"/") or _UNSAFE_PATH.search(raw_path):
        return "the request path is malformed or ambiguous (encoded slashes or backslashes)", "", "", b""
    name, slash, rest = raw_path[1:].partition(b"/")
    path = "/" + unquote(rest.decode("latin-1")) if slash else "/"
    segments = path.split("/")[1:]
    if any(seg in (".", "..") for seg in segments) or "//" in path:
        return "the request path has '.', '..' or empty segments: send a plain path", "", "", b""
    forward = target[len(name) + 1 :] if slash else b"/" + target[len(name) + 1 :].lstrip(b"/")
    return "", name.decode("latin-1"), path, forward


#: Targets seen lately and how they split (most requests of a gateway go to a few paths).
_TARGETS: dict[bytes, tuple[str, str, str, bytes]] = {}
_TARGETS_MAX: Final = 1024
_TARGET_CACHED_LEN: Final = 256


def route(ex: Exchange, state: RuntimeState) -> None:
    """Find the upstream in ``/{upstream}/...`` and the provider's route for the rest."""
    target = ex.request.target
    split = _TARGETS.get(target)
    if split is None:
        split = _split_target(target)
        if len(target) <= _TARGET_CACHED_LEN:
            if len(_TARGETS) >= _TARGETS_MAX:
                _TARGETS.clear()
            _TARGETS[target] = split
    refusal, name, path, forward = split
    if refusal:
        ex.deny(400, "bad_path", refusal)
        return
    ex.upstream_name, ex.path, ex.target = name, path, forward
    entry = state.upstreams.get(ex.upstream_name)
    if entry is None:
        ex.deny(
            404,
            "unknown_upstream",
            f"no upstream named {ex.upstream_name!r} on this gateway: "
            "use a base URL such as http://HOST:PORT/anthropic",
        )
        return
    ex.entry = entry
    ex.route = entry.provider.route(ex.request.method, path)


def _presented_key(ex: Exchange) -> bytes | None:
    api_key = ex.request.header(b"x-api-key")
    bearer = ex.request.header(b"authorization")
    token = None
    if bearer is not None:
        scheme, _, value = bearer.partition(b" ")
        token = value.strip() if scheme.lower() == b"bearer" else None
    if api_key is not None and token is not None and not hmac.compare_digest(api_key.strip(), token):
        ex.deny(401, Reason.KEY_MALFORMED.value, "the request carries two different keys: send one gatepass key")
        return None
    found = api_key if api_key is not None else token
    return None if found is None else found.strip()


def authenticate(ex: Exchange, state: RuntimeState, digest: DigestFn) -> None:
    """Map the presented gatepass key to its record and agent (nothing about what it may do)."""
    presented = _presented_key(ex)
    if ex.denial is not None:
        return
    if presented is None:
        ex.deny(401, "key_missing", "no gatepass key: send it as x-api-key or Authorization: Bearer")
        return
    ex.presented = presented
    found = digest(presented.decode("latin-1"))
    if found is None:
        ex.deny(
            401,
            Reason.KEY_MALFORMED.value,
            "this is not a gatepass key (bad format or checksum): check that it was copied whole",
        )
        return
    record = state.keys.get(found)
    agent = None if record is None else state.agents.get(record.agent_id)
    if record is None or agent is None:
        ex.deny(401, Reason.KEY_UNKNOWN.value, "this gatepass key is not known here: ask for a new one")
        return
    ex.key, ex.agent, ex.key_digest = record, agent, found


def parse(ex: Exchange) -> None:
    """Read what policy and metering need from the body (model, max tokens, stream)."""
    assert ex.entry is not None and ex.route is not None
    if body_encoded(ex.request.headers):
        ex.deny(415, "encoded_body", ENCODED_BODY)
        return
    ex.body = ex.request.body
    if not (ex.route.metered or ex.route.model_in_body):
        return
    try:
        ex.llm = ex.entry.provider.parse(ex.route, ex.request.body)
        ex.body = ex.entry.provider.prepare(ex.route, ex.llm, ex.request.body)
    except BadRequest as exc:
        ex.deny(400, exc.code, exc.message)


def authorize(ex: Exchange, state: RuntimeState) -> None:
    assert ex.agent is not None and ex.key is not None and ex.route is not None
    request = Request(
        upstream=ex.upstream_name,
        method=ex.request.method,
        path=ex.path,
        now=ex.now,
        model=ex.llm.model if ex.llm else None,
        source_ip=ex.request.client_ip,
        known_route=ex.route.known,
    )
    decision = decide(ex.agent, ex.key, request, state.grants.get(ex.agent.id, ()))
    ex.decision = decision
    if not decision.allowed:
        ex.deny(_AUTH_STATUS.get(decision.reason, 403), decision.reason.value, decision.sentence)


def rate_limit(ex: Exchange, limiter: RateLimiter) -> None:
    assert ex.agent is not None and ex.key is not None
    scopes = []
    limits = ex.agent.limits
    if limits.rpm or limits.tpm or limits.concurrency:  # RateLimits.items() without making the list
        scopes.append((f"agent:{ex.agent.id}", limits))
    limits = ex.key.limits
    if limits.rpm or limits.tpm or limits.concurrency:
        scopes.append((f"key:{ex.key.id}", limits))
    if not scopes:
        return
    result = limiter.acquire(scopes)
    if isinstance(result, RateDenied):
        who = "agent" if result.scope.startswith("agent:") else "key"
        unit = {"rpm": "requests per minute", "tpm": "tokens per minute", "concurrency": "concurrent requests"}
        ex.deny(
            429,
            "rate_limited",
            f"the {who}'s limit of {result.limit} {unit[result.kind]} is reached: "
            f"retry after {result.retry_after:.1f} s",
            retry_after=result.retry_after,
        )
        return
    ex.permit = result


def price_and_reserve(ex: Exchange, prices: PriceTable, counters: Counters) -> None:
    """Look up the model's price (none: refuse) and reserve the request's worst-case cost."""
    assert ex.agent is not None and ex.key is not None and ex.entry is not None
    if ex.route is None or not ex.route.metered:
        return
    model = ex.llm.model if ex.llm else None
    if ex.llm is not None and ex.llm.remote_input:
        ex.deny(
            400,
            "unbounded_input",
            "this request makes the provider fetch content (files, URLs, earlier "
            "responses or server tools), so gatepass cannot bound its cost before "
            "sending it: send the content in the request instead",
        )
        return
    if ex.llm is not None and ex.llm.modifiers:
        ex.deny(
            400,
            "unpriced_option",
            f"the option {', '.join(ex.llm.modifiers)} changes the price and gatepass "
            "has no price for it: leave it out",
        )
        return
    price = prices.lookup(str(ex.entry.upstream.type), model) if model else None
    if price is None:
        ex.deny(
            403,
            "model_unpriced",
            f"gatepass has no price for model {model!r}, so it cannot keep the budget: "
            "add the model under [prices] in config.toml",
        )
        return
    max_output = ex.llm.max_output_tokens if ex.llm else None
    if max_output is not None and max_output > price.max_output_tokens:
        ex.deny(
            400,
            "max_tokens_too_large",
            f"max_tokens {max_output} is more than {model}'s maximum output "
            f"of {price.max_output_tokens} tokens: lower it",
        )
        return
    ex.price = price
    worst = price.worst_case_micros(ex.llm.input_bytes if ex.llm else len(ex.body), max_output)
    agent, key = ex.agent, ex.key
    result = counters.reserve(agent.id, agent.budgets, key.id, key.budgets, worst, ex.now)
    if isinstance(result, BudgetDenied):
        line = result.line
        left = max(0, result.limit - result.spent - result.reserved)
        ex.deny(
            402,
            "budget_exhausted",
            f"the {line.scope}'s {format_usd(result.limit)}/{line.period.value} budget "
            f"has {format_usd(left)} left and this request may cost up to "
            f"{format_usd(worst)}: lower max_tokens, wait for the next period, "
            "or raise the budget",
        )
        return
    ex.reservation = result


def loop_breaker(ex: Exchange, parts: GatewayParts) -> None:
    """Refuse an agent that keeps sending the same metered request (a runaway loop)."""
    breaker = parts.breaker
    if breaker is None or ex.agent is None or ex.route is None or not ex.route.metered:
        return
    trip = breaker.observe(ex.agent.id, ex.body)
    if trip is None:
        return
    ex.deny(
        429,
        "loop_detected",
        f"the same request was sent {trip.repeats} times in {trip.seconds:.0f} s: this "
        "looks like a runaway loop; change the request or wait",
        retry_after=trip.retry_after,
    )
    if parts.on_loop is not None:
        parts.on_loop(ex.agent, trip)


def leak_scan(ex: Exchange, parts: GatewayParts) -> None:
    """Nothing that must not leave does: vault secrets, canaries and credentials, in URL, headers or body.

    The grant's action applies (block, redact, report; redact only in the body, the rest is blocked);
    a canary is always blocked, and sets off its alarm.
    """
    assert ex.agent is not None and ex.entry is not None
    credential = ex.entry.credential
    ex.up_headers = forwarded_headers(ex.request.headers, credential.name if credential else None)
    guard = parts.leaks
    if guard is None:
        return
    own_key = ex.presented or None
    leak = guard.check(ex.target, ex.up_headers, ex.body, own_key)
    if leak is None:
        return
    ex.leak = leak.audit_label()
    action = _leak_action(ex, parts.state)
    if action == "redact" and leak.where == "body" and leak.canary is None:
        body, found = guard.redact(ex.body, own_key)
        leak = next((f for f in found if f.canary is not None), leak)
        if leak.canary is None:
            ex.leak_action = action
            ex.body = body
            if ex.llm is not None and len(body) > ex.llm.input_bytes:
                ex.llm = replace(ex.llm, input_bytes=len(body))  # the worst case stays a bound
            return
        ex.leak = leak.audit_label()
    if action == "report" and leak.canary is None:
        ex.leak_action = action
        return
    ex.leak_action = "block"
    ex.deny(403, "leak_blocked", describe(leak))
    if leak.canary is not None and parts.on_canary is not None:
        parts.on_canary(ex.agent, leak.canary, f"{ex.upstream_name} request {leak.where}")


def _leak_action(ex: Exchange, state: RuntimeState) -> str:
    """The matched grant's leak action; "report" when only the agent's report mode let the request in."""
    decision = ex.decision
    if decision is None or ex.agent is None:
        return "block"
    if decision.report_only:
        return "report"
    for grant in state.grants.get(ex.agent.id, ()):
        if grant.id == decision.grant_id:
            return grant.leaks
    return "block"


def admit(ex: Exchange, parts: GatewayParts) -> None:
    """Run the admission stages in order until one denies."""
    route(ex, parts.state)
    if ex.denial is None:
        authenticate(ex, parts.state, parts.digest)
    if ex.denial is None:
        parse(ex)
    if ex.denial is None:
        authorize(ex, parts.state)
    if ex.denial is None:
        leak_scan(ex, parts)
    if ex.denial is None:
        loop_breaker(ex, parts)
    if ex.denial is None:
        rate_limit(ex, parts.limiter)
    if ex.denial is None:
        price_and_reserve(ex, parts.prices, parts.counters)
