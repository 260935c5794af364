"""The leak guard: finds vault secrets, canaries and credential formats in what crosses the gateway.

    scanner = LeakScanner(secrets=[("anthropic-main", value)], canaries=[...])
    findings = scanner.scan(body, allow_key=own_key, limit=1)   # a request: block at the first
    redactor = StreamRedactor(scanner)                            # a response: redact echoed secrets
    for chunk in upstream: send(redactor.feed(chunk))
    send(redactor.flush())

Values travel in the forms :func:`~gatepass.leakguard.variants.encoded_forms` lists (raw, base64 at
every alignment, URL, hex, JSON); values under :data:`MIN_SECRET_BYTES` are skipped and reported in
:attr:`LeakScanner.skipped`. Findings and reprs never carry a value.
"""

from gatepass.leakguard.scanner import MIN_SECRET_BYTES, Finding, LeakScanner, Skipped
from gatepass.leakguard.stream import StreamRedactor

__all__ = ["MIN_SECRET_BYTES", "Finding", "LeakScanner", "Skipped", "StreamRedactor"]
