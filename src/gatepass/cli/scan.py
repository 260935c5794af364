"""``gatepass scan``: find vault secrets, canaries and credential formats in files, folders or stdin.

The vault's secrets and every agent's canary decoys are looked for (in raw form and the encodings
the leak guard knows) when the home opens; otherwise only credential formats are, and one line on
stderr says so. Folders are walked without following symbolic links (a link inside the tree points
at a file the walk reaches anyway, or out of the tree, where the scan does not go) and without
version-control folders.
Files over ``--max-size`` are skipped with a note; binary files (a NUL byte in their first 8 KiB)
are skipped unless ``--binary``, since line and column mean little there and a redacted copy of one
would be broken. Findings never show the value.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple

import click

from gatepass.cli.output import echo_json, note
from gatepass.control.app import Gatepass
from gatepass.control.canaries import canary_literals
from gatepass.errors import ConflictError, GatepassError, InvalidInputError
from gatepass.leakguard import Finding, LeakScanner

__all__ = ["register"]

STDIN: Final = "-"
SKIP_DIRS: Final = frozenset({".git", ".hg", ".svn"})
_SNIFF = 8192
_MIB = 1024 * 1024


class _Known(NamedTuple):
    """How many vault secrets and canaries the scanner looks for."""

    secrets: int
    canaries: int


@dataclass(frozen=True, slots=True)
class _Row:
    path: str
    line: int
    column: int
    finding: Finding


@dataclass
class _Report:
    """What one run found and left out; ``kept`` holds the data to redact (with ``--redact`` only)."""

    rows: list[_Row] = field(default_factory=list)
    kept: dict[str, tuple[bytes, list[Finding]]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    inputs: int = 0
    size: int = 0


def _load_scanner() -> tuple[LeakScanner, _Known | None, str | None]:
    """A scanner holding the vault's secrets and the canaries' decoys (named by canary id), and how
    many; for formats only (and why) when the home or the vault does not open."""
    try:
        with Gatepass.open(env=os.environ) as app:
            vault = app.vault
            with app.read() as tx:
                sealed, planted = tx.list_secrets(), tx.list_canaries()
            values = [(s.name, vault.open_secret(s).reveal().encode("utf-8")) for s in sealed]
            decoys = [(c.id, v.encode("utf-8")) for c in planted for v in canary_literals(vault, c)]
    except GatepassError as exc:
        return LeakScanner(), None, exc.message
    return LeakScanner(values, decoys), _Known(len(values), len(planted)), None


def _read(path: str, limit: int) -> bytes | None:
    """The file's bytes, or None when it holds more than ``limit`` bytes."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    return None if len(data) > limit else data


def _walk(root: str, report: _Report) -> Iterator[str]:
    """Regular files under ``root``, sorted, skipping version-control folders and symbolic links."""
    for folder, dirs, files in os.walk(root, onerror=lambda exc: report.skipped.append((exc.filename, "unreadable"))):
        links = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and d not in links)
        for name in sorted([*files, *links]):
            path = os.path.join(folder, name)
            if os.path.islink(path):
                report.skipped.append((path, "symbolic link"))
            elif os.path.isfile(path):
                yield path


def _targets(paths: Sequence[str], report: _Report) -> Iterator[str]:
    for path in paths:
        if path != STDIN and os.path.isdir(path):
            yield from _walk(path, report)
        else:
            yield path


def _check_paths(paths: Sequence[str], scanner: LeakScanner) -> None:
    for path in paths:
        if path == STDIN or os.path.lexists(path):
            continue
        if scanner.scan(path.encode("utf-8", "surrogateescape"), limit=1):
            # Never echo it: a credential typed where a file name was meant.
            raise InvalidInputError(
                "an argument is neither a file nor a folder and looks like a credential: "
                "to check a value, pipe it on stdin (... | gatepass scan -)"
            )
        raise InvalidInputError(f"no such file or folder: {path}; check the path, or use - to read stdin")


def _scan(paths: Sequence[str], scanner: LeakScanner, *, max_size: int, binary: bool, keep: bool) -> _Report:
    report = _Report()
    for path in _targets(paths, report):
        try:
            data = sys.stdin.buffer.read() if path == STDIN else _read(path, max_size)
        except OSError as exc:
            note(f"cannot read {path}: {exc.strerror or exc.__class__.__name__}; skipped")
            report.skipped.append((path, "unreadable"))
            continue
        if data is None:
            note(f"skipped {path}: larger than {max_size // _MIB} MiB (raise --max-size to scan it)")
            report.skipped.append((path, "too large"))
            continue
        if path != STDIN and not binary and b"\0" in data[:_SNIFF]:
            report.skipped.append((path, "binary"))
            continue
        report.inputs += 1
        report.size += len(data)
        findings = scanner.scan(data)
        for (line, column), finding in zip(_positions(data, findings), findings, strict=True):
            report.rows.append(_Row(path, line, column, finding))
        if keep and (findings or path == STDIN):
            report.kept[path] = (data, findings)
    return report


def _positions(data: bytes, findings: Sequence[Finding]) -> list[tuple[int, int]]:
    """(line, column) of each finding, both from 1; columns count characters (UTF-8), not bytes."""
    newlines = [m.start() for m in re.finditer(b"\n", data)]
    out = []
    for f in findings:
        line = bisect.bisect_left(newlines, f.start)
        line_start = newlines[line - 1] + 1 if line else 0
        out.append((line + 1, len(data[line_start : f.start].decode("utf-8", "replace")) + 1))
    return out


def _write_private(path: str, data: bytes, *, force: bool) -> None:
    """Write a new 0600 file; with ``force``, replace whatever is at ``path`` (a link itself, not its target)."""
    if not force:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        return
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", prefix=".gatepass-scan-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except BaseException:
        os.unlink(temp)
        raise


def _print(report: _Report, known: _Known | None, *, as_json: bool, to_stderr: bool) -> None:
    """The findings: one line each (on stderr when stdout carries a redacted stream), or one JSON document."""
    if not as_json:
        for row in report.rows:
            f = row.finding
            encoding = "" if f.encoding == "raw" else f", {f.encoding}"
            click.echo(f"{row.path}:{row.line}:{row.column}: {f.name} ({f.kind}{encoding})", err=to_stderr)
        return
    echo_json(
        {
            "findings": [
                {
                    "path": row.path,
                    "line": row.line,
                    "column": row.column,
                    "kind": row.finding.kind,
                    "name": row.finding.name,
                    "encoding": row.finding.encoding,
                }
                for row in report.rows
            ],
            "inputs_scanned": report.inputs,
            "skipped": [{"path": path, "reason": reason} for path, reason in report.skipped],
            "vault_secrets": None if known is None else known.secrets,
            "canaries": None if known is None else known.canaries,
        }
    )


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1024 else f"{n / 1024:.1f} KiB" if n < _MIB else f"{n / _MIB:.1f} MiB"


def _summary(report: _Report, known: _Known | None) -> str:
    found, inputs = len(report.rows), report.inputs
    with_findings = len({row.path for row in report.rows})
    text = f"{found} finding{'s' * (found != 1)} in {with_findings} of {inputs} input{'s' * (inputs != 1)}"
    text += f" ({_size(report.size)})"
    reasons: dict[str, int] = {}
    for _, reason in report.skipped:
        reasons[reason] = reasons.get(reason, 0) + 1
    if reasons:
        text += "; skipped " + ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        if "binary" in reasons:
            text += " (--binary scans binary files)"
    if known is None:
        return text + "; looked for credential formats only"
    text += f"; looked for {known.secrets} vault secret{'s' * (known.secrets != 1)}"
    if known.canaries:
        text += f", {known.canaries} canar{'ies' if known.canaries != 1 else 'y'}"
    return text + " and credential formats"


@click.command("scan")
@click.argument("paths", nargs=-1, metavar="[PATH ...|-]")
@click.option(
    "--redact",
    is_flag=True,
    help="Write PATH.redacted (0600) beside each file with findings; for -, print the redacted stream.",
)
@click.option("--force", is_flag=True, help="With --redact, replace an existing PATH.redacted.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (findings, skipped inputs) for CI.")
@click.option("--binary", is_flag=True, help="Also scan files that look binary (a NUL byte in the first 8 KiB).")
@click.option(
    "--max-size", type=click.IntRange(1), default=16, show_default=True, metavar="MIB", help="Skip larger files (MiB)."
)
@click.pass_context
def scan_command(
    ctx: click.Context, paths: tuple[str, ...], redact: bool, force: bool, as_json: bool, binary: bool, max_size: int
) -> None:
    """Find vault secrets, canaries and credential formats in files, folders (recursively) or stdin (-).

    \b
    gatepass scan .                        # a working tree (.git, .hg and .svn are skipped)
    git diff --cached | gatepass scan -    # what is about to be committed
    gatepass scan --json logs/ > findings.json
    gatepass scan --redact agent.log       # writes agent.log.redacted, leaves agent.log alone

    Prints PATH:LINE:COLUMN: NAME (KIND[, ENCODING]) per finding, never the value (a canary is named
    by its id); a summary goes to stderr. Vault secrets and canaries are looked for when the gatepass
    home opens, credential formats always.
    Exit status: 0 clean, 1 findings, 2 usage error.
    """
    if not paths:
        if sys.stdin is None or sys.stdin.isatty():
            raise InvalidInputError("nothing to scan: give a file or folder, or - to read stdin")
        paths = (STDIN,)
    if paths.count(STDIN) > 1:
        raise InvalidInputError("stdin (-) can be scanned once per run")
    if redact and as_json and STDIN in paths:
        raise InvalidInputError("--json cannot go with --redact on stdin: stdout carries the redacted stream")
    if force and not redact:
        raise InvalidInputError("--force only applies with --redact")
    scanner, known, why_not = _load_scanner()
    _check_paths(paths, scanner)
    if why_not:
        note(f"gatepass: no vault secrets or canaries to look for ({why_not}); looking for credential formats only")
    for skipped in scanner.skipped:
        note(f"{skipped.kind} {skipped.name} is not looked for: {skipped.reason}")
    report = _scan(paths, scanner, max_size=max_size * _MIB, binary=binary, keep=redact)
    copies = [(path, path + ".redacted") for path, (_, findings) in report.kept.items() if findings and path != STDIN]
    if redact and not force:
        taken = [target for _, target in copies if os.path.lexists(target)]
        if taken:
            raise ConflictError(f"{taken[0]} already exists: remove it, or pass --force to replace it")

    _print(report, known, as_json=as_json, to_stderr=redact and STDIN in paths)
    for path, target in copies:
        data, findings = report.kept[path]
        _write_private(target, scanner.redact(data, findings), force=force)
        note(f"wrote {target} ({len(findings)} finding{'s' * (len(findings) != 1)} redacted)")
    if STDIN in report.kept:
        data, findings = report.kept[STDIN]
        sys.stdout.flush()
        sys.stdout.buffer.write(scanner.redact(data, findings))
        sys.stdout.buffer.flush()
    note(_summary(report, known))
    ctx.exit(1 if report.rows else 0)


def register(cli: click.Group) -> None:
    cli.add_command(scan_command)
