"""Vault entries: the owner's real upstream credentials, sealed; only names and fingerprints come out."""

from __future__ import annotations

from gatepass.control.app import Session
from gatepass.control.upstreams import PRESETS, add_upstream, get_upstream
from gatepass.errors import ConflictError, InvalidInputError, NotFoundError
from gatepass.keyformat import new_id
from gatepass.model import SecretInfo, Upstream, UpstreamType
from gatepass.names import parse_resource_name
from gatepass.sensitive import Secret
from gatepass.store import SealedSecret, Transaction

__all__ = ["add_secret", "clean_value", "list_secrets", "remove_secret", "rotate_secret", "upstream_secret_status"]

_MAX_VALUE = 16 * 1024


def clean_value(value: Secret) -> Secret:
    """Drop the line break that ``echo`` adds; refuse empty values and control characters."""
    text = value.reveal().removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise InvalidInputError(
            "the secret value is empty: pipe it on stdin, e.g. "
            "printenv ANTHROPIC_API_KEY | gatepass secret add NAME --upstream anthropic"
        )
    if len(text) > _MAX_VALUE:
        raise InvalidInputError(f"the secret value is longer than {_MAX_VALUE} characters: is this the right input?")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InvalidInputError(
            "the secret value holds a line break or control character, which no HTTP "
            "header can carry: pass the credential alone, on one line"
        )
    return Secret(text)


def _info(sealed: SealedSecret) -> SecretInfo:
    return SecretInfo(
        name=sealed.name,
        upstream=sealed.upstream,
        fingerprint=sealed.fingerprint,
        created_at=sealed.created_at,
        rotated_at=sealed.rotated_at,
    )


def _get_sealed(tx: Transaction, name: str) -> SealedSecret:
    sealed = tx.get_secret(name)
    if sealed is None:
        raise NotFoundError(f"no secret named {name!r} in the vault: see gatepass secret list")
    return sealed


def add_secret(session: Session, name: str, upstream_name: str, value: Secret) -> tuple[SecretInfo, list[str]]:
    """Seal a new credential for an upstream. Naming a preset (anthropic, openai, github) that has no
    upstream yet creates that upstream with this secret. Returns the entry and notes for the user."""
    name = parse_resource_name(name, what="secret")
    upstream_name = parse_resource_name(upstream_name, what="upstream")
    value = clean_value(value)
    tx = session.tx
    if tx.get_secret(name) is not None:
        raise ConflictError(f"secret {name!r} already exists: replace its value with gatepass secret rotate {name}")
    notes: list[str] = []
    upstream = tx.get_upstream(upstream_name)
    if upstream is None:
        preset_types = {t.value: t for t in PRESETS if t is not UpstreamType.HTTP}
        if upstream_name not in preset_types:
            raise NotFoundError(
                f"unknown upstream {upstream_name!r}: add it first with gatepass upstream add "
                f"{upstream_name} --type http --base-url URL --secret {name}"
            )
        add_upstream(session, upstream_name, preset_types[upstream_name], secret_name=name)
        notes.append(f"created upstream {upstream_name!r} from its preset, using this secret")
    elif upstream.secret_name is None:
        tx.put_upstream(
            Upstream(
                name=upstream.name,
                type=upstream.type,
                base_url=upstream.base_url,
                auth=upstream.auth,
                secret_name=name,
                created_at=upstream.created_at,
            )
        )
        session.record("upstream.update", upstream.name, {"secret": name})
        notes.append(f"upstream {upstream_name!r} now uses this secret")
    elif upstream.secret_name != name:
        notes.append(
            f"upstream {upstream_name!r} still uses secret {upstream.secret_name!r}; switch with "
            f"gatepass upstream update {upstream_name} --secret {name}"
        )
    vault = session.app.vault
    record_id = new_id("sec_")
    nonce, ciphertext = vault.seal_secret(record_id=record_id, name=name, upstream=upstream_name, value=value)
    sealed = SealedSecret(
        id=record_id,
        name=name,
        upstream=upstream_name,
        nonce=nonce,
        ciphertext=ciphertext,
        fingerprint=vault.fingerprint(value),
        created_at=session.now,
        rotated_at=None,
    )
    tx.put_secret(sealed)
    session.record("secret.add", name, {"upstream": upstream_name, "fingerprint": sealed.fingerprint})
    return _info(sealed), notes


def rotate_secret(session: Session, name: str, value: Secret) -> SecretInfo:
    """Replace a credential's value (fresh nonce, same record)."""
    value = clean_value(value)
    current = _get_sealed(session.tx, name)
    vault = session.app.vault
    nonce, ciphertext = vault.seal_secret(
        record_id=current.id, name=current.name, upstream=current.upstream, value=value
    )
    sealed = SealedSecret(
        id=current.id,
        name=current.name,
        upstream=current.upstream,
        nonce=nonce,
        ciphertext=ciphertext,
        fingerprint=vault.fingerprint(value),
        created_at=current.created_at,
        rotated_at=session.now,
    )
    session.tx.put_secret(sealed)
    session.record(
        "secret.rotate",
        name,
        {"upstream": current.upstream, "fingerprint": sealed.fingerprint, "previous_fingerprint": current.fingerprint},
    )
    return _info(sealed)


def remove_secret(session: Session, name: str) -> list[str]:
    """Delete a credential; returns the upstreams left without one."""
    _get_sealed(session.tx, name)
    orphans = [u.name for u in session.tx.list_upstreams() if u.secret_name == name]
    session.tx.delete_secret(name)
    session.record("secret.remove", name, {"upstreams_left_without_secret": orphans})
    return orphans


def list_secrets(tx: Transaction) -> list[SecretInfo]:
    return [_info(s) for s in tx.list_secrets()]


def upstream_secret_status(tx: Transaction, upstream_name: str) -> str:
    upstream = get_upstream(tx, upstream_name)
    if upstream.secret_name is None:
        return "none"
    return "present" if tx.get_secret(upstream.secret_name) is not None else "missing"
