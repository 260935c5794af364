"""An open gatepass home: config, store, vault and audit log, each opened when first needed.

Every change goes through :meth:`Gatepass.session`: one write transaction on the store, the audit
events the change recorded, and the rule that the events are durable in the audit log before the
transaction commits (if the audit write fails, the change is rolled back and never takes effect).
"""

from __future__ import annotations

import base64
import getpass
import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gatepass.audit import AuditEvent, AuditLog
from gatepass.config import DEFAULT_CONFIG_TEXT, Config, load_config
from gatepass.control.runtime import call_gateway
from gatepass.errors import GatepassError, HomeError, StoreCorruptError
from gatepass.home import ENV_MASTER_KEY, Home
from gatepass.store import SqlStore, Store, Transaction, sqlite_url
from gatepass.units import utcnow
from gatepass.vault import MasterKey, Vault

__all__ = ["Clock", "Gatepass", "InitResult", "Session", "init_home"]

Clock = Callable[[], datetime]
_SIGNING_KEY_META = "audit_signing_key"
_PUBLIC_KEY_META = "audit_public_key"


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


@dataclass
class Session:
    """One unit of change: a write transaction plus the audit events that describe it."""

    tx: Transaction
    app: Gatepass
    now: datetime
    events: list[AuditEvent] = field(default_factory=list)
    actor: str | None = None

    def record(
        self,
        action: str,
        target: str,
        meta: Mapping[str, Any] | None = None,
        *,
        decision: str = "ok",
        reason: str = "admin",
    ) -> None:
        self.events.append(
            AuditEvent(
                actor=self.actor or self.app.actor,
                action=action,
                target=target,
                decision=decision,
                reason=reason,
                meta=dict(meta or {}),
            )
        )


class Gatepass:
    """A gatepass home opened for work. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        home: Home,
        config: Config,
        *,
        env: Mapping[str, str] = os.environ,
        clock: Clock | None = None,
        actor: str | None = None,
    ) -> None:
        self.home = home
        self.config = config
        self.env = env
        self.clock: Clock = clock or utcnow
        self.actor = actor or _default_actor()
        #: Tell a running gateway about committed changes (off inside the gateway itself).
        self.notify_changes = True

    @classmethod
    def open(
        cls, *, env: Mapping[str, str] = os.environ, clock: Clock | None = None, actor: str | None = None
    ) -> Gatepass:
        home = Home.locate(env)
        home.require()
        return cls(home, load_config(home.config_file, env), env=env, clock=clock, actor=actor)

    def __enter__(self) -> Gatepass:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> datetime:
        return self.clock()

    @property
    def store_url(self) -> str:
        return self.config.store.url or sqlite_url(self.home.db_file)

    @cached_property
    def store(self) -> Store:
        return SqlStore(self.store_url)

    @cached_property
    def vault(self) -> Vault:
        master, source = self.home.master_key(self.env)
        with self.store.transaction() as tx:
            return Vault.unlock(master, tx, source=source)

    @cached_property
    def audit(self) -> AuditLog:
        with self.store.transaction() as tx:
            sealed = tx.get_meta(_SIGNING_KEY_META)
        if sealed is None:
            raise StoreCorruptError("the store has no audit signing key: restore the store from a backup")
        signing_key = Ed25519PrivateKey.from_private_bytes(self.vault.open_blob("audit signing key", sealed))
        audit = self.config.audit
        return AuditLog(
            self.home.audit_dir,
            signing_key,
            checkpoint_every=audit.checkpoint_every,
            checkpoint_seconds=audit.checkpoint_seconds,
            clock=self.clock,
        )

    def public_key(self) -> Ed25519PublicKey:
        """The audit log's public key, as the store records it."""
        with self.store.transaction() as tx:
            text = tx.get_meta(_PUBLIC_KEY_META)
        if text is None:
            raise StoreCorruptError("the store has no audit public key: restore the store from a backup")
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))

    @contextmanager
    def read(self) -> Iterator[Transaction]:
        with self.store.transaction() as tx:
            yield tx

    @contextmanager
    def session(self, *, actor: str | None = None) -> Iterator[Session]:
        """A write transaction whose audit events are durable before it commits; ``actor`` overrides
        the app's (e.g. "gateway:alerts" for what the gateway does on its own)."""
        audit = self.audit  # opened before the write lock is taken
        with self.store.transaction(write=True) as tx:
            session = Session(tx, self, self.now(), actor=actor)
            yield session
            if session.events:
                audit.append(session.events)
        if session.events and self.notify_changes:
            self.notify_gateway()

    def notify_gateway(self) -> None:
        """Tell a running gateway to read the change feed now (it also polls, as a safety net)."""
        call_gateway(self.home, "POST", "/v1/changes")

    def close(self) -> None:
        if "audit" in self.__dict__:
            self.audit.close()
        if "store" in self.__dict__:
            self.store.close()


@dataclass(frozen=True, slots=True)
class InitResult:
    home: Home
    created: bool
    master_key_source: str
    store: str


def init_home(
    *, env: Mapping[str, str] = os.environ, clock: Clock | None = None, actor: str | None = None
) -> InitResult:
    """Create a home (0700) with config, store, master key and audit signing key; idempotent."""
    home = Home.locate(env)
    if home.is_initialised():
        home.check_permissions()
        config = load_config(home.config_file, env)
        with Gatepass(home, config, env=env, clock=clock, actor=actor) as app:
            _, source = home.master_key(env)
            app.vault  # noqa: B018 - proves the master key opens this home
            return InitResult(home, False, source, app.store.display_url)
    if home.path.exists() and any(home.path.iterdir()):
        raise HomeError(f"{home.path} exists and is not a gatepass home: empty it or set GATEPASS_HOME to a new folder")
    created_dir = not home.path.exists()
    try:
        return _create(home, env=env, clock=clock, actor=actor)
    except BaseException:
        # Leave nothing half made: a failed init must change nothing.
        if created_dir:
            shutil.rmtree(home.path, ignore_errors=True)
        else:
            for child in home.path.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        raise


def _create(home: Home, *, env: Mapping[str, str], clock: Clock | None, actor: str | None) -> InitResult:
    home.make_dirs()
    if env.get(ENV_MASTER_KEY):
        master, source = home.master_key(env)
    else:
        master = MasterKey.generate()
        home.write_private(home.master_key_file, (master.to_text() + "\n").encode())
        source = str(home.master_key_file)
    home.write_private(home.config_file, DEFAULT_CONFIG_TEXT.encode())
    config = load_config(home.config_file, env)
    app = Gatepass(home, config, env=env, clock=clock, actor=actor)
    url = app.store_url
    if not config.store.url:
        home.write_private(home.db_file, b"")
    store = SqlStore(url, create=True)
    app.__dict__["store"] = store
    try:
        with store.transaction(write=True) as tx:
            vault = Vault.create(master, tx)
            if tx.get_meta(_SIGNING_KEY_META) is None:
                signing_key = Ed25519PrivateKey.generate()
                tx.set_meta(_SIGNING_KEY_META, vault.seal_blob("audit signing key", signing_key.private_bytes_raw()))
                public = signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
                tx.set_meta(_PUBLIC_KEY_META, base64.b64encode(public).decode())
            public_text = tx.get_meta(_PUBLIC_KEY_META)
        assert public_text is not None
        home.write_private(home.public_key_file, (public_text + "\n").encode())
        app.__dict__["vault"] = vault
        with app.session() as session:
            session.record(
                "home.init",
                str(home.path),
                {"store": store.display_url, "master_key": "env" if source == ENV_MASTER_KEY else "file"},
            )
    except GatepassError:
        app.close()
        raise
    app.close()
    return InitResult(home, True, source, store.display_url)
