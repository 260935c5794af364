"""Egress allowlists through the control layer: canonical rules, ports that only grow, audited changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.audit import tail_directory
from gatepass.control import agents
from gatepass.control.app import Gatepass, init_home
from gatepass.control.egress import allow_egress, list_egress, merge_ports, parse_rule, remove_egress
from gatepass.errors import InvalidInputError, NotFoundError


@pytest.fixture
def app(home: Path) -> Iterator[Gatepass]:
    init_home()
    with Gatepass.open(actor="test") as opened:
        with opened.session() as s:
            agents.create_agent(s, "acme-research-dev", owner="me@example.com")
            agents.create_agent(s, "acme-other-dev", owner="me@example.com")
        yield opened


@pytest.mark.parametrize(
    ("text", "host", "ports"),
    [
        ("api.example.com", "api.example.com", ()),
        ("API.Example.com.", "api.example.com", ()),
        ("api.example.com:443", "api.example.com", (443,)),
        ("api.example.com:8443,443,8443", "api.example.com", (443, 8443)),
        (" *.Example.com:443 ", "*.example.com", (443,)),
        ("10.1.2.3:5432", "10.1.2.3", (5432,)),
        ("0x7f.1", "127.0.0.1", ()),
        ("2001:db8::1", "2001:db8::1", ()),
        ("[2001:db8::1]:8443", "2001:db8::1", (8443,)),
        ("[::ffff:7f00:1]", "127.0.0.1", ()),
    ],
)
def test_rules_are_read_canonically(text: str, host: str, ports: tuple[int, ...]) -> None:
    assert parse_rule(text) == (host, ports)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*", "'*' may only be the whole first label"),
        ("*.com", "at least two labels"),
        ("api.*.example.com", "'*' may only be the whole first label"),
        ("https://api.example.com", "no scheme or path"),
        ("api.example.com/v1", "no scheme or path"),
        ("user@api.example.com", "no scheme or path"),
        ("api.example.com:", "the port '' is not a number"),
        ("api.example.com:0", "the port '0' is not a number from 1 to 65535"),
        ("api.example.com:65536", "from 1 to 65535"),
        ("api.example.com:443,https", "the port 'https'"),
        ("[2001:db8::1]443", "is not a host with ports"),
        ("[2001:db8::1", "is not a host with ports"),
        ("bücher.de", "xn--"),
        ("", "the host is empty"),
    ],
)
def test_bad_rules_are_refused_with_what_to_write(text: str, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_rule(text)
    assert message in info.value.message and "\n" not in info.value.message
    assert info.value.exit_code == 2


def test_merging_ports_only_adds() -> None:
    assert merge_ports((), ()) == ()
    assert merge_ports((443,), ()) == ()  # 443 with the defaults is just the defaults
    assert merge_ports((), (8443,)) == (80, 443, 8443)
    assert merge_ports((443,), (8443,)) == (443, 8443)
    assert merge_ports((80,), (443,)) == ()


def test_allow_list_and_remove_are_audited(app: Gatepass) -> None:
    with app.session() as s:
        results = allow_egress(s, "acme-research-dev", ["api.example.com:443", "*.pypi.org"])
    assert [(rule.host, rule.ports, created) for rule, created in results] == [
        ("api.example.com", (443,), True),
        ("*.pypi.org", (), True),
    ]
    first = results[0][0]
    with app.session() as s:
        again = allow_egress(s, "acme-research-dev", ["API.example.com:443"])
        more = allow_egress(s, "acme-research-dev", ["api.example.com:8443"])
        allow_egress(s, "acme-other-dev", ["example.org"])
    assert again == [(first, False)]
    (widened, changed), *_ = more
    assert (widened.host, widened.ports, changed) == ("api.example.com", (443, 8443), True)
    assert widened.id != first.id
    with app.read() as tx:
        assert [(name, rule.host, rule.ports) for name, rule in list_egress(tx)] == [
            ("acme-other-dev", "example.org", ()),
            ("acme-research-dev", "*.pypi.org", ()),
            ("acme-research-dev", "api.example.com", (443, 8443)),
        ]
        assert [rule.host for _, rule in list_egress(tx, "acme-other-dev")] == ["example.org"]
    with app.session() as s:
        removed = remove_egress(s, "acme-research-dev", "API.example.com.")
    assert removed.id == widened.id
    with app.read() as tx:
        assert [rule.host for _, rule in list_egress(tx, "acme-research-dev")] == ["*.pypi.org"]
    trail = [
        (r.action, r.target, r.meta.get("host"), r.meta.get("ports")) for r in tail_directory(app.home.audit_dir, 20)
    ]
    assert [t for t in trail if t[0].startswith("egress.")] == [
        ("egress.allow", "acme-research-dev", "api.example.com", [443]),
        ("egress.allow", "acme-research-dev", "*.pypi.org", []),
        ("egress.allow", "acme-research-dev", "api.example.com", [443, 8443]),
        ("egress.allow", "acme-other-dev", "example.org", []),
        ("egress.remove", "acme-research-dev", "api.example.com", None),
    ]


def test_refusals(app: Gatepass) -> None:
    with app.session() as s:
        with pytest.raises(NotFoundError, match="unknown agent 'ghost-agent-dev'"):
            allow_egress(s, "ghost-agent-dev", ["example.com"])
        with pytest.raises(InvalidInputError, match="name at least one host"):
            allow_egress(s, "acme-research-dev", [])
        with pytest.raises(InvalidInputError, match=r"'\*' may only be"):
            allow_egress(s, "acme-research-dev", ["example.com", "*"])  # nothing is written
        with pytest.raises(NotFoundError, match=r"has no egress rule for example\.com"):
            remove_egress(s, "acme-research-dev", "example.com")
        with pytest.raises(InvalidInputError, match="give the host alone"):
            remove_egress(s, "acme-research-dev", "example.com:443")
    with app.read() as tx:
        assert list_egress(tx) == []


def test_rules_go_with_their_agent(app: Gatepass) -> None:
    with app.session() as s:
        allow_egress(s, "acme-research-dev", ["example.com"])
        agents.delete_agent(s, "acme-research-dev")
    with app.read() as tx:
        assert list_egress(tx) == []
