"""The one exception tree of gatepass.

Every error that gatepass raises on purpose derives from :class:`GatepassError`, carries a
one-line message that says what to do, and an exit code for the CLI::

    GatepassError                     exit 1 unless noted
    ├── InvalidInputError             exit 2: a malformed name, budget, duration, CIDR, glob ...
    ├── NotFoundError                 an unknown agent, upstream, secret, key or grant
    ├── ConflictError                 the thing already exists, or is still in use
    ├── HomeError                     GATEPASS_HOME is missing or not a gatepass home
    │   └── InsecurePermissionsError  a file or folder of the home is readable by others
    ├── ConfigError                   a bad config or policy file (names the file and line)
    ├── VaultError
    │   ├── MasterKeyError            the master key is malformed or does not open this home
    │   └── TamperedCiphertextError   a ciphertext does not belong to its record
    ├── StoreError
    │   ├── StoreLockedError          another process holds the store
    │   └── StoreCorruptError         the store is damaged or not a gatepass store
    ├── AuthenticationError           a gatepass key is malformed, unknown, expired, revoked or used up
    ├── UpstreamError                 the upstream could not be reached or broke the exchange
    │   ├── UpstreamConnectError      connection refused, DNS or TLS failure
    │   ├── UpstreamTimeoutError      no answer (or no next chunk) in time
    │   │   └── UpstreamConnectTimeoutError  no connection in time (also an UpstreamConnectError)
    │   └── UpstreamProtocolError     a reset, a half-sent body, or bytes that are not HTTP/1.1
    └── AuditError
        ├── AuditWriteError           an audit record could not be made durable
        └── AuditTamperedError        verification found an edit, deletion, reordering or truncation

Errors of libraries underneath are translated where they enter (``raise X(...) from exc``), so
callers above the store, vault and audit layers only ever see this tree. Messages never contain a
secret value.
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuditTamperedError",
    "AuditWriteError",
    "AuthenticationError",
    "ConfigError",
    "ConflictError",
    "GatepassError",
    "HomeError",
    "InsecurePermissionsError",
    "InvalidInputError",
    "MasterKeyError",
    "NotFoundError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "TamperedCiphertextError",
    "UpstreamConnectError",
    "UpstreamConnectTimeoutError",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamTimeoutError",
    "VaultError",
]


class GatepassError(Exception):
    """Root of every error gatepass raises on purpose."""

    exit_code: int = 1

    def __init__(self, message: str) -> None:
        # One line, always: a newline would split the CLI's single error line.
        super().__init__(" ".join(message.split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class InvalidInputError(GatepassError):
    """Malformed input from the user: the usage error of the CLI contract."""

    exit_code = 2


class NotFoundError(GatepassError):
    """An agent, upstream, secret, key or grant that does not exist."""


class ConflictError(GatepassError):
    """The object already exists, or another object still depends on it."""


class HomeError(GatepassError):
    """GATEPASS_HOME is missing, unreadable or not a gatepass home."""


class InsecurePermissionsError(HomeError):
    """A file or folder of the home is open to other users; the message holds the chmod that fixes it."""


class ConfigError(GatepassError):
    """A config or policy file that cannot be used; the message names the file and the line."""


class VaultError(GatepassError):
    """The vault cannot encrypt or decrypt."""


class MasterKeyError(VaultError):
    """The master key is malformed, missing, or not the key this home was created with."""


class TamperedCiphertextError(VaultError):
    """A ciphertext failed authentication for its record: edited, or swapped from another record."""


class StoreError(GatepassError):
    """The store cannot be read or written."""


class StoreLockedError(StoreError):
    """Another process holds the store (or the gateway lock) and did not let go in time."""


class StoreCorruptError(StoreError):
    """The store file is damaged or is not a gatepass store."""


class AuthenticationError(GatepassError):
    """A gatepass key that cannot be used; ``reason`` is the machine-readable reason code."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class UpstreamError(GatepassError):
    """The upstream could not be reached, or broke the exchange; the gateway answers 502 or 504."""


class UpstreamConnectError(UpstreamError):
    """No connection to the upstream: refused, unresolvable, or TLS failed."""


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not answer, or stopped sending, within its timeout."""


class UpstreamConnectTimeoutError(UpstreamConnectError, UpstreamTimeoutError):
    """No connection within the connect timeout: nothing reached the upstream."""


class UpstreamProtocolError(UpstreamError):
    """The upstream reset the connection, sent half a body, or sent something that is not HTTP/1.1."""


class AuditError(GatepassError):
    """The audit log cannot be written or read."""


class AuditWriteError(AuditError):
    """An audit record could not be made durable: the action it records must not take effect."""


class AuditTamperedError(AuditError):
    """Verification found an edit, deletion, reordering or truncation of the audit log."""
