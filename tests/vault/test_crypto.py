import base64

import pytest

from gatepass.errors import MasterKeyError, TamperedCiphertextError
from gatepass.vault.crypto import MasterKey, derive, open_sealed, seal


def test_seal_uses_a_fresh_nonce_each_time() -> None:
    key = derive(b"k" * 32, "test")
    nonces = {seal(key, b"same plaintext", b"aad")[0] for _ in range(500)}
    assert len(nonces) == 500


def test_associated_data_binds_the_record() -> None:
    key = derive(b"k" * 32, "test")
    nonce, ct = seal(key, b"value", b"record-1")
    assert open_sealed(key, nonce, ct, b"record-1", what="x") == b"value"
    with pytest.raises(TamperedCiphertextError):
        open_sealed(key, nonce, ct, b"record-2", what="x")
    flipped = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(TamperedCiphertextError):
        open_sealed(key, nonce, flipped, b"record-1", what="x")


def test_subkeys_differ_by_purpose() -> None:
    assert derive(b"k" * 32, "a") != derive(b"k" * 32, "b")


def test_master_key_text_forms() -> None:
    key = MasterKey.generate()
    text = key.to_text()
    assert MasterKey.from_text(text, source="t") == key
    raw = base64.b64decode(text)
    assert MasterKey.from_text(raw.hex(), source="t") == key
    assert MasterKey.from_text(base64.urlsafe_b64encode(raw).decode().rstrip("="), source="t") == key
    assert text not in repr(key) and "secure" in repr(key)


@pytest.mark.parametrize("text", ["", "short", base64.b64encode(b"x" * 16).decode(), "z" * 64])
def test_malformed_master_key(text: str) -> None:
    with pytest.raises(MasterKeyError, match="GATEPASS_MASTER_KEY is malformed"):
        MasterKey.from_text(text, source="GATEPASS_MASTER_KEY")
