"""Code run in child processes by the multi-process tests (importable by a spawned interpreter)."""

from __future__ import annotations

from pathlib import Path
from threading import Barrier

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gatepass.audit import AuditEvent, AuditLog


def append_worker(directory: str, raw_key: bytes, start: Barrier, worker: int, batches: int, per_batch: int) -> None:
    """Append ``batches`` batches of ``per_batch`` events as ``worker-<n>``, checkpointing often.

    ``start`` (a multiprocessing barrier) makes the workers begin together, so their batches mix.
    """
    key = Ed25519PrivateKey.from_private_bytes(raw_key)
    with AuditLog(Path(directory), key, checkpoint_every=25) as log:
        start.wait(timeout=60)
        for batch in range(batches):
            log.append(
                [
                    AuditEvent(f"worker-{worker}", "request", "upstream", "allow", "ok", {"batch": batch, "i": i})
                    for i in range(per_batch)
                ]
            )
