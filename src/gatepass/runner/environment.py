"""The environment of an agent started by ``gatepass run``: an allowlist, never the owner's secrets.

The child gets only:

1. the allowlisted variables of the parent: :data:`BASE_NAMES`, every ``LC_*``, and the names the owner
   lists under ``[run] env`` in config.toml (passed through when the parent has them);
2. ``--env NAME`` (the parent's value) and ``--env NAME=VALUE`` from the command line;
3. the decoys that canaries plant (a name the owner passes explicitly wins over a decoy);
4. gatepass's own variables (:func:`gatepass_variables`): the key, the gateway's URLs and the proxy.

The names of step 4 are reserved (:data:`RESERVED_NAMES`, :func:`check_names`), with those that would
route around the gateway (``ALL_PROXY``, ``ANTHROPIC_AUTH_TOKEN``): the owner cannot pass a value of
their own under them, so a real ``ANTHROPIC_API_KEY`` can never ride along by mistake.

When an agent is granted two upstreams of one type, ``ANTHROPIC_*`` / ``OPENAI_*`` / ``GITHUB_*``
point at the one named like its type (e.g. ``anthropic``), else at the first by name; the others
are reached at ``$GATEPASS_URL/<upstream>``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlsplit

from gatepass.errors import InvalidInputError
from gatepass.model import Upstream, UpstreamType
from gatepass.sensitive import Secret

__all__ = [
    "BASE_NAMES",
    "RESERVED_NAMES",
    "Endpoint",
    "check_names",
    "child_environment",
    "gatepass_variables",
    "parse_env_options",
    "pick_upstreams",
]

#: Passed through from the parent when set (plus every ``LC_*``).
BASE_NAMES: Final = ("PATH", "HOME", "LANG", "TERM", "TZ", "USER", "LOGNAME", "SHELL")
_BASE_PREFIX: Final = "LC_"

_PROXY_NAMES: Final = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")
_NO_PROXY_NAMES: Final = ("NO_PROXY", "no_proxy")
_TYPE_NAMES: Final[Mapping[UpstreamType, tuple[str, ...]]] = {
    UpstreamType.ANTHROPIC: ("ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"),
    UpstreamType.OPENAI: ("OPENAI_BASE_URL", "OPENAI_API_KEY"),
    UpstreamType.GITHUB: ("GITHUB_API_URL", "GITHUB_TOKEN", "GH_TOKEN"),
}
#: Names gatepass run sets itself, or that would route around it (and every ``GATEPASS_*``): the owner
#: may not pass them.
RESERVED_NAMES: Final = frozenset(
    (
        "GATEPASS_KEY",
        "GATEPASS_URL",
        "ANTHROPIC_AUTH_TOKEN",
        "ALL_PROXY",
        "all_proxy",
        *_PROXY_NAMES,
        *_NO_PROXY_NAMES,
        *(n for v in _TYPE_NAMES.values() for n in v),
    )
)
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the child reaches the gateway's data plane (host as an address or name, and port)."""

    host: str
    port: int

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """The data plane of a running gateway (``http://HOST:PORT``); a wildcard listener is reached on loopback."""
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise InvalidInputError(f"gateway address {url!r} has no host or port: restart the gateway")
        host = parts.hostname
        if host == "0.0.0.0":  # noqa: S104 - reading a listener's address, not binding one
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return cls(host, parts.port)

    @property
    def netloc(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def loopback_address(self) -> str | None:
        """The host when it is a loopback IP address (a key can then be bound to it), else None."""
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return None
        return str(address) if address.is_loopback else None


def check_names(names: Iterable[str], *, where: str) -> None:
    """Refuse malformed names, and names gatepass run sets itself; ``where`` says where they came from."""
    for name in names:
        if not _NAME_RE.fullmatch(name):
            raise InvalidInputError(
                f"invalid environment variable name {name!r} in {where}: use letters, digits and underscores"
            )
        if name in RESERVED_NAMES or name.startswith("GATEPASS_"):
            raise InvalidInputError(
                f"{where} names {name}, which gatepass run sets itself for the agent: remove it there"
            )


def parse_env_options(items: Sequence[str], parent: Mapping[str, str]) -> dict[str, str]:
    """``--env NAME`` (the parent's value, skipped when unset) and ``--env NAME=VALUE``.

    Errors name the variable, never the value (it may be a secret).
    """
    extra: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        check_names([name], where="--env")
        if sep:
            extra[name] = value
        elif name in parent:
            extra[name] = parent[name]
    return extra


def pick_upstreams(upstreams: Iterable[Upstream]) -> dict[UpstreamType, Upstream]:
    """For each type, the upstream that the type's variables point at: the one named like the type,
    else the first by name."""
    chosen: dict[UpstreamType, Upstream] = {}
    for upstream in sorted(upstreams, key=lambda u: (u.name != u.type.value, u.name)):
        chosen.setdefault(upstream.type, upstream)
    return chosen


def _variable_name(upstream: str) -> str:
    return "GATEPASS_" + upstream.upper().replace("-", "_") + "_URL"


def gatepass_variables(*, key: Secret, agent: str, endpoint: Endpoint, upstreams: Sequence[Upstream]) -> dict[str, str]:
    """The key, the gateway's URLs for the granted upstreams, and the egress proxy."""
    value = key.reveal()
    base = endpoint.url
    result = {"GATEPASS_KEY": value, "GATEPASS_URL": base}
    for kind, upstream in pick_upstreams(upstreams).items():
        route = f"{base}/{upstream.name}"
        match kind:
            case UpstreamType.ANTHROPIC:
                result.update(ANTHROPIC_BASE_URL=route, ANTHROPIC_API_KEY=value)
            case UpstreamType.OPENAI:
                result.update(OPENAI_BASE_URL=route + "/v1", OPENAI_API_KEY=value)
            case UpstreamType.GITHUB:
                result.update(GITHUB_API_URL=route, GITHUB_TOKEN=value, GH_TOKEN=value)
            case UpstreamType.HTTP:
                pass  # every http upstream gets its own variable, below
    for upstream in upstreams:
        if upstream.type is UpstreamType.HTTP:
            result[_variable_name(upstream.name)] = f"{base}/{upstream.name}"
    proxy = f"http://{quote(agent, safe='')}:{quote(value, safe='')}@{endpoint.netloc}"
    result.update(dict.fromkeys(_PROXY_NAMES, proxy))
    result.update(dict.fromkeys(_NO_PROXY_NAMES, endpoint.host))
    return result


def child_environment(
    parent: Mapping[str, str],
    *,
    passthrough: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
    planted: Mapping[str, str] | None = None,
    gatepass: Mapping[str, str],
) -> dict[str, str]:
    """The whole environment of the child: allowlist, then decoys, then the owner's extras, then gatepass's."""
    allowed = set(BASE_NAMES) | set(passthrough)
    env = {name: value for name, value in parent.items() if name in allowed or name.startswith(_BASE_PREFIX)}
    env.update(planted or {})
    env.update(extra or {})
    env.update(gatepass)
    return env
