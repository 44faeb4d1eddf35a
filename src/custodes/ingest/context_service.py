"""Context ingestion: roster, patients, encounters, relations, departments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from custodes.context import HospitalContext
from custodes.core.errors import InputFormatError
from custodes.core.ports import ContextStore, QuarantineSink
from custodes.ingest.base import sniff_format
from custodes.ingest.context_batch import ContextBatch
from custodes.ingest.csv_context import read_csv_context
from custodes.ingest.fhir_context import read_fhir_context
from custodes.ingest.service import Progress

CONTEXT_FORMATS = ("fhir", "csv")


@dataclass
class ContextReport:
    """What a context run did; ``skipped`` counts resources that are not context."""

    read: int = 0
    accepted: int = 0
    quarantined: int = 0
    skipped: int = 0
    stored: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, int]:
        # Context is upserted by id: a re-load replaces, so there are no duplicates to count.
        return {
            "read": self.read,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "duplicates": 0,
        }


def read_context_file(path: Path, fmt: str | None = None) -> ContextBatch:
    fmt = fmt or sniff_format(path)
    if fmt == "fhir":
        return read_fhir_context(path)
    if fmt == "csv":
        return read_csv_context(path)
    raise InputFormatError(
        f"unknown context format {fmt!r}; choose one of {', '.join(CONTEXT_FORMATS)}"
    )


def ingest_context_files(
    paths: Sequence[Path],
    store: ContextStore,
    quarantine: QuarantineSink,
    *,
    fmt: str | None = None,
    progress: Progress | None = None,
) -> ContextReport:
    """Read every file and upsert what it holds; quarantine the rest."""
    report = ContextReport()
    stored = dict.fromkeys(("staff", "patients", "encounters", "related_persons", "departments"), 0)
    for path in paths:  # all checked before any is read
        if not path.is_file():
            raise InputFormatError(f"{path} is not a file")
    for number, path in enumerate(paths, start=1):
        batch = read_context_file(path, fmt)
        stored["staff"] += store.upsert_staff(batch.staff)
        stored["patients"] += store.upsert_patients(batch.patients)
        stored["encounters"] += store.upsert_encounters(batch.encounters)
        stored["related_persons"] += store.upsert_related_persons(batch.related_persons)
        stored["departments"] += store.upsert_departments(batch.departments)
        quarantine.quarantine(batch.quarantined)
        report.read += batch.records_read
        report.accepted += batch.accepted
        report.quarantined += len(batch.quarantined)
        report.skipped += batch.skipped
        report.files.append(path.name)
        if progress is not None:
            progress(path, number, len(paths))
    report.stored = stored
    return report


#: File names a context folder may hold; anything else in the folder is ignored.
_CONTEXT_SUFFIXES = (".csv", ".ndjson", ".json", ".csv.gz", ".ndjson.gz", ".json.gz")


def context_files_in(folder: Path) -> list[Path]:
    """The context files of a folder (CSV and FHIR), sorted by name."""
    if not folder.is_dir():
        raise InputFormatError(f"{folder} is not a folder of context files")
    files = sorted(
        p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(_CONTEXT_SUFFIXES)
    )
    if not files:
        raise InputFormatError(f"{folder} holds no context files (.csv, .ndjson, .json)")
    return files


def read_context_folder(folder: Path) -> tuple[HospitalContext, ContextBatch]:
    """Read every context file of a folder into join-ready tables.

    Returns the tables and the merged batch (its ``quarantined`` list says what was
    refused, and why).
    """
    batch = ContextBatch()
    for path in context_files_in(folder):
        batch.extend(read_context_file(path))
    context = HospitalContext.from_entities(
        batch.staff, batch.patients, batch.encounters, batch.related_persons
    )
    return context, batch
