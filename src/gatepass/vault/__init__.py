"""Encryption at rest of upstream credentials and server secrets."""

from gatepass.vault.crypto import MasterKey
from gatepass.vault.vault import Vault

__all__ = ["MasterKey", "Vault"]
