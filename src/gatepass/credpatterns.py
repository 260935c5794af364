"""Well-known credential formats, for refusing them where they do not belong (policy files, for a start)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from gatepass.keyformat import KEY_PATTERN

__all__ = ["PATTERNS", "CredentialPattern", "find_credentials"]


@dataclass(frozen=True, slots=True)
class CredentialPattern:
    name: str
    regex: re.Pattern[str]


PATTERNS: Final = (
    CredentialPattern("anthropic-api-key", re.compile(r"\bsk-ant-[A-Za-z0-9_-]{20,}")),
    CredentialPattern("openai-api-key", re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}")),
    CredentialPattern("github-token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})")),
    CredentialPattern("aws-access-key-id", re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
    CredentialPattern("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}")),
    CredentialPattern("stripe-key", re.compile(r"\b[rs]k_live_[A-Za-z0-9]{20,}")),
    CredentialPattern("private-key-block", re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----")),
    CredentialPattern("gatepass-key", KEY_PATTERN),
)


def find_credentials(text: str) -> list[tuple[int, str]]:
    """(line number, pattern name) of every credential-looking string in ``text``."""
    found = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        for pattern in PATTERNS:
            if pattern.regex.search(line):
                found.append((lineno, pattern.name))
    return found
