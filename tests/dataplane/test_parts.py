from gatepass.dataplane.parts import KeyDigests
from gatepass.keyformat import generate_key
from gatepass.vault import MasterKey, Vault


def test_key_digests_remember_and_refuse_malformed_keys() -> None:
    vault = Vault(MasterKey.generate(), "gp-test", b"s" * 32)
    digests = KeyDigests(vault)
    key = generate_key()
    first = digests(key.reveal())
    assert first is not None and first.hex() == vault.key_digest(key)
    assert digests(key.reveal()) is first
    assert digests("gp_nope") is None and digests("sk-ant-something") is None
