"""The price table: what a model's tokens cost, in exact integers.

Prices live in ``gatepass/data/prices.toml`` (USD per million tokens, with sources and the date they
were checked) and may be replaced or extended by config overrides of the same shape. They are held as
nano-USD per token (USD/MTok x 1000), so costs are exact integer sums; a cost is rounded *up* to whole
micro-dollars, so gatepass never charges less than the provider does.

A model is found by its exact id or by one of its entry's alias globs, never by prefix: an unknown
model has no price (``lookup`` returns None) and the gateway refuses it rather than charge $0.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from importlib.resources import files
from typing import Any, Final

from gatepass.errors import ConfigError, InvalidInputError
from gatepass.globs import Glob, parse_model_glob
from gatepass.providers.interface import Usage

__all__ = ["NANOS_PER_MICRO", "ModelPrice", "PriceTable", "TierPrice", "load_default_data"]

NANOS_PER_MICRO: Final = 1000
PROMPT_OVERHEAD_TOKENS: Final = 1024  # server-side prompt overhead (tool and system preambles)
_PRICE_FIELDS: Final = ("input", "output", "cache_write", "cache_write_1h", "cache_read")
_ENTRY_KEYS: Final = frozenset({*_PRICE_FIELDS, "aliases", "max_output_tokens", "long_context"})
_TIER_KEYS: Final = frozenset({*_PRICE_FIELDS, "threshold_tokens"})
_LOOKUP_CACHE_SIZE: Final = 4096


@dataclass(frozen=True, slots=True)
class TierPrice:
    """Prices of one tier in nano-USD per token."""

    input: int
    output: int
    cache_write: int
    cache_write_1h: int
    cache_read: int

    def cost_nanos(self, usage: Usage) -> int:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + (usage.cache_write_tokens - usage.cache_write_1h_tokens) * self.cache_write
            + usage.cache_write_1h_tokens * self.cache_write_1h
            + usage.cache_read_tokens * self.cache_read
        )

    @property
    def highest_input(self) -> int:
        """The dearest way an input token can be billed."""
        return max(self.input, self.cache_write, self.cache_write_1h, self.cache_read)

    def worst_nanos(self, prompt_tokens: int, output_tokens: int) -> int:
        return prompt_tokens * max(self.input, self.cache_write, self.cache_write_1h, self.cache_read) + (
            output_tokens * self.output
        )


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """The price of one model; ``long_context`` applies when the prompt exceeds ``long_context_threshold``."""

    provider: str
    model: str
    base: TierPrice
    max_output_tokens: int
    long_context_threshold: int | None = None
    long_context: TierPrice | None = None

    def tier_for(self, prompt_tokens: int) -> TierPrice:
        threshold = self.long_context_threshold
        if self.long_context is not None and threshold is not None and prompt_tokens > threshold:
            return self.long_context
        return self.base

    def cost_micros(self, usage: Usage) -> int:
        """What ``usage`` costs, rounded up to whole micro-dollars."""
        return _ceil_micros(self.tier_for(usage.prompt_tokens).cost_nanos(usage))

    def worst_case_micros(self, input_bytes: int, max_output_tokens: int | None) -> int:
        """The most a request of ``input_bytes`` body bytes can cost.

        Every input token takes at least one byte of the body, plus a server-side overhead, each billed
        at the dearest input price; output is ``max_output_tokens`` (or the model's cap) at the output price.
        """
        if input_bytes < 0 or (max_output_tokens is not None and max_output_tokens < 0):
            raise ValueError("worst_case_micros needs non-negative sizes")
        prompt = input_bytes + PROMPT_OVERHEAD_TOKENS
        output = self.max_output_tokens if max_output_tokens is None else max_output_tokens
        worst = self.base.worst_nanos(prompt, output)
        tier = self.tier_for(prompt)
        if tier is not self.base:
            worst = max(worst, tier.worst_nanos(prompt, output))
        return _ceil_micros(worst)


def _ceil_micros(nanos: int) -> int:
    return -(-nanos // NANOS_PER_MICRO)


class PriceTable:
    """Model prices by provider, with exact and alias lookup. Build it with :meth:`load`."""

    def __init__(self, prices: Mapping[str, tuple[tuple[ModelPrice, tuple[Glob, ...]], ...]], checked: date | None):
        self._exact = {(p, price.model): price for p, entries in prices.items() for price, _ in entries}
        self._aliases = {
            p: tuple((glob, price) for price, globs in entries for glob in globs) for p, entries in prices.items()
        }
        self._cache: dict[tuple[str, str], ModelPrice | None] = {}
        self.checked = checked

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None) -> PriceTable:
        """The shipped table, with ``overrides`` replacing or adding models.

        ``overrides`` is shaped like the file (``{provider: {model: entry}}``) or like config.toml's
        ``[prices."model"]`` tables (``{model: {"provider": ..., **entry}}``); a replaced model loses its
        shipped entry entirely, aliases included.
        """
        data: dict[str, Any] = {provider: dict(models) for provider, models in _providers(load_default_data(), "")}
        tables = _override_tables(overrides or {})
        cls.from_mapping(dict(tables), origin="price overrides")  # errors name the config, not the merged table
        for provider, models in tables:
            # Overrides come first so that their aliases win over the shipped ones.
            data[provider] = {**models, **{k: v for k, v in data.get(provider, {}).items() if k not in models}}
        data["meta"] = load_default_data().get("meta")
        return cls.from_mapping(data)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, origin: str = "price table") -> PriceTable:
        """Validate a mapping shaped like ``prices.toml``; ConfigError names the model at fault."""
        prices = {
            provider: tuple(_entry(origin, provider, model, raw) for model, raw in models.items())
            for provider, models in _providers(data, origin)
        }
        meta = data.get("meta")
        checked = meta.get("checked") if isinstance(meta, Mapping) else None
        return cls(prices, checked if isinstance(checked, date) else None)

    def lookup(self, provider: str, model: str) -> ModelPrice | None:
        """The price of ``model`` at ``provider``: exact id first, then alias globs; None if unknown."""
        key = (provider, model)
        if key in self._cache:
            return self._cache[key]
        found = self._exact.get(key)
        if found is None:
            found = next((price for glob, price in self._aliases.get(provider, ()) if glob.matches(model)), None)
        if len(self._cache) >= _LOOKUP_CACHE_SIZE:  # model names come from agents: keep the cache bounded
            self._cache.clear()
        self._cache[key] = found
        return found

    def models(self, provider: str) -> list[str]:
        return sorted(model for p, model in self._exact if p == provider)


@lru_cache(maxsize=1)
def load_default_data() -> Mapping[str, Any]:
    """The parsed ``gatepass/data/prices.toml``."""
    resource = files("gatepass").joinpath("data/prices.toml")
    try:
        return tomllib.loads(resource.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"the shipped price table cannot be read ({exc}): reinstall gatepass") from None


def _override_tables(overrides: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    tables: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(value.get("provider"), str):
            entry = {k: v for k, v in value.items() if k != "provider"}
            tables.setdefault(value["provider"], {})[str(key)] = entry
    nested = {k: v for k, v in overrides.items() if not (isinstance(v, Mapping) and isinstance(v.get("provider"), str))}
    for provider, models in _providers(nested, "price overrides"):
        tables.setdefault(provider, {}).update(models)
    return list(tables.items())


def _providers(data: Mapping[str, Any], origin: str) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    for provider, models in data.items():
        if provider == "meta":
            continue
        if not isinstance(models, Mapping):
            raise ConfigError(f"{origin}: {provider}: must be a table of models (e.g. [{provider}.model-name])")
        out.append((str(provider), models))
    return out


def _entry(origin: str, provider: str, model: str, raw: Any) -> tuple[ModelPrice, tuple[Glob, ...]]:
    where = f"{origin}: {provider}.{model}"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a table with input, output and max_output_tokens")
    raw = {k: v for k, v in raw.items() if v is not None}  # None stands for "not given"
    _check_keys(where, raw, _ENTRY_KEYS)
    try:
        parse_model_glob(model)
    except InvalidInputError:
        raise ConfigError(f"{where}: not a valid model id") from None
    if "*" in model or "?" in model:
        raise ConfigError(f"{where}: a model id cannot hold wildcards: put globs in aliases")
    base = _tier(where, raw)
    long_context, threshold = None, None
    if "long_context" in raw:
        tier_raw = raw["long_context"]
        if not isinstance(tier_raw, Mapping):
            raise ConfigError(f"{where}.long_context: must be a table with threshold_tokens, input and output")
        tier_raw = {k: v for k, v in tier_raw.items() if v is not None}
        _check_keys(f"{where}.long_context", tier_raw, _TIER_KEYS)
        threshold = _whole(f"{where}.long_context", tier_raw, "threshold_tokens")
        long_context = _tier(f"{where}.long_context", tier_raw)
    aliases = raw.get("aliases", ())
    if not isinstance(aliases, list | tuple) or not all(isinstance(a, str) for a in aliases):
        raise ConfigError(f"{where}: aliases must be a list of model globs")
    globs = []
    for alias in aliases:
        try:
            globs.append(parse_model_glob(alias))
        except InvalidInputError as exc:
            raise ConfigError(f"{where}: alias {alias!r}: {exc.message}") from None
    max_output = _whole(where, raw, "max_output_tokens")
    price = ModelPrice(provider, model, base, max_output, threshold, long_context)
    return price, tuple(globs)


def _check_keys(where: str, raw: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for key in raw:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}: remove it or check its spelling")


def _tier(where: str, raw: Mapping[str, Any]) -> TierPrice:
    for key in ("input", "output"):
        if key not in raw:
            raise ConfigError(f"{where}: missing {key}: add its price in USD per million tokens")
    input_ = _nanos(where, raw, "input")
    cache_write = _nanos(where, raw, "cache_write") if "cache_write" in raw else input_
    return TierPrice(
        input=input_,
        output=_nanos(where, raw, "output"),
        cache_write=cache_write,
        cache_write_1h=_nanos(where, raw, "cache_write_1h") if "cache_write_1h" in raw else cache_write,
        cache_read=_nanos(where, raw, "cache_read") if "cache_read" in raw else input_,
    )


def _nanos(where: str, raw: Mapping[str, Any], key: str) -> int:
    """USD per million tokens -> nano-USD per token, exactly."""
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: {key}: must be a number of USD per million tokens")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {key}: must be a number of USD per million tokens") from None
    if not amount.is_finite() or amount < 0:
        raise ConfigError(f"{where}: {key}: must be zero or more USD per million tokens")
    nanos = amount * 1000
    if nanos != nanos.to_integral_value():
        raise ConfigError(f"{where}: {key}: at most 3 decimal places (prices are kept in nano-USD per token)")
    return int(nanos)


def _whole(where: str, raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if value is None:
        raise ConfigError(f"{where}: missing {key}: add it (a whole number of tokens)")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where}: {key}: must be a whole number of tokens, zero or more")
    return value
