"""Egress allowlists: the hosts an agent may reach through the proxy. Deny by default.

An agent has at most one rule per host; allowing a host again adds ports to its rule, never
removes any (remove the host and allow it again to narrow it). A rule without ports opens 80 and 443.
"""

from __future__ import annotations

from collections.abc import Sequence

from gatepass.control.agents import get_agent
from gatepass.control.app import Session
from gatepass.errors import InvalidInputError, NotFoundError
from gatepass.keyformat import new_id
from gatepass.model import EgressRule
from gatepass.netguard import DEFAULT_PORTS, parse_pattern
from gatepass.store import Transaction

__all__ = ["allow_egress", "list_egress", "merge_ports", "parse_rule", "remove_egress"]

_EXAMPLE = "write HOST[:PORT[,PORT]], e.g. api.example.com, *.example.com:443 or [2001:db8::1]:8443"


def parse_rule(text: str) -> tuple[str, tuple[int, ...]]:
    """``HOST[:PORT[,PORT]]`` -> (canonical host, sorted ports); an IPv6 host with ports goes in brackets."""
    text = text.strip()
    if "/" in text or "@" in text:
        raise InvalidInputError(f"{text[:100]!r} is not a host: give only the host (no scheme or path); {_EXAMPLE}")
    ports_text: str | None = None
    if text.startswith("["):
        end = text.find("]")
        host, rest = text[: end + 1], text[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise InvalidInputError(f"{text[:100]!r} is not a host with ports: {_EXAMPLE}")
        ports_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, ports_text = text.partition(":")
    else:
        host = text  # a bare IPv6 address has several colons and no ports
    try:
        pattern = parse_pattern(host)
    except ValueError as exc:
        raise InvalidInputError(f"{exc}; {_EXAMPLE}") from None
    ports: set[int] = set()
    for part in ports_text.split(",") if ports_text is not None else ():
        part = part.strip()
        if not part.isdigit() or not part.isascii() or not 1 <= int(part) <= 65535:
            raise InvalidInputError(f"{text[:100]!r}: the port {part[:20]!r} is not a number from 1 to 65535")
        ports.add(int(part))
    return pattern.text, tuple(sorted(ports))


def merge_ports(have: tuple[int, ...], more: tuple[int, ...]) -> tuple[int, ...]:
    """The ports of two rules for one host together (empty stands for 80 and 443)."""
    union = set(have or DEFAULT_PORTS) | set(more or DEFAULT_PORTS)
    return () if union == set(DEFAULT_PORTS) else tuple(sorted(union))


def allow_egress(session: Session, agent_name: str, specs: Sequence[str]) -> list[tuple[EgressRule, bool]]:
    """Let an agent reach hosts; each result says whether its rule was created or changed."""
    agent = get_agent(session.tx, agent_name)
    wanted = [parse_rule(spec) for spec in specs]  # all checked before any is written
    if not wanted:
        raise InvalidInputError(f"name at least one host: {_EXAMPLE}")
    rules = {rule.host: rule for rule in session.tx.list_egress_rules(agent.id)}
    out: list[tuple[EgressRule, bool]] = []
    for host, ports in wanted:
        have = rules.get(host)
        if have is not None:
            ports = merge_ports(have.ports, ports)
            if ports == have.ports:
                out.append((have, False))
                continue
            session.tx.delete_egress_rule(have.id)
        rule = rules[host] = EgressRule(new_id("eg_", 8), agent.id, host, ports, session.now)
        session.tx.add_egress_rule(rule)
        session.record("egress.allow", agent.name, {"rule": rule.id, "host": host, "ports": list(ports)})
        out.append((rule, True))
    return out


def remove_egress(session: Session, agent_name: str, host: str) -> EgressRule:
    """Take a host (with all its ports) off an agent's allowlist."""
    agent = get_agent(session.tx, agent_name)
    canonical, ports = parse_rule(host)
    if ports:
        raise InvalidInputError(f"give the host alone ({canonical}): its rule goes with all its ports")
    for rule in session.tx.list_egress_rules(agent.id):
        if rule.host == canonical:
            session.tx.delete_egress_rule(rule.id)
            session.record("egress.remove", agent.name, {"rule": rule.id, "host": rule.host})
            return rule
    raise NotFoundError(f"{agent.name} has no egress rule for {canonical}: see gatepass egress list {agent.name}")


def list_egress(tx: Transaction, agent_name: str | None = None) -> list[tuple[str, EgressRule]]:
    """(agent name, rule) for one agent, or for every agent, by agent then host."""
    if agent_name is not None:
        agent = get_agent(tx, agent_name)
        return [(agent.name, rule) for rule in sorted(tx.list_egress_rules(agent.id), key=lambda r: r.host)]
    names = {agent.id: agent.name for agent in tx.list_agents()}
    found = [(names.get(rule.agent_id, rule.agent_id), rule) for rule in tx.list_egress_rules()]
    return sorted(found, key=lambda item: (item[0], item[1].host))
