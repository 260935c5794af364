"""``gatepass audit ...``: read, verify and export the tamper-evident audit log."""

from __future__ import annotations

import base64
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gatepass.audit import (
    AuditRecord,
    VerifyReport,
    key_id_of,
    tail_directory,
    verify_directory,
    verify_export,
    write_export,
)
from gatepass.cli.common import json_option, open_app
from gatepass.cli.output import echo_json, note
from gatepass.errors import InvalidInputError
from gatepass.units import parse_duration

__all__ = ["register"]


@click.group("audit")
def audit_group() -> None:
    """The append-only, hash-chained, signed audit log of every decision and change."""


@audit_group.command("tail")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=20, show_default=True, help="How many records.")
@click.option("--agent", help="Only records about this agent.")
@click.option("--action", help="Only actions starting with this (e.g. key. or agent.create).")
@click.option("--since", metavar="DURATION", help="Only records of the last DURATION (e.g. 1h, 7d).")
@json_option
@click.pass_context
def audit_tail(
    ctx: click.Context, count: int, agent: str | None, action: str | None, since: str | None, as_json: bool
) -> None:
    """The last records of the audit log, oldest first."""
    app = open_app(ctx)
    cutoff = (app.now() - parse_duration(since, what="--since")) if since else None

    def wanted(record: AuditRecord) -> bool:
        if agent is not None and record.target != agent and record.meta.get("agent") != agent:
            return False
        if action is not None and not record.action.startswith(action):
            return False
        return cutoff is None or datetime.fromisoformat(record.ts) >= cutoff

    records = tail_directory(app.home.audit_dir, count, wanted)
    if as_json:
        echo_json([r.as_dict() for r in records])
        return
    if not records:
        note("no matching audit records")
    for r in records:
        meta = json.dumps(r.meta, ensure_ascii=False, sort_keys=True, separators=(",", ":")) if r.meta else ""
        click.echo(f"{r.ts} #{r.seq} {r.actor} {r.action} {r.target} {r.decision} {r.reason} {meta}".rstrip())


def _load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (OSError, ValueError, UnicodeDecodeError):
        raise InvalidInputError(
            f"cannot read an Ed25519 public key (base64) from {path}: "
            "use the home's audit.pub or the key printed by gatepass audit verify"
        ) from None


def _report_json(report: VerifyReport, key_id: str) -> dict[str, Any]:
    problem = report.problem
    return {
        "ok": report.ok,
        "records": report.records,
        "checkpoints": report.checkpoints,
        "last_seq": report.last_seq,
        "last_checkpoint_seq": report.last_checkpoint_seq,
        "key_id": key_id,
        "problem": None
        if problem is None
        else {"kind": problem.kind.value, "seq": problem.seq, "line": problem.line, "message": problem.message},
        "notes": list(report.notes),
    }


@audit_group.command("verify")
@click.option(
    "--file",
    "export_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Verify an export made by gatepass audit export instead of the home's log.",
)
@click.option(
    "--public-key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Trust this public key (base64 Ed25519, e.g. a copy of audit.pub kept elsewhere).",
)
@json_option
@click.pass_context
def audit_verify(ctx: click.Context, export_file: Path | None, key_file: Path | None, as_json: bool) -> None:
    """Check the hash chain and the signed checkpoints. Exit 1 at the first bad record.

    Detects any edit, deletion, reordering, and truncation up to the last checkpoint.
    """
    app = open_app(ctx)
    public_key = _load_public_key(key_file) if key_file else app.public_key()
    # A crash between a batch's fsync and its checkpoint can leave one batch more unsigned.
    max_unchecked = app.config.audit.checkpoint_every + 4096
    if export_file is not None:
        with export_file.open("rb") as stream:
            report = verify_export(stream, public_key, max_unchecked=max_unchecked)
    else:
        report = verify_directory(app.home.audit_dir, public_key, max_unchecked=max_unchecked)
    key_id = key_id_of(public_key)
    if as_json:
        echo_json(_report_json(report, key_id))
    elif report.problem is not None:
        where = f"record {report.problem.seq}" if report.problem.seq is not None else f"line {report.problem.line}"
        click.echo(f"TAMPERED: {where}: {report.problem.kind.value}: {report.problem.message}")
    else:
        click.echo(
            f"ok: {report.records} records, {report.checkpoints} signed checkpoints "
            f"(last at record {report.last_checkpoint_seq}), signing key {key_id}"
        )
    for line in report.notes:
        note(f"note: {line}")
    ctx.exit(0 if report.ok else 1)


@audit_group.command("export")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file (created 0600) instead of stdout.",
)
@click.pass_context
def audit_export(ctx: click.Context, output: Path | None) -> None:
    """A self-contained copy of the log, its checkpoints and public key, verifiable with verify --file."""
    app = open_app(ctx)
    public_key = app.public_key()
    if output is None:
        stats = write_export(app.home.audit_dir, public_key, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        if output.exists():
            raise InvalidInputError(f"{output} exists: choose another file name")
        with output.open("xb") as out:
            output.chmod(0o600)
            stats = write_export(app.home.audit_dir, public_key, out)
    note(f"exported {stats.records} records and {stats.checkpoints} checkpoints")


def register(cli: click.Group) -> None:
    cli.add_command(audit_group)
