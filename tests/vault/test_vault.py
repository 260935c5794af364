from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gatepass.errors import MasterKeyError, TamperedCiphertextError
from gatepass.sensitive import Secret
from gatepass.store import SealedSecret, SqlStore, sqlite_url
from gatepass.vault import MasterKey, Vault
from tests.conftest import fake_secret


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqlStore(sqlite_url(tmp_path / "v.db"), create=True)
    yield s
    s.close()


def _sealed(vault: Vault, record_id: str, name: str, upstream: str, value: str) -> SealedSecret:
    nonce, ct = vault.seal_secret(record_id=record_id, name=name, upstream=upstream, value=Secret(value))
    return SealedSecret(record_id, name, upstream, nonce, ct, vault.fingerprint(Secret(value)), datetime.now(UTC), None)


def test_round_trip_and_wrong_master_key(store: SqlStore) -> None:
    master = MasterKey.generate()
    with store.transaction(write=True) as tx:
        vault = Vault.create(master, tx)
    value = fake_secret()
    sealed = _sealed(vault, "sec_1", "main", "anthropic", value)
    assert value.encode() not in sealed.ciphertext
    with store.transaction() as tx:
        again = Vault.unlock(master, tx, source="test")
    assert again.open_secret(sealed).reveal() == value
    with store.transaction() as tx, pytest.raises(MasterKeyError, match="does not open this home") as info:
        Vault.unlock(MasterKey.generate(), tx, source="GATEPASS_MASTER_KEY")
    assert master.to_text() not in info.value.message


def test_ciphertexts_cannot_be_swapped_or_repointed(store: SqlStore) -> None:
    with store.transaction(write=True) as tx:
        vault = Vault.create(MasterKey.generate(), tx)
    one = _sealed(vault, "sec_1", "one", "anthropic", fake_secret())
    two = _sealed(vault, "sec_2", "two", "openai", fake_secret())
    swapped = replace(one, nonce=two.nonce, ciphertext=two.ciphertext)
    with pytest.raises(TamperedCiphertextError, match="moved between records"):
        vault.open_secret(swapped)
    with pytest.raises(TamperedCiphertextError):
        vault.open_secret(replace(one, upstream="openai"))  # re-pointed to another upstream's host
    with pytest.raises(TamperedCiphertextError):
        vault.open_secret(replace(one, name="two"))


def test_fingerprints_and_key_digests_are_keyed(store: SqlStore) -> None:
    with store.transaction(write=True) as tx:
        vault = Vault.create(MasterKey.generate(), tx)
    value = Secret(fake_secret())
    assert vault.fingerprint(value) == vault.fingerprint(Secret(value.reveal()))
    assert value.reveal() not in vault.fingerprint(value)
    assert len(vault.key_digest(value)) == 64
