"""The price table: lookup rules, exact cost arithmetic, the worst case, overrides and bad data."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from gatepass.errors import ConfigError
from gatepass.metering.prices import ModelPrice, PriceTable, TierPrice, load_default_data
from gatepass.providers import Usage

TABLE = PriceTable.load()


@pytest.mark.parametrize(
    ("provider", "model", "entry"),
    [
        ("anthropic", "claude-haiku-4-5", "claude-haiku-4-5"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("anthropic", "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-0"),
        ("anthropic", "claude-opus-4-1-20250805", "claude-opus-4-1"),
        ("anthropic", "claude-opus-4-20250514", "claude-opus-4-0"),
        ("anthropic", "claude-3-7-sonnet-20250219", "claude-3-7-sonnet-latest"),
        ("anthropic", "claude-3-5-haiku-20241022", "claude-3-5-haiku-latest"),
        ("anthropic", "claude-3-haiku-20240307", "claude-3-haiku-20240307"),
        ("openai", "gpt-4o", "gpt-4o"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # its own (launch) price
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "gpt-4.1-nano", "gpt-4.1-nano"),
        ("openai", "gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("openai", "o4-mini", "o4-mini"),
        ("openai", "text-embedding-3-small", "text-embedding-3-small"),
    ],
)
def test_lookup_by_exact_id_or_alias(provider: str, model: str, entry: str) -> None:
    price = TABLE.lookup(provider, model)
    assert price is not None and price.model == entry and price.provider == provider


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-4o-audio-preview"),  # the trap: a prefix of a priced model is not that model
        ("openai", "gpt-4o-realtime-preview"),
        ("openai", "gpt-4o-2024-08-06-extra"),
        ("openai", "gpt-4"),
        ("openai", "GPT-4O"),
        ("openai", "gpt-4o "),
        ("anthropic", "claude-haiku-4-5-latest"),
        ("anthropic", "claude-haiku-4"),
        ("anthropic", "claude-sonnet-4-2"),  # a made-up "4.2" must not fall into Sonnet 4's snapshot glob
        ("anthropic", "gpt-4o"),  # prices belong to one provider
        ("openai", "claude-haiku-4-5"),
        ("aws", "claude-haiku-4-5"),
        ("openai", ""),
    ],
)
def test_unknown_models_have_no_price(provider: str, model: str) -> None:
    assert TABLE.lookup(provider, model) is None


def test_the_shipped_table_is_dated_and_in_nano_usd() -> None:
    assert TABLE.checked == date(2026, 11, 27)
    haiku = TABLE.lookup("anthropic", "claude-haiku-4-5")
    assert haiku is not None
    assert haiku.base == TierPrice(input=1000, output=5000, cache_write=1250, cache_write_1h=2000, cache_read=100)
    assert haiku.max_output_tokens == 64000
    assert "claude-opus-4-5" in TABLE.models("anthropic") and "gpt-5" in TABLE.models("openai")


def test_every_shipped_entry_is_sane() -> None:
    for provider in ("anthropic", "openai"):
        for model in TABLE.models(provider):
            price = TABLE.lookup(provider, model)
            assert price is not None
            t = price.base
            assert t.input > 0, model
            assert t.cache_read <= t.input <= t.cache_write <= t.cache_write_1h, model
            if price.long_context is not None:
                assert price.long_context.input >= t.input and price.long_context.output >= t.output, model


def test_cost_is_exact_integer_arithmetic() -> None:
    sonnet = TABLE.lookup("anthropic", "claude-sonnet-4-6")
    assert sonnet is not None
    # 1000 in x $3 + 2000 out x $15 + 500 cache write (5m) x $3.75 + 100 1h write x $6 + 10000 read x $0.30, per MTok
    usage = Usage(1000, 2000, cache_write_tokens=600, cache_read_tokens=10_000, cache_write_1h_tokens=100)
    nanos = 1000 * 3000 + 2000 * 15000 + 500 * 3750 + 100 * 6000 + 10_000 * 300
    assert nanos % 1000 == 0
    assert sonnet.cost_micros(usage) == nanos // 1000 == 38_475


def test_cost_rounds_up_to_the_micro_dollar() -> None:
    nano = TABLE.lookup("openai", "gpt-5-nano")
    assert nano is not None
    assert nano.cost_micros(Usage(1, 0)) == 1  # 50 nano-dollars is charged as one micro-dollar
    assert nano.cost_micros(Usage(20, 0)) == 1  # exactly 1000 nanos
    assert nano.cost_micros(Usage(21, 0)) == 2
    assert nano.cost_micros(Usage(0, 0)) == 0
    assert nano.cost_micros(Usage(0, 0, cache_read_tokens=1)) == 1  # 5 nanos


def test_long_context_tier_applies_to_the_whole_request() -> None:
    sonnet = TABLE.lookup("anthropic", "claude-sonnet-4-5")
    assert sonnet is not None
    short = Usage(150_000, 1000, cache_read_tokens=50_000)  # prompt exactly 200K: base rates
    assert sonnet.cost_micros(short) == (150_000 * 3000 + 1000 * 15000 + 50_000 * 300) // 1000
    long = Usage(150_001, 1000, cache_read_tokens=50_000)
    assert sonnet.cost_micros(long) == (150_001 * 6000 + 1000 * 22500 + 50_000 * 600 + 999) // 1000


def test_worst_case() -> None:
    haiku = TABLE.lookup("anthropic", "claude-haiku-4-5")
    assert haiku is not None
    # (bytes + 1024) at the dearest input price (the 1h cache write, $2) + max output at $5
    assert haiku.worst_case_micros(2000, 100) == ((2000 + 1024) * 2000 + 100 * 5000 + 999) // 1000
    assert haiku.worst_case_micros(0, None) == (1024 * 2000 + 64000 * 5000) // 1000  # the model's cap
    embed = TABLE.lookup("openai", "text-embedding-3-small")
    assert embed is not None
    assert embed.worst_case_micros(10_000, None) == -(-(11_024 * 20) // 1000)


def test_worst_case_covers_any_usage_the_body_allows() -> None:
    haiku55 = TABLE.lookup("anthropic", "claude-haiku-5-5")
    assert haiku55 is not None
    for size in (0, 50_000, 98_976, 98_977, 400_000):
        prompt = size + 1024
        worst = haiku55.worst_case_micros(size, 500)
        for usage in (Usage(prompt, 500), Usage(0, 500, cache_write_tokens=prompt, cache_write_1h_tokens=prompt)):
            assert haiku55.cost_micros(usage) <= worst, size
    with pytest.raises(ValueError, match="non-negative"):
        haiku55.worst_case_micros(-1, None)


def test_overrides_replace_and_add_models() -> None:
    table = PriceTable.load(
        {
            "openai": {"gpt-4o": {"input": 1, "output": 2, "max_output_tokens": 100}},
            "my-finetune": {"provider": "openai", "input": 3.0, "output": 12.0, "cache_write": None,
                            "cache_read": 1.5, "max_output_tokens": 16384, "aliases": ("my-finetune-v*",)},
        }
    )  # fmt: skip
    gpt4o = table.lookup("openai", "gpt-4o")
    assert gpt4o is not None and gpt4o.base.input == 1000 and gpt4o.max_output_tokens == 100
    assert table.lookup("openai", "gpt-4o-2024-08-06") is None  # the replaced entry's aliases went with it
    mine = table.lookup("openai", "my-finetune-v2")
    assert mine is not None and mine.model == "my-finetune"
    assert mine.base == TierPrice(input=3000, output=12000, cache_write=3000, cache_write_1h=3000, cache_read=1500)
    assert table.lookup("anthropic", "claude-haiku-4-5") is not None  # the rest is untouched
    assert TABLE.lookup("openai", "gpt-4o") != gpt4o  # the shipped table is not changed
    assert table.checked == TABLE.checked


def test_an_override_alias_wins_over_a_shipped_one() -> None:
    table = PriceTable.load({"openai": {"gpt-4o-new": {"input": 9, "output": 9, "max_output_tokens": 1,
                                                       "aliases": ["gpt-4o-2024-08-06"]}}})  # fmt: skip
    price = table.lookup("openai", "gpt-4o-2024-08-06")
    assert price is not None and price.model == "gpt-4o-new"


def entry(**fields: Any) -> dict[str, Any]:
    return {"input": 1.0, "output": 2.0, "max_output_tokens": 1000, **fields}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"input": 1.0, "max_output_tokens": 10}, "missing output"),
        ({"output": 1.0, "max_output_tokens": 10}, "missing input"),
        ({"input": 1.0, "output": 1.0}, "missing max_output_tokens"),
        (entry(input=-1), "zero or more"),
        (entry(cache_read=-0.5), "zero or more"),
        (entry(output="cheap"), "number"),
        (entry(output=True), "number"),
        (entry(output=float("nan")), "zero or more"),
        (entry(input=0.0001), "3 decimal places"),
        (entry(max_output_tokens=-5), "whole number"),
        (entry(max_output_tokens=1.5), "whole number"),
        (entry(imput=1.0), "unknown key 'imput'"),
        (entry(aliases="gpt-*"), "aliases"),
        (entry(aliases=["bad glob!"]), "alias"),
        (entry(long_context={"input": 2, "output": 4}), "threshold_tokens"),
        (entry(long_context={"threshold_tokens": 10, "input": 2}), "missing output"),
        (entry(long_context=5), "long_context"),
        ("not a table", "must be a table"),
    ],
)
def test_bad_entries_are_refused_naming_the_model(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PriceTable.from_mapping({"openai": {"my-model": raw}})
    assert "openai.my-model" in info.value.message


def test_bad_model_ids_and_provider_tables_are_refused() -> None:
    with pytest.raises(ConfigError, match="wildcards"):
        PriceTable.from_mapping({"openai": {"gpt-*": entry()}})
    with pytest.raises(ConfigError, match="not a valid model id"):
        PriceTable.from_mapping({"openai": {"gpt 4": entry()}})
    with pytest.raises(ConfigError, match="table of models"):
        PriceTable.from_mapping({"openai": ["gpt-4o"]})
    with pytest.raises(ConfigError, match=r"price overrides: openai\.x: missing input"):
        PriceTable.load({"openai": {"x": {"output": 1, "max_output_tokens": 1}}})


def test_lookup_cache_stays_bounded() -> None:
    table = PriceTable.load()
    for i in range(5000):
        assert table.lookup("openai", f"unknown-{i}") is None
    assert len(table._cache) <= 4096
    assert table.lookup("openai", "gpt-4o") is not None


def test_model_price_is_a_frozen_value() -> None:
    price = ModelPrice("openai", "m", TierPrice(1, 2, 3, 4, 5), max_output_tokens=10)
    with pytest.raises(AttributeError):
        price.model = "other"  # type: ignore[misc]
    assert isinstance(load_default_data(), dict)
