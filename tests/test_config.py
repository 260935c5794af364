from pathlib import Path

import pytest

from gatepass.config import DEFAULT_CONFIG_TEXT, load_config
from gatepass.errors import ConfigError


def test_default_config_parses_to_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(DEFAULT_CONFIG_TEXT)
    config = load_config(path, {})
    assert config.store.url == ""
    assert config.agents.environments == ("dev", "test", "staging", "prod")
    assert config.audit.checkpoint_every == 1000
    assert load_config(path, {"GATEPASS_STORE_URL": "postgresql+psycopg://x/y"}).store.url.startswith("postgresql")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[audit]\ncheckpoint_every = 0\n", 2, "greater than or equal to 1"),
        ("[agents]\nenvironments = ['Dev']\n", 2, "lowercase"),
        ("[store]\nurl = ''\nuri = 'x'\n", 3, "unknown key 'uri'"),
        ("[audit\n", 1, "invalid TOML"),
    ],
)
def test_bad_config_names_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.message.startswith(f"{path}:{line}: ") and message in info.value.message


def test_price_overrides_are_checked_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[prices."my-model"]\nprovider = "openai"\ninput = 1.0\noutput = 2.0\nmax_output_tokens = 100\n')
    assert load_config(path, {}).prices["my-model"]["input"] == 1.0
    path.write_text('[store]\nurl = ""\n\n[prices."my-model"]\nprovider = "openai"\ninput = -1.0\noutput = 2.0\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert info.value.message.startswith(f"{path}:4: prices.my-model: ")
