"""``custodes keys ...`` and ``custodes audit ...``: the record vault's keys and audit log."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from custodes.audit import AuditEntry, audit_events_ndjson
from custodes.core.errors import InputFormatError
from custodes.core.events import Action

if TYPE_CHECKING:
    from custodes.bootstrap import Custodes

out = Console()
err = Console(stderr=True)

keys_app = typer.Typer(help="The record vault's encryption keys.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)

_factory: Callable[[], Custodes] | None = None
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def _custodes() -> Custodes:
    assert _factory is not None, "register() sets the factory"
    return _factory()


def _print_json(value: object) -> None:
    out.print(orjson.dumps(value).decode(), soft_wrap=True, highlight=False)


@keys_app.command("status")
def keys_status(as_json: JsonOpt = False) -> None:
    """Key versions, and how many scope keys each one wraps."""
    status = _custodes().envelope.status()
    if as_json:
        _print_json(status)
        return
    table = Table(title="keys", show_header=False)
    table.add_row("current version", str(status["current_version"]))
    table.add_row("live versions", ", ".join(map(str, status["versions"])))
    for version, count in status["scope_keys_by_version"].items():
        table.add_row(f"scope keys under v{version}", f"{count:,}")
    out.print(table)


@keys_app.command("rotate")
def keys_rotate(as_json: JsonOpt = False) -> None:
    """Add a key version and rewrap every scope key under it (the data is not touched).

    Old versions retire once nothing uses them. Interrupted, run it again: it finishes
    the rewrapping and retires what it can.
    """
    custodes = _custodes()
    cipher = custodes.envelope
    before = custodes.key_service.current_version()
    bar = Progress(TextColumn("rewrapping scope keys"), BarColumn(), MofNCompleteColumn(),
                   console=err, transient=True, disable=as_json or not err.is_terminal)  # fmt: skip
    total = 0
    with bar:
        task = bar.add_task("rewrap", total=None)
        for step in cipher.rotate():
            total = step.total
            bar.update(task, completed=step.done, total=step.total)
    after = custodes.key_service.current_version()
    custodes.audit_log.record(AuditEntry(
        custodes.clock.now(), "cli", Action.EXECUTE, review=True,
        detail={"operation": "keys.rotate", "from_version": str(before), "to_version": str(after)},
    ))  # fmt: skip
    summary = {"version": after, "rewrapped": total, "live_versions": custodes.key_service.versions()}
    if as_json:
        _print_json(summary)
        return
    out.print(f"key version {after} is current; {total:,} scope key(s) rewrapped; "
              f"live versions: {', '.join(map(str, summary['live_versions']))}")  # fmt: skip


@audit_app.command("verify")
def audit_verify(
    no_root: Annotated[
        bool, typer.Option("--no-root", help="Skip recomputing the newest checkpoint's Merkle root.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check every hash link and every signed checkpoint; exit 1 naming the first bad entry."""
    custodes = _custodes()
    report = custodes.audit_log.verify(
        custodes.audit_signing_key().public_key(),
        check_root=not no_root,
        workers=custodes.settings.workers,
    )
    if as_json:
        _print_json(report.as_json())
    elif report.ok:
        out.print(f"audit log verifies: {report.entries:,} entries, {report.checkpoints:,} signed checkpoint(s)")
    if not report.ok:
        err.print(f"audit log does not verify at position {report.first_bad}: {report.problem}",
                  highlight=False, markup=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1)


@audit_app.command("review")
def audit_review(
    limit: Annotated[int, typer.Option("--limit", min=1, help="Entries to show, newest first.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Entries queued for a privacy officer's review: break-the-glass, administrator acts."""
    rows = [(row.position, AuditEntry.from_body(row.body)) for row in _custodes().audit_store.read()]
    queued = [(p, e) for p, e in reversed(rows) if e.review][:limit]
    if as_json:
        _print_json({"review": [
            {"position": p, "time": e.time.isoformat(), "actor": e.actor, "role": e.role,
             "action": str(e.action), "allowed": e.allowed, "patient_id": e.patient_id,
             "break_the_glass": e.break_the_glass, "reason": e.reason}
            for p, e in queued
        ]})  # fmt: skip
        return
    table = Table("position", "time", "actor", "action", "patient", "why", title="queued for review")
    for p, e in queued:
        why = f"break-the-glass: {e.reason}" if e.break_the_glass else (e.role or "")
        table.add_row(str(p), e.time.isoformat(timespec="seconds"), e.actor, str(e.action),
                      e.patient_id or "", why)  # fmt: skip
    out.print(table)


@audit_app.command("export")
def audit_export(
    fmt: Annotated[str, typer.Option("--format", help="Export format: fhir (AuditEvent NDJSON).")] = "fhir",
    out_path: Annotated[
        Path | None, typer.Option("--out", help="File to write (default: standard output).")
    ] = None,
    start: Annotated[int, typer.Option("--from", min=0, help="First position.")] = 0,
) -> None:
    """Write the log as FHIR AuditEvents (IHE BALP), one per line; `custodes ingest` reads them."""
    if fmt != "fhir":
        raise InputFormatError(f"--format {fmt!r} is not supported; use fhir")
    rows = _custodes().audit_store.read(start)
    lines = audit_events_ndjson(rows)
    if out_path is None:
        for line in lines:
            sys.stdout.buffer.write(line)
        sys.stdout.flush()
        return
    with out_path.open("wb") as handle:
        handle.writelines(lines)
    err.print(f"{len(rows):,} AuditEvent(s) written to {out_path}")


def register(app: typer.Typer, factory: Callable[[], Custodes]) -> None:
    global _factory
    _factory = factory
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
