"""Persistent state behind one interface; SQL implementation for SQLite, PostgreSQL and MariaDB."""

from gatepass.store.interface import SealedSecret, Store, Transaction
from gatepass.store.sql import SqlStore, sqlite_url

__all__ = ["SealedSecret", "SqlStore", "Store", "Transaction", "sqlite_url"]
