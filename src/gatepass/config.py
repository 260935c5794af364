"""The home's ``config.toml``: how this installation runs (not what agents may do: that is policy).

Policy (upstreams, agents, grants, budgets, key defaults) lives in the store and in ``gatepass.toml``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatepass.errors import ConfigError
from gatepass.names import DEFAULT_ENVIRONMENTS
from gatepass.netguard import parse_networks
from gatepass.tomlfile import config_error, load_toml, validate

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "AlertsConfig",
    "AuditConfig",
    "Config",
    "EgressConfig",
    "GatewayConfig",
    "RunConfig",
    "StoreConfig",
    "load_config",
    "parse_listen",
]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreConfig(_Section):
    #: SQLAlchemy URL of the store; empty means SQLite in the home (``gatepass.db``).
    url: str = ""


class AgentsConfig(_Section):
    environments: tuple[str, ...] = Field(default=DEFAULT_ENVIRONMENTS, min_length=1)

    @field_validator("environments")
    @classmethod
    def _check_envs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for env in value:
            if not env.isalnum() or not env.islower():
                raise ValueError(f"environment {env!r} must be lowercase letters and digits (e.g. dev)")
        return value


class AuditConfig(_Section):
    #: A signed checkpoint at least every this many records ...
    checkpoint_every: int = Field(default=1000, ge=1, le=1_000_000)
    #: ... or this many seconds, whichever comes first.
    checkpoint_seconds: float = Field(default=10.0, gt=0, le=86400)
    #: The gateway's records (requests and egress decisions): "write" (the default) = written to the
    #: file before the response or tunnel is released (safe from a crash of the gateway), fsynced
    #: within sync_interval_ms (a power cut or kernel crash can lose that interval); "fsync" =
    #: fsynced (group-committed) before release, at the cost of the disk's fsync on every
    #: request's latency. CLI changes always fsync.
    durability: Literal["fsync", "write"] = "write"
    sync_interval_ms: int = Field(default=10, ge=1, le=1000)


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"listen address {text!r} must be HOST:PORT, e.g. 127.0.0.1:8790")
    return host, int(port)


class GatewayConfig(_Section):
    #: The data plane: agent traffic only.
    listen: str = "127.0.0.1:8790"
    #: The control plane: health, metrics, admin API (admin token required).
    admin_listen: str = "127.0.0.1:8791"
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_response_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    connect_timeout: float = Field(default=10.0, gt=0)
    read_timeout: float = Field(default=600.0, gt=0)
    shutdown_grace: float = Field(default=30.0, ge=0)
    change_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    #: A key revoked or expired this many days ago leaves the gateway's memory: until then a request
    #: with it is refused as key_revoked or key_expired, after that as key_unknown. The store keeps it.
    ended_keys_kept_days: float = Field(default=7.0, ge=0, le=3650)

    @field_validator("listen", "admin_listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        parse_listen(value)
        return value


class AlertsConfig(_Section):
    """Where alerts go. The webhook is signed with the home's webhook.secret (gatepass alert webhook-secret);
    the SMTP password, if any, comes from GATEPASS_SMTP_PASSWORD."""

    webhook_url: str = ""
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_from: str = "gatepass@localhost"
    smtp_starttls: bool = False
    smtp_username: str = ""
    #: The runaway breaker: refuse an agent that sends the same body more than this many times ...
    loop_max_repeats: int = Field(default=20, ge=0)
    #: ... within this many seconds (0 repeats disables the breaker).
    loop_window_seconds: float = Field(default=60.0, gt=0)


class RunConfig(_Section):
    """``gatepass run``: what passes from the owner's environment, what the sandbox hides, how long a stop may take."""

    #: Variables passed through to the agent besides PATH, HOME, LANG, LC_*, TERM, TZ, USER, LOGNAME, SHELL.
    env: tuple[str, ...] = ()
    #: Files or folders that --sandbox hides besides the built-in list (absolute, or ~/ for your home).
    hide: tuple[str, ...] = ()
    #: Seconds an agent has to exit after a stop signal before it is killed (SIGKILL).
    grace_seconds: float = Field(default=10.0, ge=0, le=3600)


class EgressConfig(_Section):
    """The egress proxy on the data plane (HTTP_PROXY / HTTPS_PROXY for agents)."""

    #: Networks the proxy may connect to although they are internal (loopback, private, link-local ...).
    allow_networks: tuple[str, ...] = ()
    #: Seconds to resolve a host, and then to connect to it.
    connect_timeout: float = Field(default=10.0, gt=0, le=300)
    #: A tunnel (or a forwarded request) with no byte either way for this many seconds is closed.
    idle_timeout: float = Field(default=300.0, gt=0, le=86400)
    #: Open tunnels and forwarded requests at once, in all and per agent.
    max_tunnels: int = Field(default=1000, ge=1)
    max_tunnels_per_agent: int = Field(default=100, ge=1)

    @field_validator("allow_networks")
    @classmethod
    def _check_networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        parse_networks(value)
        return value


class Config(_Section):
    store: StoreConfig = StoreConfig()
    agents: AgentsConfig = AgentsConfig()
    audit: AuditConfig = AuditConfig()
    gateway: GatewayConfig = GatewayConfig()
    alerts: AlertsConfig = AlertsConfig()
    run: RunConfig = RunConfig()
    egress: EgressConfig = EgressConfig()
    #: Price overrides, shaped like the shipped table's entries plus ``provider`` (checked at load).
    prices: dict[str, dict[str, Any]] = {}


DEFAULT_CONFIG_TEXT: Final = """\
# gatepass configuration: how this installation runs.
# What agents may do (upstreams, agents, grants, budgets) is policy: see gatepass.toml and `gatepass plan`.

[store]
# SQLAlchemy URL of the store; empty means SQLite in this home (gatepass.db).
# e.g. "postgresql+psycopg://gatepass@db.internal/gatepass". GATEPASS_STORE_URL overrides it.
url = ""

[agents]
# The last part of every agent name, {project}-{agent-type}-{environment}, is one of these.
environments = ["dev", "test", "staging", "prod"]

[audit]
# A signed checkpoint at least every N records or S seconds: truncation before it is detectable.
checkpoint_every = 1000
checkpoint_seconds = 10.0
# Gateway records (requests, egress decisions): "write" = written before each response is released
# and fsynced within sync_interval_ms (a power cut can lose that interval; a crash of gatepass cannot),
# or "fsync" = fsynced before release (group commit; adds the disk's fsync to every request).
durability = "write"
sync_interval_ms = 10

[gateway]
# The data plane (agent traffic) and the control plane (health, metrics, admin API).
listen = "127.0.0.1:8790"
admin_listen = "127.0.0.1:8791"
max_body_bytes = 33554432
connect_timeout = 10.0
read_timeout = 600.0
shutdown_grace = 30.0
# A key revoked or expired this many days ago is forgotten by the gateway (refused as unknown from then on;
# the store keeps it): gatepass run issues a key per run, and memory would grow with every one.
ended_keys_kept_days = 7.0

[alerts]
# Spend thresholds (gatepass alert add) notify by a signed webhook and by email to the agent's owner.
webhook_url = ""
smtp_host = ""
smtp_port = 25
smtp_from = "gatepass@localhost"
# The runaway breaker: the same request body more than N times in S seconds is refused, and alerts.
loop_max_repeats = 20
loop_window_seconds = 60.0

[run]
# gatepass run: the agent's environment holds PATH, HOME, LANG, LC_*, TERM, TZ, USER, LOGNAME, SHELL,
# these names (when set), --env NAME[=VALUE], and its own key and gateway URLs; nothing else of yours.
env = []
# Besides ~/.ssh, ~/.aws, ~/.kube, .env files ... (see gatepass run --help), --sandbox also hides these.
hide = []
# After a stop signal, the agent has this many seconds to exit before it is killed.
grace_seconds = 10.0

[egress]
# The egress proxy: agents set HTTP_PROXY and HTTPS_PROXY to http://AGENT:KEY@<listen> and reach only the
# hosts their owner allowed (gatepass egress allow). Internal addresses (loopback, private, link-local,
# metadata ...) are always refused unless a network is opened here on purpose, e.g. ["10.1.2.0/24"].
allow_networks = []
connect_timeout = 10.0
idle_timeout = 300.0
max_tunnels = 1000
max_tunnels_per_agent = 100

# Prices override or extend the shipped table (USD per million tokens), e.g.:
# [prices."my-finetune"]
# provider = "openai"
# input = 3.0
# output = 12.0
# cache_read = 1.5
# max_output_tokens = 16384
"""


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    data, text = load_toml(path)
    config = validate(Config, data, path, text)
    if config.prices:
        from gatepass.metering.prices import PriceTable  # only when there are overrides to check

        for model, entry in config.prices.items():
            try:
                PriceTable.load({model: entry})
            except ConfigError as exc:
                detail = exc.message.split(": ", 2)[-1]
                raise config_error(path, text, ("prices", model), detail) from None
    url = env.get("GATEPASS_STORE_URL")
    if url:
        config = config.model_copy(update={"store": StoreConfig(url=url)})
    return config
