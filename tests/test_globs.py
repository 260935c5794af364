import pytest

from gatepass.errors import InvalidInputError
from gatepass.globs import parse_method, parse_model_glob, parse_path_glob


@pytest.mark.parametrize(
    ("glob", "value", "matches"),
    [
        ("claude-haiku-*", "claude-haiku-4-5", True),
        ("claude-haiku-*", "claude-sonnet-4-5", False),
        ("gpt-4o-mini", "gpt-4o-mini", True),
        ("gpt-4o-mini", "gpt-4o-mini-2024", False),
        ("gpt-?o", "gpt-4o", True),
        ("*", "anything/at-all", True),
    ],
)
def test_model_globs(glob: str, value: str, matches: bool) -> None:
    assert parse_model_glob(glob).matches(value) is matches


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("/repos/acme/docs/**", "/repos/acme/docs", True),
        ("/repos/acme/docs/**", "/repos/acme/docs/contents/README.md", True),
        ("/repos/acme/docs/**", "/repos/acme/docs-private/x", False),
        ("/repos/acme/docs/**", "/repos/acme/other", False),
        ("/repos/*/issues", "/repos/acme/issues", True),
        ("/repos/*/issues", "/repos/acme/x/issues", False),
        ("/repos/**/issues", "/repos/a/b/issues", True),
        ("/repos/**/issues", "/repos/issues", True),
        ("/v1/messages", "/v1/messages", True),
        ("/v1/messages", "/v1/messages/count_tokens", False),
        ("/v?/models", "/v1/models", True),
        ("/**", "/", True),
    ],
)
def test_path_globs(glob: str, path: str, matches: bool) -> None:
    assert parse_path_glob(glob).matches(path) is matches


@pytest.mark.parametrize(
    ("glob", "hint"),
    [
        ("repos/**", "start with /"),
        ("/repos/a**", "whole path segment"),
        ("/repos/../x", "'..'"),
        ("/repos/[ab]", "start with /"),
        ("/a b", "start with /"),
    ],
)
def test_bad_path_globs(glob: str, hint: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid path glob") as info:
        parse_path_glob(glob)
    assert hint in info.value.message


def test_bad_model_globs() -> None:
    for bad in ("", "claude haiku", "claude-[a]", "x" * 201):
        with pytest.raises(InvalidInputError, match="invalid model glob"):
            parse_model_glob(bad)


def test_methods() -> None:
    assert parse_method("get") == "GET"
    assert parse_method("*") == "*"
    with pytest.raises(InvalidInputError, match="GET"):
        parse_method("FETCH")
