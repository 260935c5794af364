import pytest

from gatepass.errors import InvalidInputError
from gatepass.names import AgentName, parse_agent_name, parse_cidr, parse_email, parse_resource_name


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("acme-research-dev", ("acme", "research", "dev")),
        ("acme-code-review-prod", ("acme", "code-review", "prod")),
        ("x1-a2-staging", ("x1", "a2", "staging")),
    ],
)
def test_agent_names(text: str, parts: tuple[str, str, str]) -> None:
    assert parse_agent_name(text) == AgentName(*parts)
    assert str(parse_agent_name(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "Acme-research-dev",
        "acme-dev",
        "acme--research-dev",
        "-acme-research-dev",
        "acme-research-dev-",
        "acme_research_dev",
        "acme-research-qa",
        "a" * 60 + "-b-dev",
        "acme research dev",
        "",
    ],
)
def test_bad_agent_names_show_a_valid_example(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_agent_name(text)
    assert "acme-research-dev" in info.value.message


def test_configurable_environments() -> None:
    assert parse_agent_name("acme-bot-qa", ["qa", "live"]).environment == "qa"
    with pytest.raises(InvalidInputError, match="one of qa, live"):
        parse_agent_name("acme-bot-dev", ["qa", "live"])


def test_emails() -> None:
    assert parse_email("Me@Example.COM") == "Me@example.com"
    assert parse_email("me+tag@example.com") == "me+tag@example.com"
    for bad in ("me", "me@", "@example.com", "me@example", "me@exa mple.com", "me..x@example.com", "me@-x.com"):
        with pytest.raises(InvalidInputError, match=r"name@example\.com"):
            parse_email(bad)


def test_cidrs() -> None:
    assert str(parse_cidr("10.0.0.0/8")) == "10.0.0.0/8"
    assert str(parse_cidr("127.0.0.1")) == "127.0.0.1/32"
    assert str(parse_cidr("::1")) == "::1/128"
    with pytest.raises(InvalidInputError, match=r"did you mean 10\.0\.0\.0/8"):
        parse_cidr("10.1.2.3/8")
    for bad in ("10.0.0.0/33", "300.1.1.1", "localhost", ""):
        with pytest.raises(InvalidInputError, match="invalid CIDR"):
            parse_cidr(bad)


def test_resource_names() -> None:
    assert parse_resource_name("anthropic-main", what="secret") == "anthropic-main"
    for bad in ("Anthropic", "a_b", "-a", "a-", "a" * 64, "a/b", ""):
        with pytest.raises(InvalidInputError, match="invalid secret name"):
            parse_resource_name(bad, what="secret")
