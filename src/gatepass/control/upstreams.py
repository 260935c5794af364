"""Upstreams: where ``/{name}/...`` goes, how its credential is sent, which vault secret it uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from gatepass.control.app import Session
from gatepass.errors import ConflictError, InvalidInputError, NotFoundError
from gatepass.model import AuthStyle, Upstream, UpstreamType
from gatepass.names import parse_resource_name
from gatepass.store import Transaction

__all__ = [
    "PRESETS",
    "Preset",
    "add_upstream",
    "build_upstream",
    "get_upstream",
    "parse_base_url",
    "parse_type",
    "remove_upstream",
    "update_upstream",
]


@dataclass(frozen=True, slots=True)
class Preset:
    base_url: str | None
    auth: AuthStyle


PRESETS: Final[dict[UpstreamType, Preset]] = {
    UpstreamType.ANTHROPIC: Preset("https://api.anthropic.com", AuthStyle("header", "x-api-key")),
    UpstreamType.OPENAI: Preset("https://api.openai.com", AuthStyle("bearer")),
    UpstreamType.GITHUB: Preset("https://api.github.com", AuthStyle("bearer")),
    UpstreamType.HTTP: Preset(None, AuthStyle("bearer")),
}


def parse_type(text: str) -> UpstreamType:
    try:
        return UpstreamType(text.strip().lower())
    except ValueError:
        raise InvalidInputError(
            f"invalid upstream type {text!r}: use one of {', '.join(t.value for t in UpstreamType)}"
        ) from None


def parse_base_url(text: str) -> str:
    """An http(s) URL with a host and no credentials, query or fragment; the trailing slash is dropped."""
    parts = urlsplit(text.strip())
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "write it as https://host[:port][/path]"
    elif parts.username is not None or parts.password is not None:
        problem = "credentials do not belong in the URL; put them in the vault with gatepass secret add"
    elif parts.query or parts.fragment:
        problem = "remove the query and fragment"
    if problem:
        raise InvalidInputError(f"invalid base URL {text!r}: {problem}")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise InvalidInputError(f"invalid base URL {text!r}: the port must be a number from 1 to 65535") from None
    return text.strip().rstrip("/")


def get_upstream(tx: Transaction, name: str) -> Upstream:
    upstream = tx.get_upstream(name)
    if upstream is None:
        raise NotFoundError(
            f"unknown upstream {name!r}: see gatepass upstream list, or add it with "
            f"gatepass upstream add {name} --type TYPE"
        )
    return upstream


def _check_secret_binding(tx: Transaction, upstream: str, secret_name: str | None) -> None:
    if secret_name is None:
        return
    sealed = tx.get_secret(secret_name)
    if sealed is not None and sealed.upstream != upstream:
        raise ConflictError(
            f"secret {secret_name!r} belongs to upstream {sealed.upstream!r}, not {upstream!r}: "
            f"add a separate secret with gatepass secret add NAME --upstream {upstream}"
        )


def build_upstream(
    name: str,
    type_: UpstreamType,
    *,
    base_url: str | None,
    auth: AuthStyle | None,
    secret_name: str | None,
    created_at: datetime,
) -> Upstream:
    """Validate and complete an upstream from its preset (shared by the CLI and the policy file)."""
    name = parse_resource_name(name, what="upstream")
    if secret_name is not None:
        secret_name = parse_resource_name(secret_name, what="secret")
    preset = PRESETS[type_]
    url = parse_base_url(base_url) if base_url else preset.base_url
    if url is None:
        raise InvalidInputError(
            f"upstream {name!r} of type {type_.value} needs a base URL (e.g. --base-url https://api.example.com)"
        )
    if auth is not None and type_ is not UpstreamType.HTTP and auth != preset.auth:
        raise InvalidInputError(
            f"the {type_.value} preset sends its credential as {preset.auth}; use type http for a custom auth style"
        )
    return Upstream(
        name=name, type=type_, base_url=url, auth=auth or preset.auth, secret_name=secret_name, created_at=created_at
    )


def add_upstream(
    session: Session,
    name: str,
    type_: UpstreamType,
    *,
    base_url: str | None = None,
    auth: AuthStyle | None = None,
    secret_name: str | None = None,
) -> Upstream:
    upstream = build_upstream(
        name, type_, base_url=base_url, auth=auth, secret_name=secret_name, created_at=session.now
    )
    if session.tx.get_upstream(upstream.name) is not None:
        raise ConflictError(
            f"upstream {upstream.name!r} already exists: change it with gatepass upstream update {upstream.name}"
        )
    _check_secret_binding(session.tx, upstream.name, upstream.secret_name)
    session.tx.put_upstream(upstream)
    session.record(
        "upstream.add",
        upstream.name,
        {
            "type": type_.value,
            "base_url": upstream.base_url,
            "auth": str(upstream.auth),
            "secret": upstream.secret_name,
        },
    )
    return upstream


def update_upstream(
    session: Session,
    name: str,
    *,
    base_url: str | None = None,
    auth: AuthStyle | None = None,
    secret_name: str | None = None,
    clear_secret: bool = False,
) -> Upstream:
    """Change what is given; ``clear_secret`` leaves the upstream without a credential."""
    current = get_upstream(session.tx, name)
    preset = PRESETS[current.type]
    changes: dict[str, str] = {}
    url = current.base_url
    if base_url is not None:
        url = parse_base_url(base_url)
        changes["base_url"] = url
    style = current.auth
    if auth is not None:
        if current.type is not UpstreamType.HTTP and auth != preset.auth:
            raise InvalidInputError(f"the {current.type.value} preset sends its credential as {preset.auth}")
        style = auth
        changes["auth"] = str(auth)
    secret = current.secret_name
    if secret_name is not None:
        secret = parse_resource_name(secret_name, what="secret")
        _check_secret_binding(session.tx, name, secret)
        changes["secret"] = secret
    elif clear_secret and secret is not None:
        secret = None
        changes["secret"] = "none"
    updated = Upstream(
        name=name, type=current.type, base_url=url, auth=style, secret_name=secret, created_at=current.created_at
    )
    if updated != current:
        session.tx.put_upstream(updated)
        session.record("upstream.update", name, changes)
    return updated


def remove_upstream(session: Session, name: str) -> None:
    get_upstream(session.tx, name)
    users = sorted({g.agent_id for g in session.tx.list_grants() if g.upstream == name})
    if users:
        names = sorted(a.name for a in session.tx.list_agents() if a.id in users)
        raise ConflictError(
            f"upstream {name!r} is still granted to {', '.join(names)}: "
            f"remove those grants first (gatepass grants AGENT, then gatepass disallow)"
        )
    session.tx.delete_upstream(name)
    session.record("upstream.remove", name)
