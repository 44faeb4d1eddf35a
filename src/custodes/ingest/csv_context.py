"""Context CSVs (roster, patients, encounters, related persons) to ``core`` entities.

One file holds one kind, comma-separated, UTF-8, with a header row; plain or gzip.
The kind is named by the caller or detected from the header: the first of
``encounters``, ``related_persons``, ``patients``, ``staff`` whose id column
(``encounter_id``, ``related_id``, ``patient_id``, ``staff_id``) the header has. The
order matters because a kind's id appears in the kinds before it as a reference
(an encounter names its ``patient_id``, a patient its ``staff_id``). Columns may come in
any order and in any case; columns not listed here are ignored.

=================== =========================== =============================================
kind                required columns            other columns
=================== =========================== =============================================
``staff``           staff_id                    family_name, given_names, role, department,
                                                address_line, city, state, postal_code,
                                                hire_date, termination_date
``patients``        patient_id                  family_name, given_names, address_line, city,
                                                state, postal_code, birth_date, deceased, vip,
                                                staff_id, sensitive_categories
``encounters``      encounter_id, patient_id,   department, end, attending_id, care_team,
                    start                       encounter_class
``related_persons`` related_id, patient_id      relationship, family_name, given_names,
                                                address_line, city, state, postal_code,
                                                staff_id
=================== =========================== =============================================

Cell values:

- empty cells are absent; surrounding spaces are dropped;
- ``given_names``, ``care_team`` and ``sensitive_categories`` hold several values
  separated by ``;``; sensitive categories are lower-cased (``hiv``, ``substance-use``,
  ``mental-health``, ``reproductive``, ``genetics``, ...);
- dates (``hire_date``, ``termination_date``, ``birth_date``) are ``YYYY-MM-DD``;
- date-times (``start``, ``end``) are ISO 8601 (``2024-03-01T14:05:00+01:00``); one
  without an offset is UTC, a date alone is midnight UTC;
- ``vip`` is ``true``/``false`` (also ``yes``/``no``, ``y``/``n``, ``1``/``0``), empty
  for false; ``deceased`` is one of those or the date or date-time of death;
- ``encounter_class`` takes words (``inpatient``) or v3 ActEncounterCode codes (``IMP``,
  ``EMER``, ``AMB``), mapped as the FHIR reader maps them;
- ``relationship`` is an HL7 v3 RoleCode (``MTH``, ``SPS``) or plain words.

Rows that cannot be used are quarantined with their line number (the header is line 1;
a row with a quoted line break is numbered by its first line) and a reason that never
quotes a value: a field count that differs from the header's, a missing required
field, a bad date, a bad boolean, an end before the start, an id already seen in the
file (the first is kept), text that is not UTF-8. A header that names no kind, or lacks
a required column of the kind asked for, raises ``InputFormatError``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

from custodes.core.entities import Address, Encounter, Patient, RelatedPerson, StaffMember
from custodes.core.errors import InputFormatError
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import open_source
from custodes.ingest.context_batch import ContextBatch
from custodes.ingest.fhir_context import ENCOUNTER_CLASS_WORDS

FORMAT_NAME = "csv-context"

#: Every column each kind reads, in the documented order.
CONTEXT_CSV_HEADERS: dict[str, tuple[str, ...]] = {
    "staff": (
        "staff_id",
        "family_name",
        "given_names",
        "role",
        "department",
        "address_line",
        "city",
        "state",
        "postal_code",
        "hire_date",
        "termination_date",
    ),
    "patients": (
        "patient_id",
        "family_name",
        "given_names",
        "address_line",
        "city",
        "state",
        "postal_code",
        "birth_date",
        "deceased",
        "vip",
        "staff_id",
        "sensitive_categories",
    ),
    "encounters": (
        "encounter_id",
        "patient_id",
        "department",
        "start",
        "end",
        "attending_id",
        "care_team",
        "encounter_class",
    ),
    "related_persons": (
        "related_id",
        "patient_id",
        "relationship",
        "family_name",
        "given_names",
        "address_line",
        "city",
        "state",
        "postal_code",
        "staff_id",
    ),
}

#: The columns a header must have for each kind; a row must fill them.
REQUIRED_CONTEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "staff": ("staff_id",),
    "patients": ("patient_id",),
    "encounters": ("encounter_id", "patient_id", "start"),
    "related_persons": ("related_id", "patient_id"),
}

#: Detection order, most specific first, with the id column that names each kind.
_KIND_BY_ID_COLUMN: tuple[tuple[str, str], ...] = (
    ("encounters", "encounter_id"),
    ("related_persons", "related_id"),
    ("patients", "patient_id"),
    ("staff", "staff_id"),
)

_MULTI_VALUE_SEPARATOR = ";"
_TRUE = frozenset({"true", "yes", "y", "1"})
_FALSE = frozenset({"false", "no", "n", "0"})
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?"
)
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of bad bytes


class _BadRow(Exception):
    """A row that cannot be used; the message is the quarantine reason (no values)."""


_Row = dict[str, str | None]


def read_csv_context(path: Path, kind: str | None = None) -> ContextBatch:
    """Read one context CSV.

    Parameters
    ----------
    path: the file, plain or gzip.
    kind: ``staff``, ``patients``, ``encounters`` or ``related_persons``; detected from
        the header when None.

    Returns
    -------
    The entities of that kind, the quarantined rows and the counts.

    Raises
    ------
    InputFormatError: the file is empty, or its header names no kind or lacks a
        required column.
    ValueError: ``kind`` is not one of the four.
    """
    if kind is not None and kind not in CONTEXT_CSV_HEADERS:
        raise ValueError(
            f"unknown context CSV kind {kind!r}; one of {', '.join(CONTEXT_CSV_HEADERS)}"
        )
    with open_source(path) as handle:
        data = handle.read()
    # Bad bytes survive decoding as lone surrogates, so only their rows are quarantined.
    text = data.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="surrogateescape")
    lines = _LINE.findall(text)
    records = _records(lines)
    header_record = next(records, None)
    if header_record is None:
        raise InputFormatError(f"{path.name} is empty: {_expected()}")
    _, _, header_fields = header_record
    header = [_NOT_UTF8.sub("?", name).strip().lower() for name in header_fields]
    kind = _check_header(header, kind, path.name)
    return _read_rows(records, header, kind, lines, path.name)


def _expected() -> str:
    kinds = "; ".join(
        f"{name} ({', '.join(columns)})" for name, columns in REQUIRED_CONTEXT_COLUMNS.items()
    )
    return f"context CSV kinds and their required columns: {kinds}"


def _check_header(header: list[str], kind: str | None, file_name: str) -> str:
    present = set(header)
    if kind is None:
        kind = next((k for k, id_column in _KIND_BY_ID_COLUMN if id_column in present), None)
        if kind is None:
            raise InputFormatError(f"{file_name}: the header names no context kind; {_expected()}")
    missing = [c for c in REQUIRED_CONTEXT_COLUMNS[kind] if c not in present]
    if missing:
        raise InputFormatError(
            f"{file_name}: the {kind} header lacks {', '.join(missing)}; {_expected()}"
        )
    known = set(CONTEXT_CSV_HEADERS[kind])
    repeated = sorted({c for c in header if c in known and header.count(c) > 1})
    if repeated:
        raise InputFormatError(f"{file_name}: the header repeats {', '.join(repeated)}")
    return kind


def _records(lines: list[str]) -> Iterator[tuple[int, int, list[str]]]:
    """(first line, last line, fields) of each non-blank CSV record, lines 1-based."""
    reader = csv.reader(lines, strict=True)
    last = 0
    while True:
        first = last + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:
            last = reader.line_num
            yield first, last, []  # an empty field list marks a record csv cannot parse
            continue
        last = reader.line_num
        if fields:  # csv yields [] for a blank line
            yield first, last, fields


def _read_rows(
    records: Iterator[tuple[int, int, list[str]]],
    header: list[str],
    kind: str,
    lines: list[str],
    file_name: str,
) -> ContextBatch:
    build, id_column = _BUILDERS[kind]
    positions = {c: header.index(c) for c in CONTEXT_CSV_HEADERS[kind] if c in header}
    batch = ContextBatch()
    entities: list = getattr(batch, kind)
    seen: set[str] = set()
    for first, last, fields in records:
        batch.records_read += 1
        try:
            if not fields:
                raise _BadRow("malformed CSV record (unbalanced quotes or a stray character)")
            if any(_NOT_UTF8.search(f) for f in fields):
                raise _BadRow("text is not valid UTF-8")
            if len(fields) != len(header):
                raise _BadRow(f"has {len(fields)} fields, the header has {len(header)}")
            row: _Row = {c: (fields[i].strip() or None) for c, i in positions.items()}
            entity_id = _required(row, id_column)
            entity = build(row)
            if entity_id in seen:
                raise _BadRow(f"duplicate {id_column} in this file; the first is kept")
            seen.add(entity_id)
            entities.append(entity)
        except _BadRow as err:
            raw = "".join(lines[first - 1 : last]).rstrip("\r\n")
            raw = raw.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
            batch.quarantined.append(
                QuarantinedRecord(FORMAT_NAME, file_name, first, str(err), raw)
            )
    return batch


# --- one builder per kind -----------------------------------------------------------------


def _staff(row: _Row) -> StaffMember:
    hire_date = _date(row, "hire_date")
    termination_date = _date(row, "termination_date")
    if hire_date and termination_date and termination_date < hire_date:
        raise _BadRow("termination_date is before hire_date")
    return StaffMember(
        staff_id=_required(row, "staff_id"),
        family_name=row.get("family_name"),
        given_names=_values(row, "given_names"),
        role=row.get("role"),
        department=row.get("department"),
        address=_address(row),
        hire_date=hire_date,
        termination_date=termination_date,
    )


def _patient(row: _Row) -> Patient:
    patient_id = _required(row, "patient_id")
    deceased, deceased_at = _deceased(row)
    categories = (c.lower() for c in _values(row, "sensitive_categories"))
    return Patient(
        patient_id=patient_id,
        family_name=row.get("family_name"),
        given_names=_values(row, "given_names"),
        address=_address(row),
        birth_date=_date(row, "birth_date"),
        deceased=deceased,
        deceased_at=deceased_at,
        vip=_flag(row, "vip"),
        staff_id=row.get("staff_id"),
        sensitive_categories=tuple(dict.fromkeys(categories)),
    )


def _encounter(row: _Row) -> Encounter:
    encounter_id = _required(row, "encounter_id")
    patient_id = _required(row, "patient_id")
    start = _date_time(row, "start")
    if start is None:
        raise _BadRow("missing required field start")
    end = _date_time(row, "end")
    if end is not None and end < start:
        raise _BadRow("end is before start")
    encounter_class = row.get("encounter_class")
    if encounter_class is not None:
        encounter_class = ENCOUNTER_CLASS_WORDS.get(
            encounter_class.upper(), encounter_class.lower()
        )
    return Encounter(
        encounter_id=encounter_id,
        patient_id=patient_id,
        start=start,
        department=row.get("department"),
        end=end,
        attending_id=row.get("attending_id"),
        care_team=tuple(dict.fromkeys(_values(row, "care_team"))),
        encounter_class=encounter_class,
    )


def _related_person(row: _Row) -> RelatedPerson:
    return RelatedPerson(
        related_id=_required(row, "related_id"),
        patient_id=_required(row, "patient_id"),
        relationship=row.get("relationship"),
        family_name=row.get("family_name"),
        given_names=_values(row, "given_names"),
        address=_address(row),
        staff_id=row.get("staff_id"),
    )


_BUILDERS: dict[str, tuple[Callable[[_Row], object], str]] = {
    "staff": (_staff, "staff_id"),
    "patients": (_patient, "patient_id"),
    "encounters": (_encounter, "encounter_id"),
    "related_persons": (_related_person, "related_id"),
}


# --- cells ------------------------------------------------------------------------------


def _required(row: _Row, column: str) -> str:
    value = row.get(column)
    if value is None:
        raise _BadRow(f"missing required field {column}")
    return value


def _values(row: _Row, column: str) -> tuple[str, ...]:
    value = row.get(column)
    if value is None:
        return ()
    return tuple(v.strip() for v in value.split(_MULTI_VALUE_SEPARATOR) if v.strip())


def _address(row: _Row) -> Address | None:
    address = Address(
        line=row.get("address_line"),
        city=row.get("city"),
        state=row.get("state"),
        postal_code=row.get("postal_code"),
    )
    return None if address == Address() else address


def _date(row: _Row, column: str) -> date | None:
    value = row.get(column)
    if value is None:
        return None
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise _BadRow(f"bad date in {column} (expected YYYY-MM-DD)") from None


def _date_time(row: _Row, column: str) -> datetime | None:
    value = row.get(column)
    if value is None:
        return None
    try:
        if not _DATE_TIME.fullmatch(value):
            raise ValueError
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _BadRow(f"bad date-time in {column} (expected ISO 8601)") from None
    # A time without an offset is read as UTC, as documented.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _flag(row: _Row, column: str) -> bool:
    value = row.get(column)
    if value is None:
        return False
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise _BadRow(f"bad value in {column} (expected true or false)")


def _deceased(row: _Row) -> tuple[bool, datetime | None]:
    value = row.get("deceased")
    if value is None or value.lower() in _FALSE:
        return False, None
    if value.lower() in _TRUE:
        return True, None
    try:
        return True, _date_time(row, "deceased")
    except _BadRow:
        raise _BadRow(
            "bad value in deceased (expected true, false, or the date or date-time of death)"
        ) from None
