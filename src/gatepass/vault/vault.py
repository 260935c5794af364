"""The vault: upstream credentials sealed at rest, and the server secrets derived from the master key.

Layout of what the store's ``meta`` table holds (all sealed values are ``v1:<nonce b64>:<ct b64>``):

- ``instance_id``: random; bound into every associated data, so records cannot move between homes;
- ``master_key_check``: a sealed constant that tells a wrong master key from a tampered record;
- ``instance_secret``: 256 random bits, sealed; the HMAC key for gatepass keys and fingerprints
  are derived from it, so rotating the master key only re-seals it.

A vault secret is sealed under a key derived from the master key with associated data
``gatepass:secret:v1:{instance}:{id}:{name}:{upstream}``: a ciphertext moved to another record,
or a record re-pointed to another upstream, fails authentication.
"""

from __future__ import annotations

import base64
import hmac
import os
from collections.abc import Callable
from hashlib import sha256
from typing import Final

from gatepass.errors import MasterKeyError, StoreCorruptError, TamperedCiphertextError
from gatepass.keyformat import key_digest, key_digester, new_id
from gatepass.sensitive import Secret
from gatepass.store.interface import SealedSecret, Transaction
from gatepass.vault.crypto import MasterKey, derive, open_sealed, seal

__all__ = ["Vault"]

_CHECK_PLAINTEXT: Final = b"gatepass master key check v1"


def _encode(nonce: bytes, ciphertext: bytes) -> str:
    return "v1:" + base64.b64encode(nonce).decode() + ":" + base64.b64encode(ciphertext).decode()


def _decode(text: str, what: str) -> tuple[bytes, bytes]:
    try:
        version, nonce, ciphertext = text.split(":")
        if version != "v1":
            raise ValueError(version)
        return base64.b64decode(nonce, validate=True), base64.b64decode(ciphertext, validate=True)
    except ValueError:
        raise StoreCorruptError(f"the store's {what} is damaged: restore the store from a backup") from None


class Vault:
    """Seals and opens secrets for one home; built by :meth:`create` or :meth:`unlock`."""

    def __init__(self, master: MasterKey, instance_id: str, instance_secret: bytes) -> None:
        self._secrets_key = master.derive("secrets")
        self._blob_key = master.derive("blobs")
        self._instance_id = instance_id
        self._key_hmac = derive(instance_secret, "key-hmac")
        self._fingerprint_key = derive(instance_secret, "fingerprint")

    def __repr__(self) -> str:
        return f"Vault(instance={self._instance_id!r})"

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @classmethod
    def create(cls, master: MasterKey, tx: Transaction) -> Vault:
        """Set up a new home's vault in ``tx`` (or unlock it if another home on this store already did)."""
        if tx.get_meta("instance_id") is not None:
            return cls.unlock(master, tx, source="the master key")
        instance_id = new_id("gp-", 16)
        blob_key = master.derive("blobs")
        tx.set_meta("instance_id", instance_id)
        tx.set_meta("master_key_id", master.key_id())
        tx.set_meta("master_key_check", _encode(*seal(blob_key, _CHECK_PLAINTEXT, cls._aad(instance_id, "check"))))
        instance_secret = os.urandom(32)
        tx.set_meta(
            "instance_secret", _encode(*seal(blob_key, instance_secret, cls._aad(instance_id, "instance_secret")))
        )
        return cls(master, instance_id, instance_secret)

    @classmethod
    def unlock(cls, master: MasterKey, tx: Transaction, *, source: str) -> Vault:
        """Open an existing home's vault; a key that is not this home's raises MasterKeyError."""
        instance_id = tx.get_meta("instance_id")
        check = tx.get_meta("master_key_check")
        sealed_secret = tx.get_meta("instance_secret")
        if instance_id is None or check is None or sealed_secret is None:
            raise StoreCorruptError("the store has no vault records: run gatepass init, or restore the store")
        blob_key = master.derive("blobs")
        try:
            open_sealed(
                blob_key, *_decode(check, "master key check"), cls._aad(instance_id, "check"), what="master key check"
            )
        except TamperedCiphertextError:
            expected = tx.get_meta("master_key_id") or "unknown"
            raise MasterKeyError(
                f"the master key from {source} (id {master.key_id()}) does not open this home (it was created "
                f"with key id {expected}): set GATEPASS_MASTER_KEY to that key"
            ) from None
        instance_secret = open_sealed(
            blob_key,
            *_decode(sealed_secret, "instance secret"),
            cls._aad(instance_id, "instance_secret"),
            what="instance secret",
        )
        return cls(master, instance_id, instance_secret)

    @staticmethod
    def _aad(instance_id: str, *parts: str) -> bytes:
        return ":".join(("gatepass", "v1", instance_id, *parts)).encode()

    # -- upstream credentials -------------------------------------------------------------------
    def seal_secret(self, *, record_id: str, name: str, upstream: str, value: Secret) -> tuple[bytes, bytes]:
        aad = self._aad(self._instance_id, "secret", record_id, name, upstream)
        return seal(self._secrets_key, value.reveal().encode("utf-8"), aad)

    def open_secret(self, sealed: SealedSecret) -> Secret:
        aad = self._aad(self._instance_id, "secret", sealed.id, sealed.name, sealed.upstream)
        plaintext = open_sealed(self._secrets_key, sealed.nonce, sealed.ciphertext, aad, what=f"secret {sealed.name!r}")
        return Secret(plaintext.decode("utf-8"))

    def fingerprint(self, value: Secret) -> str:
        """A short keyed fingerprint: tells two values apart, reveals nothing of either."""
        return hmac.new(self._fingerprint_key, value.reveal().encode("utf-8"), sha256).hexdigest()[:12]

    # -- gatepass keys ----------------------------------------------------------------------------
    def key_digest(self, key: Secret) -> str:
        return key_digest(self._key_hmac, key)

    def key_digester(self) -> Callable[[str], bytes]:
        """:meth:`key_digest` as bytes, faster for many keys (the gateway's)."""
        return key_digester(self._key_hmac)

    # -- other sealed blobs (the audit signing key) ------------------------------------------------
    def seal_blob(self, purpose: str, data: bytes) -> str:
        return _encode(*seal(self._blob_key, data, self._aad(self._instance_id, "blob", purpose)))

    def open_blob(self, purpose: str, text: str) -> bytes:
        return open_sealed(
            self._blob_key, *_decode(text, purpose), self._aad(self._instance_id, "blob", purpose), what=purpose
        )
