"""Validation of the names and addresses that users type: agents, upstreams, secrets, emails, CIDRs."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from gatepass.errors import InvalidInputError

__all__ = [
    "DEFAULT_ENVIRONMENTS",
    "AgentName",
    "IPNetwork",
    "parse_agent_name",
    "parse_cidr",
    "parse_email",
    "parse_resource_name",
]

DEFAULT_ENVIRONMENTS: Final = ("dev", "test", "staging", "prod")
_SEGMENT: Final = r"[a-z0-9]+"
_AGENT_RE: Final = re.compile(rf"{_SEGMENT}(?:-{_SEGMENT}){{2,}}")
_RESOURCE_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_EMAIL_LOCAL_RE: Final = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}")
_DOMAIN_LABEL_RE: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AgentName:
    """``{project}-{agent-type}-{environment}``; the agent type may itself hold hyphens."""

    project: str
    agent_type: str
    environment: str

    def __str__(self) -> str:
        return f"{self.project}-{self.agent_type}-{self.environment}"


def parse_agent_name(text: str, environments: Sequence[str] = DEFAULT_ENVIRONMENTS) -> AgentName:
    """Validate an agent name against ``{project}-{agent-type}-{environment}``."""
    envs = ", ".join(environments)
    example = f"acme-research-{environments[0] if environments else 'dev'}"
    rule = (
        f"use {{project}}-{{agent-type}}-{{environment}} in lowercase letters, digits and inner hyphens, "
        f"environment one of {envs} (e.g. {example})"
    )
    if len(text) > 63 or not _AGENT_RE.fullmatch(text):
        raise InvalidInputError(f"invalid agent name {text!r}: {rule}")
    project, _, rest = text.partition("-")
    agent_type, _, environment = rest.rpartition("-")
    if environment not in environments:
        raise InvalidInputError(
            f"invalid agent name {text!r}: environment {environment!r} is not one of {envs} (e.g. {example})"
        )
    return AgentName(project, agent_type, environment)


def parse_resource_name(text: str, *, what: str) -> str:
    """Upstream and secret names: lowercase letters, digits and inner hyphens, at most 63 characters."""
    if not _RESOURCE_RE.fullmatch(text):
        raise InvalidInputError(
            f"invalid {what} name {text!r}: use lowercase letters, digits and inner hyphens, "
            "at most 63 characters (e.g. anthropic-main)"
        )
    return text


def parse_email(text: str, *, what: str = "email address") -> str:
    """A plain ``local@domain.tld`` address; the domain is lowercased."""
    local, at, domain = text.strip().rpartition("@")
    domain = domain.lower().rstrip(".")
    labels = domain.split(".")
    valid = (
        bool(at)
        and _EMAIL_LOCAL_RE.fullmatch(local) is not None
        and not local.startswith(".")
        and not local.endswith(".")
        and ".." not in local
        and len(labels) >= 2
        and all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels)
        and len(domain) <= 253
    )
    if not valid:
        raise InvalidInputError(f"invalid {what} {text!r}: write it as name@example.com")
    return f"{local}@{domain}"


def parse_cidr(text: str) -> IPNetwork:
    """An address or network (``10.0.0.0/8``, ``192.168.1.7``, ``2001:db8::/32``)."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        if "has host bits set" in str(exc):
            suggestion = ipaddress.ip_network(text.strip(), strict=False)
            raise InvalidInputError(f"invalid CIDR {text!r}: host bits are set; did you mean {suggestion}?") from None
        raise InvalidInputError(
            f"invalid CIDR {text!r}: write an address or network such as 10.0.0.0/8, 192.168.1.7 or ::1"
        ) from None
