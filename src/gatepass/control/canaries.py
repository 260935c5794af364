"""Canaries: decoy credentials of real formats planted for an agent; one seen in its traffic trips an alarm.

A canary is planted either in the agent's environment (the default) or, with ``file``, in one file of
its working directory instead. The decoy values are generated here at random, sealed by the vault with
a purpose bound to the canary's id, and never printed, logged or audited; only their names are shown.

Files are shaped by their name: ``credentials`` (as in ``~/.aws/credentials``) is an AWS INI profile
(aws canaries only), ``*.json`` a JSON object, anything else ``.env`` lines ``NAME=value``.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import zlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from gatepass.control.agents import get_agent, kill_agent
from gatepass.control.app import Session
from gatepass.errors import ConflictError, InvalidInputError, NotFoundError, StoreCorruptError
from gatepass.keyformat import new_id
from gatepass.model import Canary
from gatepass.sensitive import Secret
from gatepass.store import Transaction
from gatepass.vault import Vault

__all__ = [
    "KINDS",
    "RESERVED_NAMES",
    "CanaryInfo",
    "add_canary",
    "canary_literals",
    "canary_tripped",
    "canary_values",
    "generate_decoys",
    "list_canaries",
    "planted_environment",
    "planted_files",
    "remove_canary",
    "tripped_message",
]

_ALNUM = string.ascii_letters + string.digits
_URLSAFE = _ALNUM + "_-"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _base62(value: int, width: int) -> str:
    digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
    out = ""
    while value:
        value, rest = divmod(value, 62)
        out = digits[rest] + out
    return out.rjust(width, "0")


def _aws() -> tuple[str, ...]:
    return "AKIA" + _random(string.ascii_uppercase + "234567", 16), _random(_ALNUM + "/+", 40)


def _github() -> tuple[str, ...]:
    body = _random(_ALNUM, 30)  # GitHub's last six characters are a base62 CRC32 of the rest
    return ("ghp_" + body + _base62(zlib.crc32(body.encode()), 6),)


def _anthropic() -> tuple[str, ...]:
    return ("sk-ant-api03-" + _random(_URLSAFE, 93) + "AA",)


def _openai() -> tuple[str, ...]:
    # Project keys are 164 characters with "T3BlbkFJ" (base64 of "OpenAI") in the middle.
    return ("sk-proj-" + _random(_URLSAFE, 74) + "T3BlbkFJ" + _random(_URLSAFE, 74),)


def _slack() -> tuple[str, ...]:
    team = str(secrets.randbelow(9 * 10**11) + 10**11)
    bot = str(secrets.randbelow(9 * 10**12) + 10**12)
    return (f"xoxb-{team}-{bot}-{_random(_ALNUM, 24)}",)


def _stripe() -> tuple[str, ...]:
    return ("sk_live_51" + _random(_ALNUM, 97),)


def _database() -> tuple[str, ...]:
    # ".internal" is reserved for private use: the host never resolves on the internet.
    host = f"prod-db-{_random(string.ascii_lowercase + string.digits, 6)}.internal"
    return (f"postgresql://app_admin:{_random(_ALNUM, 32)}@{host}:5432/production",)


#: kind -> (default environment names, decoy generator). Names avoid those ``gatepass run`` sets
#: (ANTHROPIC_API_KEY, OPENAI_API_KEY, GITHUB_TOKEN hold the agent's gatepass key there).
_KINDS: dict[str, tuple[tuple[str, ...], Callable[[], tuple[str, ...]]]] = {
    "aws": (("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), _aws),
    "github": (("GH_ADMIN_TOKEN",), _github),
    "anthropic": (("ANTHROPIC_ADMIN_KEY",), _anthropic),
    "openai": (("OPENAI_ORG_ADMIN_KEY",), _openai),
    "slack": (("SLACK_BOT_TOKEN",), _slack),
    "stripe": (("STRIPE_SECRET_KEY",), _stripe),
    "database": (("DATABASE_URL",), _database),
}
KINDS: tuple[str, ...] = tuple(_KINDS)

#: Variables that ``gatepass run`` sets for the agent (compared case-insensitively); a canary never uses them.
RESERVED_NAMES = frozenset(
    {
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "GITHUB_API_URL",
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
    }
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


@dataclass(frozen=True, slots=True)
class CanaryInfo:
    """What may be shown of a canary: everything but its values."""

    id: str
    agent: str
    kind: str
    env: tuple[str, ...]
    file: str | None
    revoke: bool
    created: datetime | None = field(compare=False)


def generate_decoys(kind: str, names: Sequence[str] = ()) -> dict[str, str]:
    """Fresh random decoys of ``kind``: environment name -> value; ``names`` replaces the default names."""
    if kind not in _KINDS:
        raise InvalidInputError(f"unknown canary kind {kind!r}: use one of {', '.join(KINDS)}")
    defaults, generate = _KINDS[kind]
    names = tuple(names) or defaults
    if len(names) != len(defaults):
        raise InvalidInputError(
            f"a {kind} canary has {len(defaults)} variable(s) ({', '.join(defaults)}): give --env that many times"
        )
    for name in names:
        if not _ENV_NAME.fullmatch(name):
            raise InvalidInputError(
                f"invalid --env {name!r}: use letters, digits and underscores, not starting with a digit"
            )
        if name.upper() in RESERVED_NAMES or name.upper().startswith("GATEPASS_"):
            raise InvalidInputError(f"--env {name} is a variable gatepass run sets for the agent: pick another name")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"--env names must differ: got {', '.join(names)}")
    return dict(zip(names, generate(), strict=True))


def _check_file(path: str, kind: str) -> str:
    """A path relative to the agent's working directory, inside it, in one canonical spelling."""
    pure = PurePosixPath(path)
    if not path.strip() or len(path) > 1000 or "\\" in path or any(ord(c) < 0x20 for c in path):
        raise InvalidInputError(f"invalid --file {path!r}: give a relative path such as .env or config/.env")
    if pure.is_absolute() or path.startswith("~"):
        raise InvalidInputError(f"--file {path} must be relative to the agent's working directory, e.g. .env")
    if ".." in pure.parts:
        raise InvalidInputError(f"--file {path} must stay inside the agent's working directory: remove '..'")
    if not pure.parts:
        raise InvalidInputError(f"--file {path} names no file: give a file name such as .env")
    if pure.name == "credentials" and kind != "aws":
        raise InvalidInputError(
            f"--file {path} is shaped as an AWS credentials file, which holds only aws canaries: use .env"
        )
    return pure.as_posix()


def _purpose(canary_id: str) -> str:
    return f"canary:{canary_id}"


def canary_values(vault: Vault, canary: Canary) -> dict[str, str]:
    """Unseal a canary's decoys: environment name -> value. Keep the result out of logs and output."""
    values = json.loads(vault.open_blob(_purpose(canary.id), canary.sealed))
    if not isinstance(values, dict):
        raise StoreCorruptError(f"canary {canary.id} holds no variables: remove it and add a new one")
    return {str(name): str(value) for name, value in values.items()}


def canary_literals(vault: Vault, canary: Canary) -> list[str]:
    """What a scanner looks for: each decoy, and the password of a URL-shaped one on its own too
    (an agent may send just the password of ``DATABASE_URL``)."""
    found = []
    for value in canary_values(vault, canary).values():
        found.append(value)
        if "://" in value:
            with suppress(ValueError):
                password = urlsplit(value).password
                if password:
                    found.append(password)
    return found


def _info(vault: Vault, canary: Canary, agent_name: str) -> CanaryInfo:
    return CanaryInfo(
        id=canary.id,
        agent=agent_name,
        kind=canary.kind,
        env=tuple(canary_values(vault, canary)),
        file=canary.file,
        revoke=canary.revoke,
        created=canary.created_at,
    )


def add_canary(
    session: Session,
    agent_name: str,
    kind: str,
    *,
    file: str | None = None,
    env: Sequence[str] = (),
    revoke: bool = True,
) -> CanaryInfo:
    """Plant fresh decoys of ``kind`` for an agent: in its environment, or in ``file`` instead."""
    agent = get_agent(session.tx, agent_name)
    values = generate_decoys(kind, env)
    file = None if file is None else _check_file(file, kind)
    vault = session.app.vault
    for other in session.tx.list_canaries(agent.id):
        if file is not None and other.file == file:
            raise ConflictError(f"canary {other.id} already plants {file}: pick another --file or remove it first")
        if file is None and other.file is None:
            taken = set(values) & set(canary_values(vault, other))
            if taken:
                raise ConflictError(
                    f"canary {other.id} already plants {', '.join(sorted(taken))} for {agent.name}: "
                    "pick other names with --env"
                )
    canary_id = new_id("cn_")
    canary = Canary(
        id=canary_id,
        agent_id=agent.id,
        kind=kind,
        sealed=vault.seal_blob(_purpose(canary_id), json.dumps(values).encode()),
        fingerprint=vault.fingerprint(Secret("\n".join(values.values()))),
        file=file,
        revoke=revoke,
        created_at=session.now,
    )
    session.tx.add_canary(canary)
    session.record(
        "canary.add",
        agent.name,
        {
            "canary": canary_id,
            "kind": kind,
            "env": list(values),
            "file": file,
            "revoke": revoke,
            "fingerprint": canary.fingerprint,
        },
    )
    return _info(vault, canary, agent.name)


def remove_canary(session: Session, agent_name: str, canary_id: str) -> CanaryInfo:
    agent = get_agent(session.tx, agent_name)
    for canary in session.tx.list_canaries(agent.id):
        if canary.id == canary_id:
            info = _info(session.app.vault, canary, agent.name)
            session.tx.delete_canary(canary_id)
            session.record("canary.remove", agent.name, {"canary": canary_id, "kind": canary.kind})
            return info
    raise NotFoundError(f"agent {agent_name!r} has no canary {canary_id!r}: see gatepass canary list {agent_name}")


def list_canaries(tx: Transaction, vault: Vault, agent_name: str | None = None) -> list[CanaryInfo]:
    """The canaries of one agent, or of all; the vault is needed for their (sealed) variable names."""
    names = {a.id: a.name for a in tx.list_agents()}
    agent_id = None if agent_name is None else get_agent(tx, agent_name).id
    return [_info(vault, c, names[c.agent_id]) for c in tx.list_canaries(agent_id) if c.agent_id in names]


def planted_environment(tx: Transaction, vault: Vault, agent_id: str) -> dict[str, str]:
    """Every decoy variable to set in the agent's environment: name -> value."""
    planted: dict[str, str] = {}
    for canary in tx.list_canaries(agent_id):
        if canary.file is None:
            planted.update(canary_values(vault, canary))
    return planted


def _render(path: str, values: dict[str, str]) -> str:
    if PurePosixPath(path).name == "credentials":
        key_id, secret = values.values()
        return f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
    if path.endswith(".json"):
        return json.dumps(values, indent=2) + "\n"
    return "".join(f"{name}={value}\n" for name, value in values.items())


def planted_files(tx: Transaction, vault: Vault, agent_id: str) -> list[tuple[str, str]]:
    """(path relative to the agent's working directory, content) of each file canary."""
    return [
        (canary.file, _render(canary.file, canary_values(vault, canary)))
        for canary in tx.list_canaries(agent_id)
        if canary.file is not None
    ]


def canary_tripped(session: Session, canary: Canary, *, where: str) -> list[str]:
    """A canary was seen in outbound traffic (``where``, e.g. "anthropic request body"): audit it and,
    if the canary says so, revoke every key of the agent and suspend it. Returns the revoked key ids."""
    agent = session.tx.get_agent_by_id(canary.agent_id)
    if agent is None:
        raise NotFoundError(f"canary {canary.id} belongs to no agent: it was deleted with its agent")
    session.record(
        "canary.tripped",
        agent.name,
        {"canary": canary.id, "agent": agent.name, "kind": canary.kind, "where": where, "revoke": canary.revoke},
        decision="deny",
        reason="canary_tripped",
    )
    if not canary.revoke:
        return []
    _, revoked = kill_agent(session, agent.name, reason=f"canary {canary.id} seen in {where}")
    return revoked


def tripped_message(agent_name: str, canary: Canary, where: str) -> tuple[str, str]:
    """(subject, body) of the notification sent when a canary trips."""
    action = (
        "revoked every key of the agent and suspended it"
        if canary.revoke
        else "left its keys alone (this canary does not revoke)"
    )
    body = (
        f"Agent {agent_name} sent a decoy {canary.kind} credential (canary {canary.id}) in its {where}. "
        f"The decoy was planted for it and is not real, but no legitimate task uses it: the agent read "
        f"credentials it was not given and tried to use or send them. gatepass blocked the request and {action}. "
        f"Review what it did (gatepass audit tail --agent {agent_name}) before you trust it again."
    )
    return f"gatepass: canary tripped by {agent_name}", body
