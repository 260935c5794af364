"""Alembic migrations of the SQL store (run by :func:`gatepass.store.sql.migrate`)."""
