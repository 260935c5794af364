"""Well-known credential formats, found fast: one Aho-Corasick pass for literal anchors, regexes only around them.

Every format has one or more literal anchors (``sk-ant-`` is found through ``sk-``, an AWS key id
through ``AKIA``/``ASIA``, a database URL through ``postgres://`` and the like). :func:`iter_formats`
finds the anchors in one pass of an automaton with a SIMD prefilter (leftmost-longest, which does not
report an anchor overlapping another; no two anchors overlap in a real credential) and runs a
format's regex only where one of its anchors is. A format whose value does not start at its anchor
(the AWS secret access key, a 40-character base64 run that is only a finding next to an AWS
context) searches a small window around it instead. Checks after the regex (a gatepass key's
checksum, a JWT header that decodes, a token that is not all one character class) keep look-alikes out.
"""

from __future__ import annotations

import base64
import binascii
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Final, NamedTuple

import ahocorasick_rs

from gatepass.keyformat import KEY_PATTERN, is_well_formed

__all__ = ["PATTERNS", "CredentialMatch", "CredentialPattern", "find_credentials", "iter_formats"]

Check = Callable[["re.Match[bytes]"], bool]


@dataclass(frozen=True, slots=True)
class CredentialPattern:
    """One format. ``regex`` matches at an anchor's start; with ``near`` > 0 it is searched for
    within ``near`` bytes either side of the anchor instead. ``check`` vets each regex match;
    ``extend`` returns where a match really ends (e.g. a private key's END line)."""

    name: str
    regex: re.Pattern[bytes]
    anchors: tuple[bytes, ...]
    check: Check | None = None
    near: int = 0
    extend: Callable[[bytes, re.Match[bytes]], int] | None = None

    def spans(self, data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
        """Matches of this format around the anchor found at ``data[start:end]``."""
        if not self.near:
            found = self.regex.match(data, start)
            if found and (self.check is None or self.check(found)):
                yield found.start(), self.extend(data, found) if self.extend else found.end()
            return
        for found in self.regex.finditer(data, max(0, start - self.near), end + self.near):
            # The window's edges look like the end of the data to the regex: match again on the whole.
            whole = self.regex.match(data, found.start())
            if whole and whole.end() == found.end() and (self.check is None or self.check(whole)):
                yield whole.span()


class CredentialMatch(NamedTuple):
    name: str
    start: int
    end: int


_UPPER, _LOWER, _DIGITS = (
    frozenset(group.encode()) for group in (string.ascii_uppercase, string.ascii_lowercase, string.digits)
)


def _classes(token: bytes) -> int:
    """How many of upper case, lower case and digits the token holds."""
    return sum(1 for group in (_UPPER, _LOWER, _DIGITS) if any(c in group for c in token))


def _random_looking(found: re.Match[bytes]) -> bool:
    # A generated token mixes character classes; a hyphenated word run such as sk-learn-... does not.
    return _classes(found.group()) >= 2


def _aws_secret(found: re.Match[bytes]) -> bool:
    token = found.group()
    return token.lower() != token and token.upper() != token  # both cases: not a hex digest, not a word


def _jwt(found: re.Match[bytes]) -> bool:
    header = found.group().split(b".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4))
    except (binascii.Error, ValueError):
        return False
    return b'"alg"' in decoded


def _gatepass_key(found: re.Match[bytes]) -> bool:
    return is_well_formed(found.group().decode("ascii"))


_PLACEHOLDER = re.compile(rb"\*+|x+|X+|\.\.\.|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\{\{.*\}\}|%\([^)]*\)s")


def _database_password(found: re.Match[bytes]) -> bool:
    # ${DB_PASSWORD}, <password>, ***, %(pw)s ... are placeholders in docs and templates, not passwords.
    return _PLACEHOLDER.fullmatch(found.group("password")) is None


def _key_block_end(data: bytes, found: re.Match[bytes]) -> int:
    """The end of the block's END line when it follows within 64 KiB, else of the BEGIN line."""
    footer = b"-----END " + found.group(1) + b"-----"
    at = data.find(footer, found.end(), found.end() + 65536 + len(footer))
    return found.end() if at < 0 else at + len(footer)


_DB_SCHEMES = (
    *(f"{s}://" for s in ("postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss")),
    *(f"{s}://" for s in ("amqp", "amqps")),
    *(f"{s}+" for s in ("postgres", "postgresql", "mysql", "mariadb")),  # SQLAlchemy's postgresql+psycopg://
)
# The AWS console's credentials.csv ("Secret access key") has the key id on the same row: AKIA finds it.
_AWS_CONTEXT = ("secret_access_key", "SECRET_ACCESS_KEY", "SecretAccessKey", "secretAccessKey", "secret-access-key")


PATTERNS: Final = (
    CredentialPattern(
        "anthropic-api-key", re.compile(rb"(?<![\w-])sk-ant-[A-Za-z0-9_-]{20,512}"), (b"sk-",), _random_looking
    ),
    CredentialPattern(
        "openai-api-key",
        re.compile(rb"(?<![\w-])sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,512}"),
        (b"sk-",),
        _random_looking,
    ),
    CredentialPattern(
        "github-token",
        re.compile(rb"(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{40,255})"),
        (b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"github_pat_"),
    ),
    CredentialPattern(
        "aws-access-key-id",
        re.compile(rb"(?<![A-Za-z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"),
        (b"AKIA", b"ASIA"),
    ),
    CredentialPattern(
        "aws-secret-access-key",
        # 40 base64 characters standing alone: not part of a longer token, a dotted one (a JWT) included.
        # ("=" may come before, as in KEY=value, but not after: that would be base64 padding.)
        re.compile(
            rb"(?<![A-Za-z0-9/+_-])(?<![A-Za-z0-9_-]\.)[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=_-])(?!\.[A-Za-z0-9_-])"
        ),
        (b"AKIA", b"ASIA", *(word.encode() for word in _AWS_CONTEXT)),
        _aws_secret,
        near=160,
    ),
    CredentialPattern("slack-token", re.compile(rb"(?<!\w)xox[abposre]-[A-Za-z0-9-]{10,255}"), (b"xox",)),
    CredentialPattern(
        "slack-webhook",
        re.compile(rb"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,255}"),
        (b"hooks.slack.com/",),
    ),
    CredentialPattern("stripe-key", re.compile(rb"(?<!\w)[rs]k_live_[A-Za-z0-9]{20,255}"), (b"sk_live_", b"rk_live_")),
    CredentialPattern(
        "private-key-block",
        re.compile(rb"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----"),
        (b"-----BEGIN ",),
        extend=_key_block_end,
    ),
    CredentialPattern(
        "database-url",
        re.compile(
            rb"(?i:(?<![A-Za-z0-9+.-])(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?)"
            rb"(?:\+[a-z0-9]+)?)://[^\s:/?#@\"'<>]{0,256}:(?P<password>[^\s/?#\"'<>]{1,256})@"
        ),
        tuple(scheme.encode() for scheme in _DB_SCHEMES),  # in lower case, as URL schemes are written
        _database_password,
    ),
    CredentialPattern(
        "jwt",
        re.compile(rb"(?<![\w-])eyJ[A-Za-z0-9_-]{4,4096}\.[A-Za-z0-9_-]{4,65536}\.[A-Za-z0-9_-]{16,4096}"),
        (b"eyJ",),
        _jwt,
    ),
    CredentialPattern("gatepass-key", re.compile(KEY_PATTERN.pattern.encode("ascii")), (b"gp_",), _gatepass_key),
)


@cache
def _anchors() -> tuple[ahocorasick_rs.BytesAhoCorasick, tuple[tuple[CredentialPattern, ...], ...]]:
    by_anchor: dict[bytes, list[CredentialPattern]] = {}
    for pattern in PATTERNS:
        for anchor in pattern.anchors:
            by_anchor.setdefault(anchor, []).append(pattern)
    automaton = ahocorasick_rs.BytesAhoCorasick(list(by_anchor), matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
    return automaton, tuple(tuple(p) for p in by_anchor.values())


def iter_formats(data: bytes) -> Iterator[CredentialMatch]:
    """Every credential-format match in ``data``, roughly in order of position (each span once)."""
    automaton, patterns = _anchors()
    seen: set[CredentialMatch] = set()
    for index, start, end in automaton.find_matches_as_indexes(data):
        for pattern in patterns[index]:
            for span in pattern.spans(data, start, end):
                match = CredentialMatch(pattern.name, *span)
                if match not in seen:
                    seen.add(match)
                    yield match


def find_credentials(text: str) -> list[tuple[int, str]]:
    """(line number, pattern name) of every credential-looking string in ``text``, sorted, each pair once."""
    data = text.encode("utf-8", "surrogatepass")
    return sorted({(data.count(b"\n", 0, m.start) + 1, m.name) for m in iter_formats(data)})
