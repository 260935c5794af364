import math
import re

from hypothesis import given
from hypothesis import strategies as st

from gatepass.keyformat import KEY_PATTERN, generate_key, is_well_formed, key_digest, key_digester, new_id
from gatepass.sensitive import Secret


def test_format_prefix_entropy_and_checksum() -> None:
    key = generate_key().reveal()
    assert re.fullmatch(r"gp_[0-9A-Za-z]{39}", key)
    assert 33 * math.log2(62) >= 192 >= 160  # the random part carries at least 160 bits
    assert is_well_formed(key)
    assert KEY_PATTERN.fullmatch(key)


def test_keys_are_unique() -> None:
    assert len({generate_key().reveal() for _ in range(2000)}) == 2000


@given(st.integers(min_value=3, max_value=41), st.sampled_from("0123456789ABCDEFabcdef"))
def test_a_mistyped_character_is_caught(position: int, replacement: str) -> None:
    key = generate_key().reveal()
    mistyped = key[:position] + replacement + key[position + 1 :]
    if mistyped != key:
        assert not is_well_formed(mistyped)


def test_malformed() -> None:
    key = generate_key().reveal()
    for bad in (
        "",
        key[:-1],
        key + "x",
        key + "\n",
        "gq_" + key[3:],
        key.replace(key[5], "-"),
        key.replace("p", "\u0440"),
    ):
        assert not is_well_formed(bad)


def test_digest_is_keyed() -> None:
    key = generate_key()
    one, two = key_digest(b"a" * 32, key), key_digest(b"b" * 32, key)
    assert one != two and len(one) == 64
    assert key.reveal() not in one
    assert key_digest(b"a" * 32, Secret(key.reveal())) == one


def test_the_digester_gives_the_same_digests_over_and_over() -> None:
    digest = key_digester(b"a" * 32)
    keys = [generate_key() for _ in range(3)]
    for key in keys + keys:
        assert digest(key.reveal()).hex() == key_digest(b"a" * 32, key)
    assert digest("gp_\u00e9") == bytes.fromhex(key_digest(b"a" * 32, Secret("gp_\u00e9")))


def test_ids() -> None:
    assert re.fullmatch(r"key_[0-9a-z]{10}", new_id("key_"))
