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

import polars as pl
import yaml

from custodes.core.errors import InputFormatError
from custodes.core.events import Action
from custodes.core.ids import content_id
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import ChunkResult, EventReader, decode_raw, open_source
from custodes.ingest.codes import ACTION_CODES
from custodes.ingest.normalise import RAW_ACCESS_COLUMNS, normalise_access_frame

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
        text = b"".join(lines).decode("utf-8", errors="replace")
        if '"' in text:  # quoting: let the csv module decide where fields end
            fields, malformed = self._split_quoted(lines)
        else:  # no quotes: every separator ends a field, so Polars can split in bulk
            fields, malformed = self._split_plain(text)
        width = len(self.header)
        quarantined = [
            QuarantinedRecord(
                FORMAT_NAME, source_file, number,
                f"malformed row: expected {width} fields, found {found}",
                decode_raw(lines[number - 1]),
            )
            for number, found in malformed
        ]  # fmt: skip
        raw = self._canonical(fields, lines)
        events, rejects = normalise_access_frame(
            raw,
            source_format=FORMAT_NAME,
            source_file=source_file,
            naive_time_zone=self.mapping.timezone,
        )
        for number, reason in rejects.iter_rows():
            quarantined.append(
                QuarantinedRecord(
                    FORMAT_NAME, source_file, number, reason, decode_raw(lines[number - 1])
                )
            )
        quarantined.sort(key=lambda q: q.line)
        return ChunkResult(access=events, quarantined=quarantined)

    def _split_plain(self, text: str) -> tuple[pl.DataFrame, list[tuple[int, int]]]:
        """Rows as string columns named by the header, plus (line, fields found) of bad rows."""
        header, separator = self.header, self.mapping.delimiter
        assert header is not None
        frame = (
            pl.DataFrame({"line": [text]})
            .select(pl.col("line").str.split("\n"))
            .explode("line")
            .with_row_index("source_line", offset=1)
            .with_columns(
                pl.col("line").str.strip_chars_end("\r"), pl.col("source_line").cast(pl.Int64)
            )
            .filter(pl.col("line").str.strip_chars() != "")
            .with_columns(_found=pl.col("line").str.count_matches(separator, literal=True) + 1)
        )
        bad = frame.filter(pl.col("_found") != len(header))
        good = frame.filter(pl.col("_found") == len(header))
        split = good.select(
            "source_line",
            pl.col("line")
            .str.split_exact(separator, len(header) - 1)
            .struct.rename_fields(list(header))
            .alias("_fields"),
        ).unnest("_fields")
        return split, list(bad.select("source_line", "_found").iter_rows())

    def _split_quoted(self, lines: Sequence[bytes]) -> tuple[pl.DataFrame, list[tuple[int, int]]]:
        header = self.header
        assert header is not None
        rows: list[list[str]] = []
        numbers: list[int] = []
        malformed: list[tuple[int, int]] = []
        texts = [line.decode("utf-8", errors="replace") for line in lines]
        for number, row in enumerate(csv.reader(texts, delimiter=self.mapping.delimiter), start=1):
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                malformed.append((number, len(row)))
                continue
            rows.append(row)
            numbers.append(number)
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
        frame = pl.DataFrame(
            {
                "source_line": numbers,
                **{name: list(col) for name, col in zip(header, columns, strict=True)},
            },
            schema={"source_line": pl.Int64, **dict.fromkeys(header, pl.String)},
        )
        return frame, malformed

    def _canonical(self, fields: pl.DataFrame, lines: Sequence[bytes]) -> pl.DataFrame:
        """The canonical raw columns from the export's columns, constants and action words."""
        columns = []
        for name in RAW_ACCESS_COLUMNS:
            source = self.mapping.columns.get(name)
            if source is not None and source in fields.columns:
                columns.append(pl.col(source).alias(name))
            elif name in self.mapping.constants:
                columns.append(pl.lit(self.mapping.constants[name], dtype=pl.String).alias(name))
            else:
                columns.append(pl.lit(None, dtype=pl.String).alias(name))
        raw = fields.select(*columns, "source_line")
        # Action words are few and distinct: map each once, not once per row.
        words = raw["action"].unique().drop_nulls().to_list()
        mapped = {word: self.mapping.resolve_action(word) for word in words}
        raw = raw.with_columns(
            pl.col("action").replace_strict(mapped, default=None, return_dtype=pl.String)
        )
        missing = raw.filter(
            pl.col("event_id").is_null() | (pl.col("event_id").str.strip_chars() == "")
        )
        if missing.height:  # a stable id from the line's bytes, so re-reading adds nothing
            ids = {n: content_id(lines[n - 1].strip()) for n in missing["source_line"].to_list()}
            raw = raw.with_columns(
                event_id=pl.when(pl.col("source_line").is_in(list(ids)))
                .then(
                    pl.col("source_line").replace_strict(ids, default=None, return_dtype=pl.String)
                )
                .otherwise(pl.col("event_id"))
            )
        return raw


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
