from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gatepass.dataplane.parts import KeyDigests, LineBook
from gatepass.keyformat import generate_key
from gatepass.units import Budget, Period
from gatepass.vault import MasterKey, Vault
from tests.factories import make_agent, make_live_key

NOW = datetime(2026, 11, 27, 23, 59, tzinfo=UTC)
AGENT = make_agent(budgets=(Budget(5_000_000, Period.DAY),))
KEY = make_live_key(budgets=(Budget(1_000_000, Period.MONTH),))


def test_line_book_charges_eight_lines_and_limits_the_budgeted_ones() -> None:
    book = LineBook()
    charged, limits = book.lines(AGENT, KEY, NOW)
    assert len(charged) == 8 and {line.scope for line in charged} == {"agent", "key"}
    assert [(line.scope, line.period, amount) for line, amount in limits] == [
        ("agent", Period.DAY, 5_000_000),
        ("key", Period.MONTH, 1_000_000),
    ]
    assert book.lines(AGENT, KEY, NOW)[0] is charged  # cached
    changed = replace(AGENT, budgets=())
    assert book.lines(changed, KEY, NOW)[1] == [limits[1]]  # a new agent record is not served from the cache
    tomorrow, _ = book.lines(AGENT, KEY, NOW + timedelta(minutes=2))
    assert {line.start for line in tomorrow if line.period is Period.DAY} == {datetime(2026, 11, 28, tzinfo=UTC)}


def test_key_digests_remember_and_refuse_malformed_keys() -> None:
    vault = Vault(MasterKey.generate(), "gp-test", b"s" * 32)
    digests = KeyDigests(vault)
    key = generate_key()
    first = digests(key.reveal())
    assert first is not None and first.hex() == vault.key_digest(key)
    assert digests(key.reveal()) is first
    assert digests("gp_nope") is None and digests("sk-ant-something") is None
