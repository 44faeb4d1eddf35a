"""CSV access logs: the canonical header, and a mapping file for any other export.

The canonical header (any order; extra columns are ignored)::

    event_id,time,user_id,patient_id,action,resource_type,resource_id,application,
    workstation,source_ip,outcome,purpose_of_use,session_id

``time``, ``user_id``, ``patient_id`` and ``action`` are required. ``time`` is ISO 8601
with an offset (a time without one is read in the mapping's ``timezone``, default UTC);
``action`` is one of read, vread, search, create, update, delete, print, export, execute;
``outcome`` is success, minor_failure, serious_failure, major_failure (or the FHIR codes
0, 4, 8, 12); ``purpose_of_use`` an HL7 v3 PurposeOfUse code (TREAT, ETREAT, HPAYMT, ...).
A row without ``event_id`` gets a stable content hash, so re-ingesting adds nothing.

A mapping file (YAML) adapts another export; see ``mappings/epic.yaml``::

    name: epic-access-log
    columns: {time: ACCESS_INSTANT, user_id: USER_ID, ...}   # canonical: source
    timezone: America/New_York      # for times without an offset
    actions: {"Report Printed": print}                       # exact, case-insensitive
    action_patterns: [{pattern: "print", action: print}]     # regex, in order
    default_action: read            # optional: what an unmatched action means
    constants: {application: Epic Hyperspace}                # fixed values
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from custodes.core.errors import InputFormatError
from custodes.core.events import Action
from custodes.core.ids import content_id
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import ChunkResult, EventReader, decode_raw, open_source
from custodes.ingest.codes import ACTION_CODES
from custodes.ingest.normalise import RAW_ACCESS_COLUMNS, normalise_access_columns

FORMAT_NAME = "csv"
REQUIRED_COLUMNS = ("time", "user_id", "patient_id", "action")
CANONICAL_HEADER = RAW_ACCESS_COLUMNS
MAPPINGS_DIR = Path(__file__).parent / "mappings"


@dataclass(frozen=True)
class CsvMapping:
    """How the columns and action words of an export map to the canonical fields."""

    name: str = "canonical"
    columns: dict[str, str] = field(default_factory=lambda: {c: c for c in CANONICAL_HEADER})
    timezone: str | None = "UTC"
    actions: dict[str, str] = field(default_factory=dict)
    action_patterns: tuple[tuple[str, str], ...] = ()
    default_action: str | None = None
    constants: dict[str, str] = field(default_factory=dict)
    delimiter: str = ","

    @classmethod
    def load(cls, path: Path) -> CsvMapping:
        """Read a mapping file; a bundled mapping may be named without its path (``epic``)."""
        if not path.exists() and (MAPPINGS_DIR / f"{path.name}.yaml").exists():
            path = MAPPINGS_DIR / f"{path.name}.yaml"
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as err:
            raise InputFormatError(f"cannot read mapping file {path}: {err.strerror}") from err
        except yaml.YAMLError as err:
            raise InputFormatError(f"mapping file {path} is not valid YAML") from err
        if not isinstance(spec, dict) or not isinstance(spec.get("columns"), dict):
            raise InputFormatError(f"mapping file {path} needs a 'columns' table")
        unknown = set(spec["columns"]) - set(CANONICAL_HEADER)
        if unknown:
            raise InputFormatError(
                f"mapping file {path} maps unknown fields {sorted(unknown)}; "
                f"fields are {', '.join(CANONICAL_HEADER)}"
            )
        valid_actions = {str(a) for a in Action}
        actions = {str(k).lower(): str(v) for k, v in (spec.get("actions") or {}).items()}
        patterns = tuple(
            (str(p["pattern"]), str(p["action"])) for p in spec.get("action_patterns") or []
        )
        default = spec.get("default_action")
        targets = (
            set(actions.values()) | {a for _, a in patterns} | ({default} if default else set())
        )
        if not targets <= valid_actions:
            raise InputFormatError(
                f"mapping file {path} maps to unknown actions {sorted(targets - valid_actions)}"
            )
        for pattern, _ in patterns:
            try:
                re.compile(pattern)
            except re.error as err:
                raise InputFormatError(
                    f"mapping file {path}: bad pattern {pattern!r}: {err}"
                ) from err
        return cls(
            name=str(spec.get("name", path.stem)),
            columns={str(k): str(v) for k, v in spec["columns"].items()},
            timezone=spec.get("timezone", "UTC"),
            actions=actions,
            action_patterns=patterns,
            default_action=default,
            constants={str(k): str(v) for k, v in (spec.get("constants") or {}).items()},
            delimiter=str(spec.get("delimiter", ",")),
        )

    def resolve_action(self, value: str | None) -> str | None:
        """The canonical action for a source value; unmatched values pass through.

        >>> m = CsvMapping(actions={"report printed": "print"},
        ...                action_patterns=(("(?i)search", "search"),), default_action="read")
        >>> [m.resolve_action(v) for v in ("Report Printed", "Patient Search", "Chart Review")]
        ['print', 'search', 'read']
        """
        if value is None:
            return None
        key = value.strip().lower()
        if key in ACTION_CODES:
            return key
        if key in self.actions:
            return self.actions[key]
        for pattern, action in self.action_patterns:
            if re.search(pattern, value):
                return action
        return self.default_action or value


class CsvAccessLogReader(EventReader):
    """Reads CSV access logs, canonical or through a ``CsvMapping``."""

    format_name = FORMAT_NAME

    def __init__(self, mapping: CsvMapping | None = None, header: Sequence[str] | None = None):
        self.mapping = mapping or CsvMapping()
        self.header = tuple(header) if header is not None else None

    def header_lines(self, path: Path) -> int:
        return 1

    def read(self, path: Path, **options):  # type: ignore[override]
        """Read the header first, so worker processes know the columns."""
        if self.header is None:
            reader = CsvAccessLogReader(self.mapping, _read_header(path, self.mapping))
            yield from EventReader.read(reader, path, **options)
        else:
            yield from super().read(path, **options)

    def parse_lines(self, lines: Sequence[bytes], source_file: str) -> ChunkResult:
        if self.header is None:
            raise InputFormatError("CsvAccessLogReader.parse_lines needs the header")
        header = self.header
        width = len(header)
        positions = {
            name: header.index(col) for name, col in self.mapping.columns.items() if col in header
        }
        quarantined: list[QuarantinedRecord] = []
        rows: list[list[str]] = []
        numbers: list[int] = []
        raws: list[bytes] = []
        texts = [line.decode("utf-8", errors="replace") for line in lines]
        for number, row in enumerate(csv.reader(texts, delimiter=self.mapping.delimiter), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                quarantined.append(
                    QuarantinedRecord(
                        FORMAT_NAME, source_file, number,
                        f"malformed row: expected {width} fields, found {len(row)}",
                        decode_raw(lines[number - 1]),
                    )
                )  # fmt: skip
                continue
            rows.append(row)
            numbers.append(number)
            raws.append(lines[number - 1])
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
        raw: dict[str, list] = {}
        for name in RAW_ACCESS_COLUMNS:
            if name in positions:
                raw[name] = list(columns[positions[name]])
            elif name in self.mapping.constants:
                raw[name] = [self.mapping.constants[name]] * len(rows)
            else:
                raw[name] = [None] * len(rows)
        raw["action"] = [self.mapping.resolve_action(v) for v in raw["action"]]
        raw["event_id"] = [
            value if value and value.strip() else content_id(line.strip())
            for value, line in zip(raw["event_id"], raws, strict=True)
        ]
        raw["source_line"] = numbers
        events, rejects = normalise_access_columns(
            raw,
            source_format=FORMAT_NAME,
            source_file=source_file,
            naive_time_zone=self.mapping.timezone,
        )
        for row, reason in rejects:
            quarantined.append(
                QuarantinedRecord(
                    FORMAT_NAME, source_file, numbers[row], reason, decode_raw(raws[row])
                )
            )
        quarantined.sort(key=lambda q: q.line)
        return ChunkResult(access=events, quarantined=quarantined)


def _read_header(path: Path, mapping: CsvMapping) -> tuple[str, ...]:
    with open_source(path) as handle:
        first = handle.readline().decode("utf-8-sig", errors="replace")
    header = tuple(h.strip() for h in next(csv.reader([first], delimiter=mapping.delimiter), []))
    needed = [mapping.columns.get(c) for c in REQUIRED_COLUMNS if c not in mapping.constants]
    missing = [c for c in needed if c is None or c not in header]
    if missing:
        hint = "" if mapping.name != "canonical" else " (use --mapping FILE for another export)"
        raise InputFormatError(
            f"{path.name}: header lacks required column(s) {', '.join(map(str, missing))}{hint}"
        )
    return header
