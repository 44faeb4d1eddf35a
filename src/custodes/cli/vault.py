"""``custodes vault ...``, ``custodes keys ...`` and ``custodes audit ...``: the record
vault, its keys and its audit log."""

from __future__ import annotations

import getpass
import gzip
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from custodes.audit import AuditEntry, audit_events_ndjson
from custodes.core.accounts import Role
from custodes.core.errors import CustodesError, InputFormatError
from custodes.core.events import Action
from custodes.vault.resources import transaction_bundle
from custodes.vault.service import Requester, plan_transaction

if TYPE_CHECKING:
    from custodes.bootstrap import Custodes

out = Console()
err = Console(stderr=True)

vault_app = typer.Typer(help="The encrypted FHIR record vault.", no_args_is_help=True)
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
    app.add_typer(vault_app, name="vault")
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")


# --- the vault --------------------------------------------------------------------------


def _operator() -> Requester:
    """Whoever runs the CLI: an administrator (every use reviewed), who already holds the
    data directory's key files, so no second factor would add anything."""
    return Requester(f"cli:{getpass.getuser()}", Role.ADMINISTRATOR, step_up_fresh=True)


_SUFFIXES = (".json", ".json.gz", ".ndjson", ".ndjson.gz")


def _bundle_files(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.name.endswith(_SUFFIXES)))
        elif path.is_file():
            files.append(path)
        else:
            raise InputFormatError(f"{path} does not exist")
    return files


#: Resources per transaction when an NDJSON file is imported (each chunk all or nothing).
NDJSON_CHUNK = 1000


def _plan_file(path: Path) -> list[tuple[str, list | None, str | None]]:
    """Read and validate one file (in a worker process): its transactions, or why not.

    A Bundle file is one transaction; an NDJSON file of resources is imported in chunks
    of ``NDJSON_CHUNK``, each stored under the resources' own ids.
    """
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        if ".ndjson" in path.name:
            lines = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
            chunks = [lines[i : i + NDJSON_CHUNK] for i in range(0, len(lines), NDJSON_CHUNK)]
            labels = [f"{path.name}:{1 + i * NDJSON_CHUNK}" for i in range(len(chunks))]
            bundles = [transaction_bundle(chunk) for chunk in chunks]
        else:
            labels, bundles = [path.name], [orjson.loads(raw)]
    except (OSError, EOFError, gzip.BadGzipFile, orjson.JSONDecodeError):
        return [(path.name, None, "not a readable JSON or NDJSON file")]
    results: list[tuple[str, list | None, str | None]] = []
    for label, bundle in zip(labels, bundles, strict=True):
        try:
            results.append((label, plan_transaction(bundle), None))
        except CustodesError as error:
            results.append((label, None, str(error)))
    return results


@vault_app.command("import")
def vault_import(
    paths: Annotated[
        list[Path], typer.Argument(help="Transaction Bundles (.json), NDJSON resources (.ndjson), .gz or not, or folders.")
    ],
    workers: Annotated[int, typer.Option(help="Processes that read and validate Bundles.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Import FHIR transaction Bundles (Synthea's, say) or NDJSON resources, all or nothing
    per Bundle (per 1,000 lines of NDJSON).

    A Bundle that does not validate is reported with the reason and skipped; the others
    are stored. Importing the same Bundle again stores nothing twice.
    """
    files = _bundle_files(paths)
    if not files:
        raise InputFormatError("no Bundle or NDJSON files (.json, .ndjson, optionally .gz) found")
    custodes = _custodes()
    vault = custodes.vault
    who = _operator()
    workers = workers or min(len(files), os.cpu_count() or 1)
    imported = resources = 0
    refused: list[dict[str, str]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) if workers > 1 else _Inline() as pool, \
            Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), console=err,
                     disable=as_json or not err.is_terminal) as bar:  # fmt: skip
        task = bar.add_task("bundles", total=len(files))
        for items in pool.map(_plan_file, files):
            for name, plans, problem in items:
                if plans is not None:
                    try:
                        vault.commit_transaction(who, plans)
                    except CustodesError as error:
                        problem = str(error)
                if problem is None:
                    imported += 1
                    resources += len(plans)
                else:
                    refused.append({"file": name, "reason": problem})
            bar.advance(task)
    seconds = time.perf_counter() - started
    report = {"bundles": imported, "resources": resources, "refused": refused,
              "seconds": round(seconds, 2), "resources_per_second": round(resources / seconds) if seconds else 0}  # fmt: skip
    if as_json:
        _print_json(report)
    else:
        out.print(f"imported {imported:,} bundle(s), {resources:,} resources in {seconds:.1f} s "
                  f"({report['resources_per_second']:,}/s)")  # fmt: skip
        for item in refused:
            err.print(f"refused {item['file']}: {item['reason']}")
    if not imported:
        raise typer.Exit(1)


class _Inline:
    """A stand-in for a process pool of one: maps in this process."""

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def map(self, fn, items):
        return map(fn, items)


@vault_app.command("read")
def vault_read(
    reference: Annotated[str, typer.Argument(help="Type/id, e.g. Patient/0a1b...")],
) -> None:
    """Print one record as JSON (audited as an administrator's read)."""
    resource_type, _, record_id = reference.partition("/")
    if not record_id:
        raise InputFormatError("give the record as Type/id")
    _print_json(_custodes().vault.read(_operator(), resource_type, record_id))


@vault_app.command("status")
def vault_status(as_json: JsonOpt = False) -> None:
    """How many records the vault holds, by type."""
    counts = _custodes().vault.counts()
    if as_json:
        _print_json({"records": counts, "total": sum(counts.values())})
        return
    table = Table(title="vault", show_header=True)
    table.add_column("type")
    table.add_column("records", justify="right")
    for resource_type, count in sorted(counts.items()):
        table.add_row(resource_type, f"{count:,}")
    out.print(table)


@vault_app.command("erase")
def vault_erase(
    patient_id: Annotated[str, typer.Argument(help="The Patient's id.")],
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: this cannot be undone.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Crypto-shred a patient: destroy their keys and every version of their records.

    Backups taken before still hold wrapped copies of those keys until the key version
    that wrapped them is retired: run `custodes keys rotate` afterwards.
    """
    if not yes:
        raise InputFormatError("erasing a patient cannot be undone; add --yes")
    result = _custodes().vault.erase_patient(_operator(), patient_id)
    if as_json:
        _print_json(result)
    else:
        out.print(f"destroyed {result['keys_destroyed']} key(s) and {result['versions_erased']} record version(s); "
                  "now run `custodes keys rotate` so backups' copies of the keys die too")  # fmt: skip
