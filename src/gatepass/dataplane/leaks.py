"""The leak guard as the gateway uses it: scan what goes out, redact vault secrets that come back.

One :class:`~gatepass.leakguard.LeakScanner` holds every vault secret and every agent's canaries;
it is rebuilt (on the next request) whenever the runtime state says they changed. A request is
scanned in its URL, its headers and the body about to be sent, before the credential is added.
Responses are scanned for vault secrets echoed back, which are redacted: a buffered body at once,
an event stream one complete event at a time (so nothing is held back but a partial event), and
any other stream with a hold-back of the longest literal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from gatepass.control.canaries import canary_literals
from gatepass.dataplane.state import RuntimeState
from gatepass.leakguard import Finding, LeakScanner, StreamRedactor
from gatepass.model import Agent, Canary, LiveKey
from gatepass.vault import Vault

__all__ = ["ENCODED_BODY", "Leak", "LeakGuard", "describe"]

log = logging.getLogger("gatepass.leaks")

Headers = list[tuple[bytes, bytes]]
_SECRET_KINDS: Final = frozenset({"secret"})
# An event stream's partial event is held until it is complete; past this size it is let through
# with the generic hold-back instead (a pathological stream must not grow memory without bound).
_MAX_PARTIAL_EVENT: Final = 1 << 20
#: What a request with a compressed body is told (the gateway and the egress proxy refuse it alike).
ENCODED_BODY: Final = "gatepass must read the body before it leaves: send it uncompressed"


@dataclass(frozen=True, slots=True)
class Leak:
    """A finding in a request, where it was (``url``, ``headers`` or ``body``), and its canary if any."""

    finding: Finding
    where: str
    canary: Canary | None = None

    def audit_label(self) -> str:
        return f"{self.finding.kind}:{self.finding.name}"


def describe(leak: Leak) -> str:
    """What the agent is told. A canary is described like any credential: the trap stays hidden."""
    finding = leak.finding
    if finding.kind == "secret":
        what = f"the gatepass vault secret {finding.name!r}"
    else:
        name = "a credential" if finding.kind == "canary" else f"a credential ({finding.name})"
        what = name
    encoded = "" if finding.encoding == "raw" else f", {finding.encoding}-encoded"
    return f"the request carries {what} in its {leak.where}{encoded}; gatepass blocked it: take it out"


class LeakGuard:
    def __init__(self, state: RuntimeState, vault: Vault) -> None:
        self._state = state
        self._vault = vault
        self._version = -1
        self._scanner = LeakScanner()
        self._canaries: dict[str, Canary] = {}

    def __repr__(self) -> str:
        return f"LeakGuard({self._scanner!r})"

    def current(self) -> LeakScanner:
        """The scanner, rebuilt first if the secrets or canaries changed (the gateway calls this after
        applying changes, so a request rarely pays for a rebuild)."""
        if self._version != self._state.leak_version:
            self._rebuild()
        return self._scanner

    def _rebuild(self) -> None:
        version = self._state.leak_version
        secrets = [(name, value.reveal().encode("utf-8")) for name, value in self._state.secret_values.items()]
        canaries: list[tuple[str, bytes]] = []
        by_id: dict[str, Canary] = {}
        for owned in self._state.canaries.values():
            for canary in owned:
                by_id[canary.id] = canary
                try:
                    literals = canary_literals(self._vault, canary)
                except Exception:
                    log.exception("canary %s cannot be opened; it is not looked for", canary.id)
                    continue
                canaries.extend((canary.id, literal.encode("utf-8")) for literal in literals)
        scanner = LeakScanner(secrets, canaries)
        for skipped in scanner.skipped:
            log.warning("the leak guard does not look for %s %s: %s", skipped.kind, skipped.name, skipped.reason)
        self._scanner, self._canaries, self._version = scanner, by_id, version

    # -- requests ---------------------------------------------------------------------------------
    def check(self, target: bytes, headers: Headers, body: bytes, own_key: bytes | None) -> Leak | None:
        """The first thing in the request that must not leave, or None.

        ``headers`` are those that will be forwarded (the gatepass key's own headers are not). URL,
        headers and body are scanned in one pass over one buffer: one call costs far less than three.
        """
        head = b"\n".join(name + b": " + value for name, value in headers)
        data = b"\n".join((target, head, body)) if body else target + b"\n" + head
        found = self.current().scan(data, allow_key=own_key, limit=1)
        if not found:
            return None
        finding = found[0]
        if finding.start < len(target):
            where = "url"
        elif finding.start <= len(target) + len(head):
            where = "headers"
        else:
            where = "body"
        return self._leak(finding, where)

    def redact(self, body: bytes, own_key: bytes | None) -> tuple[bytes, list[Leak]]:
        """The body with every finding replaced by ``[REDACTED:name]``, and what was replaced."""
        findings = self.current().scan(body, allow_key=own_key)
        return self._scanner.redact(body, findings), [self._leak(f, "body") for f in findings]

    def egress_scan(
        self, on_canary: Callable[[Agent, Canary, str], None] | None
    ) -> Callable[[Agent, LiveKey, bytes], tuple[str, str, str] | None]:
        """The egress proxy's hook: a plain-HTTP request that carries anything is blocked.

        There is no grant (and so no redact or report) on this path, and no key is exempt: an agent's
        own gatepass key has no business leaving for a third-party host either."""

        def scan(agent: Agent, key: LiveKey, data: bytes) -> tuple[str, str, str] | None:
            found = self.current().scan(data, limit=1)
            if not found:
                return None
            leak = self._leak(found[0], "request")
            if leak.canary is not None and on_canary is not None:
                on_canary(agent, leak.canary, "egress request")
            log.warning("egress request of %s blocked: it carries %s", agent.name, leak.audit_label())
            return "leak_blocked", describe(leak), leak.audit_label()

        return scan

    def _leak(self, finding: Finding, where: str) -> Leak:
        return Leak(finding, where, self._canaries.get(finding.name) if finding.kind == "canary" else None)

    # -- responses ----------------------------------------------------------------------------------
    def response_body(self, body: bytes) -> tuple[bytes, int]:
        """A buffered response with vault secrets redacted, and how many were."""
        return redact_secrets(self.current(), body)

    def response_stream(self, event_stream: bool) -> ResponseFilter:
        return ResponseFilter(self.current(), event_stream)


class ResponseFilter:
    """Redacts vault secrets in a streamed response; ``redacted`` counts what it replaced."""

    __slots__ = ("_buffer", "_generic", "_redacted", "_scanner")

    def __init__(self, scanner: LeakScanner, event_stream: bool) -> None:
        self._scanner = scanner
        self._buffer = b""
        self._generic: StreamRedactor | None = None if event_stream else StreamRedactor(scanner)
        self._redacted = 0  # by whole events (the generic redactor counts its own)

    @property
    def redacted(self) -> int:
        return self._redacted + (self._generic.redacted if self._generic is not None else 0)

    def feed(self, chunk: bytes) -> bytes:
        if self._generic is not None:
            return self._generic.feed(chunk)
        data = self._buffer + chunk
        end = max(data.rfind(b"\n\n"), data.rfind(b"\r\n\r\n"))
        if end < 0:
            if len(data) > _MAX_PARTIAL_EVENT:
                self._generic = StreamRedactor(self._scanner)
                self._buffer = b""
                return self._generic.feed(data)
            self._buffer = data
            return b""
        cut = end + (4 if data.startswith(b"\r\n\r\n", end) else 2)
        self._buffer = data[cut:]
        return self._clean(data[:cut])

    def flush(self) -> bytes:
        if self._generic is not None:
            return self._generic.flush()
        rest, self._buffer = self._buffer, b""
        return self._clean(rest) if rest else b""

    def _clean(self, data: bytes) -> bytes:
        data, count = redact_secrets(self._scanner, data)
        self._redacted += count
        return data


def redact_secrets(scanner: LeakScanner, data: bytes) -> tuple[bytes, int]:
    """``data`` with the vault secrets in it redacted, and how many there were."""
    found = scanner.scan(data, kinds=_SECRET_KINDS)
    return (scanner.redact(data, found), len(found)) if found else (data, 0)
