"""The home's ``config.toml``: how this installation runs (not what agents may do: that is policy).

Policy (upstreams, agents, grants, budgets, key defaults) lives in the store and in ``gatepass.toml``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gatepass.names import DEFAULT_ENVIRONMENTS
from gatepass.tomlfile import load_toml, validate

__all__ = ["DEFAULT_CONFIG_TEXT", "AuditConfig", "Config", "StoreConfig", "load_config"]


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


class Config(_Section):
    store: StoreConfig = StoreConfig()
    agents: AgentsConfig = AgentsConfig()
    audit: AuditConfig = AuditConfig()


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
"""


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    data, text = load_toml(path)
    config = validate(Config, data, path, text)
    url = env.get("GATEPASS_STORE_URL")
    if url:
        config = config.model_copy(update={"store": StoreConfig(url=url)})
    return config
