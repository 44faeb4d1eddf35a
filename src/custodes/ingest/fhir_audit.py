"""FHIR ``AuditEvent`` (R4/R4B, IHE BALP shapes) as NDJSON or as a Bundle.

What is read, per AuditEvent:

- the user: the agent flagged ``requestor`` (else the first agent with a ``who``),
  ``who`` as a reference (``Practitioner/123``) or an identifier (its ``value``);
- the patient: an entity whose ``what`` references ``Patient/ID``, or an entity with
  role 1 (Patient, object-role) identified by an identifier;
- the action: ``subtype`` (a RESTful interaction or a DICOM event id), else ``action``;
- purpose of use: ``purposeOfEvent`` or the requestor's ``purposeOfUse`` (ETREAT and BTG
  mark break-the-glass);
- ``agent.network.address``: an IP address (type 2) or a machine name (type 1);
- the resource touched: the first entity that is not the patient;
- ``outcome`` (0, 4, 8, 12).

An AuditEvent of DICOM type 110114 (User Authentication) becomes a ``SignInEvent``
(subtype 110122 Login, 110123 Logout). Anything else without a patient is not an
access to a patient record, and goes to the quarantine with that reason.
"""

from __future__ import annotations

import mmap
import os
import shutil
import tempfile
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import duckdb
import msgspec
import numpy as np
import orjson
import polars as pl

from custodes.core.ids import content_id
from custodes.core.quarantine import QuarantinedRecord
from custodes.ingest.base import (
    ChunkResult,
    EventReader,
    decode_raw,
    open_source,
)
from custodes.ingest.codes import ACTION_CODES
from custodes.ingest.normalise import (
    RAW_ACCESS_COLUMNS,
    RAW_SIGNIN_COLUMNS,
    normalise_access_frame,
    normalise_signin_frame,
)

FORMAT_NAME = "fhir-auditevent"
#: Bytes per DuckDB query (whole lines): the planning cost of each query is spread
#: thin while memory stays bounded whatever the file size.
CHUNK_BYTES = 48 * 1024 * 1024
#: Blocks parsed at once, each by its own DuckDB connection, while the one before is
#: validated and stored.
BLOCKS_IN_FLIGHT = 2
#: Entries per query when reading a Bundle.
CHUNK_LINES = 50_000
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_USER_AUTHENTICATION = "110114"

# The elements read, as DuckDB column types: everything else in a line is skipped
# unparsed, which is most of the speed.
_CODE = "STRUCT(code VARCHAR)"
_CONCEPT = f"STRUCT(coding {_CODE}[])"
_REFERENCE = "STRUCT(reference VARCHAR, identifier STRUCT(value VARCHAR), display VARCHAR)"
AUDIT_EVENT_COLUMNS: dict[str, str] = {
    "resourceType": "VARCHAR",
    "id": "VARCHAR",
    "recorded": "VARCHAR",
    "outcome": "VARCHAR",
    "action": "VARCHAR",
    "type": _CODE,
    "subtype": f"{_CODE}[]",
    "purposeOfEvent": f"{_CONCEPT}[]",
    "agent": f"STRUCT(type {_CONCEPT}, who {_REFERENCE}, altId VARCHAR, requestor BOOLEAN, "
    f"network STRUCT(address VARCHAR, type VARCHAR), purposeOfUse {_CONCEPT}[])[]",
    "source": f"STRUCT(observer {_REFERENCE})",
    "entity": f"STRUCT(what {_REFERENCE}, role {_CODE})[]",
}


def _ref_id(x: str) -> str:
    """SQL: the id of a reference (``Type/id``, absolute URL, ``_history``, ``urn:uuid``)."""
    return (
        f"CASE WHEN starts_with({x}, 'urn:uuid:') THEN {x}[10:] "
        f"WHEN contains({x}, '/_history/') "
        f"THEN split_part(regexp_replace({x}, '/_history/.*$', ''), '/', -1) "
        f"ELSE split_part({x}, '/', -1) END"
    )


def _ref_type(x: str) -> str:
    """SQL: the resource type of a reference, NULL for ``urn:`` and bare ids."""
    return (
        f"CASE WHEN starts_with({x}, 'urn:') THEN NULL "
        f"WHEN contains({x}, '/_history/') "
        f"THEN nullif(split_part(regexp_replace({x}, '/_history/.*$', ''), '/', -2), '') "
        f"ELSE nullif(split_part({x}, '/', -2), '') END"
    )


def _is_patient_reference(x: str) -> str:
    """SQL: ``Patient/ID``, ``.../Patient/ID`` or either with ``/_history/N``."""
    return f"(starts_with({x}, 'Patient/') OR contains({x}, '/Patient/'))"


def _has_type(x: str) -> str:
    """SQL: a reference that names its resource type (``Type/id``, not ``urn:`` or a bare id)."""
    return f"(contains({x}, '/') AND NOT starts_with({x}, 'urn:'))"


_IP = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$|^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$"


def _is_ip_address(a: str) -> str:
    return (
        f"({a}.network.type = '2' OR ({a}.network.type IS NULL "
        f"AND regexp_matches({a}.network.address, '{_IP}')))"
    )


def _is_machine_name(a: str) -> str:
    return (
        f"({a}.network.type = '1' OR ({a}.network.type IS NULL "
        f"AND NOT regexp_matches({a}.network.address, '{_IP}')))"
    )


def _has_code(concept: str, code: str) -> str:
    return f"list_contains(list_transform({concept}.coding, lambda c: c.code), '{code}')"


def _first_code(concepts: str) -> str:
    return (
        f"list_filter(flatten(list_transform({concepts}, "
        f"lambda p: list_transform(p.coding, lambda c: c.code))), lambda v: v IS NOT NULL)[1]"
    )


_ACTION_KEYS = "[" + ", ".join(f"'{k}'" for k in ACTION_CODES) + "]"


def _is_action_code(x: str) -> str:
    """SQL: ``x`` is a known action code, in any case.

    A position in a list, not ``IN (...)`` or ``list_contains``: DuckDB plans either
    over this many constants as a join, evaluated for every row rather than only for
    the rows a CASE branch reaches.
    """
    return f"list_position({_ACTION_KEYS}, lower({x})) IS NOT NULL"


_PATIENT_ENTITY = (
    f"lambda e: {_is_patient_reference('e.what.reference')} "
    f"OR (e.role.code = '1' AND e.what.reference IS NULL AND e.what.identifier.value IS NOT NULL) "
    f"OR (e.role.code = '1' AND starts_with(e.what.reference, 'urn:uuid:'))"
)
_RESOURCE_ENTITY = (
    f"lambda e: {_has_type('e.what.reference')} AND NOT {_is_patient_reference('e.what.reference')}"
)
# Every code that may name the action, in order: subtypes, then type, then action.
_CODES = (
    "list_filter(list_concat(list_transform(subtype, lambda s: s.code), [type.code, action]), "
    "lambda c: c IS NOT NULL)"
)


def _no_agent_coded(code: str) -> str:
    """SQL: true when neither of at most two agents carries ``code`` as its only role.

    The cheap test for the usual event (a user and a workstation, one role each); when
    it fails the agents are searched in full.
    """
    return (
        "(coalesce(len(agent), 0) <= 2 AND "
        + " AND ".join(
            f"coalesce(len(agent[{n}].type.coding), 0) <= 1 "
            f"AND agent[{n}].type.coding[1].code IS DISTINCT FROM '{code}'"
            for n in (1, 2)
        )
        + ")"
    )


# The one implementation of what an AuditEvent means (the module docstring, in SQL).
# ``{source}`` is a ``read_ndjson`` over a chunk of lines; rows come out in line order.
# Built from the constants above, never from input. References are parsed only for
# the entities and agent chosen, which keeps the per-line cost low. Each choice first
# tries the usual place (the first agent, the first entity, the first subtype), so
# lists are searched only for events shaped otherwise; the agent and entities chosen
# are kept as positions, not copied out of their lists.
_EXTRACT_SQL = f"""
WITH u AS (
  SELECT *,
    CASE WHEN agent[1].requestor THEN 1
         ELSE coalesce(list_position(list_transform(agent, lambda a: coalesce(a.requestor, false)), true),
                       list_position(list_transform(agent, lambda a: a.who IS NOT NULL), true)) END AS _u,
    CASE WHEN {_is_patient_reference("entity[1].what.reference")} THEN 1
         ELSE list_position(list_transform(entity, {_PATIENT_ENTITY}), true) END AS _p,
    CASE WHEN {_is_patient_reference("entity[1].what.reference")}
              AND (entity[2].what.reference IS NULL OR ({_has_type("entity[2].what.reference")}
                   AND NOT {_is_patient_reference("entity[2].what.reference")}))
         THEN entity[2].what.reference
         ELSE list_filter(entity, {_RESOURCE_ENTITY})[1].what.reference END AS _resource
  FROM {{source}}
),
v AS (
  SELECT *,
    agent[_u].who AS _who,
    agent[_u].network AS _network,
    entity[_p].what.reference AS _patient_ref,
    CASE WHEN entity[_p].what.reference IS NULL THEN entity[_p].what.identifier.value
         ELSE {_ref_id("entity[_p].what.reference")} END AS _patient_id
  FROM u
)
SELECT
  CASE WHEN resourceType IS DISTINCT FROM 'AuditEvent' THEN 'not-auditevent'
       WHEN type.code = '{_USER_AUTHENTICATION}' THEN 'signin'
       WHEN _patient_id IS NULL THEN 'no-patient'
       ELSE 'access' END AS _kind,
  id AS event_id,
  recorded AS time,
  -- Parsed here, on DuckDB's threads; only instants with an explicit offset (FHIR
  -- requires one), anything else stays NULL and is quarantined as a bad timestamp.
  CASE WHEN substr(recorded, 11, 1) = 'T'
            AND (ends_with(recorded, 'Z') OR substr(recorded, -6, 1) IN ('+', '-')
                 OR substr(recorded, -5, 1) IN ('+', '-'))
       THEN TRY_CAST(recorded AS TIMESTAMPTZ) END AS parsed_time,
  CASE WHEN _who.reference IS NOT NULL THEN {_ref_id("_who.reference")}
       ELSE coalesce(_who.identifier.value, agent[_u].altId) END AS user_id,
  _patient_id AS patient_id,
  CASE WHEN {_is_action_code("subtype[1].code")} THEN subtype[1].code
       WHEN {_is_action_code(f"{_CODES}[1]")} THEN {_CODES}[1]
       ELSE coalesce(list_filter({_CODES}, lambda c: {_is_action_code("c")})[1], {_CODES}[1])
  END AS action,
  CASE WHEN _resource IS NOT NULL THEN {_ref_type("_resource")}
       WHEN {_is_patient_reference("_patient_ref")} THEN 'Patient' END AS resource_type,
  CASE WHEN _resource IS NOT NULL THEN {_ref_id("_resource")}
       WHEN {_is_patient_reference("_patient_ref")} THEN _patient_id END AS resource_id,
  CASE WHEN {_no_agent_coded("110150")} THEN coalesce(
    source.observer.display,
    CASE WHEN source.observer.reference IS NOT NULL THEN {_ref_id("source.observer.reference")} END,
    list_filter(agent, lambda a: NOT coalesce(a.requestor, false)
                                 AND {_has_code("a.type", "110153")})[1].who.display)
  ELSE coalesce(
    list_filter(agent, lambda a: a.who IS NOT NULL AND {_has_code("a.type", "110150")})[1].who.display,
    source.observer.display,
    CASE WHEN source.observer.reference IS NOT NULL THEN {_ref_id("source.observer.reference")} END,
    list_filter(agent, lambda a: NOT coalesce(a.requestor, false)
                                 AND {_has_code("a.type", "110153")})[1].who.display)
  END AS application,
  CASE WHEN _network.type = '2' THEN _network.address
       ELSE coalesce(CASE WHEN {_is_ip_address("agent[_u]")} THEN _network.address END,
                     list_filter(agent, lambda a: {_is_ip_address("a")})[1].network.address)
  END AS source_ip,
  CASE WHEN _network.type = '1' THEN _network.address
       WHEN agent[1].requestor AND len(agent) = 2 AND agent[1].network.type = '2'
            AND agent[2].network.type = '1' THEN agent[2].network.address
       ELSE coalesce(CASE WHEN {_is_machine_name("agent[_u]")} THEN _network.address END,
                     list_filter(agent, lambda a: {_is_machine_name("a")})[1].network.address)
  END AS workstation,
  outcome,
  CASE WHEN purposeOfEvent[1].coding[1].code IS NOT NULL THEN purposeOfEvent[1].coding[1].code
       ELSE coalesce({_first_code("purposeOfEvent")}, {_first_code("agent[_u].purposeOfUse")}) END
    AS purpose_of_use,
  CAST(NULL AS VARCHAR) AS session_id,
  CASE WHEN type.code <> '{_USER_AUTHENTICATION}' THEN NULL
       WHEN list_contains(list_transform(subtype, lambda s: s.code), '110123') THEN 'logout'
       ELSE 'login' END AS kind
FROM v
"""

_COLUMNS_SQL = "{" + ", ".join(f"'{k}': '{v}'" for k, v in AUDIT_EVENT_COLUMNS.items()) + "}"


# Validation shapes for the reason a line cannot be read. msgspec names the JSON path
# of the problem without quoting the value, so the reason is safe to keep and show.
class _Identifier(msgspec.Struct):
    value: str | None = None


class _Reference(msgspec.Struct):
    reference: str | None = None
    identifier: _Identifier | None = None
    display: str | None = None


class _Code(msgspec.Struct):
    code: str | None = None


class _Concept(msgspec.Struct):
    coding: list[_Code] | None = None


class _Network(msgspec.Struct):
    address: str | None = None
    type: str | None = None


class _Agent(msgspec.Struct):
    type: _Concept | None = None
    who: _Reference | None = None
    altId: str | None = None
    requestor: bool | None = None
    network: _Network | None = None
    purposeOfUse: list[_Concept] | None = None


class _Entity(msgspec.Struct):
    what: _Reference | None = None
    role: _Code | None = None


class _Source(msgspec.Struct):
    observer: _Reference | None = None


class _AuditEvent(msgspec.Struct):
    resourceType: str | None = None
    id: str | None = None
    recorded: str | None = None
    outcome: str | None = None
    action: str | None = None
    type: _Code | None = None
    subtype: list[_Code] | None = None
    purposeOfEvent: list[_Concept] | None = None
    agent: list[_Agent] | None = None
    source: _Source | None = None
    entity: list[_Entity] | None = None


_VALIDATOR = msgspec.json.Decoder(_AuditEvent, strict=False)


def _why_unreadable(line: bytes) -> str | None:
    """Why a single line cannot be read (naming the place, never the value), or None."""
    try:
        document = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "malformed JSON"
    if not isinstance(document, dict):
        return "not a JSON object"
    try:
        _VALIDATOR.decode(line)
    except msgspec.ValidationError as err:
        return f"not a valid AuditEvent: {err}"
    return None


def _scratch_folder() -> str:
    """A private folder (mode 0700: blocks hold PHI), memory-backed when the system has it."""
    shm = "/dev/shm"  # noqa: S108 - a private mkdtemp folder inside it, mode 0700
    shm = shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="custodes-", dir=shm)


def _source_sql(path: str) -> str:
    escaped = path.replace("'", "''")
    return (
        f"read_ndjson('{escaped}', columns={_COLUMNS_SQL}, format='newline_delimited', "
        "records='true', maximum_object_size=67108864)"
    )


class _Extractor:
    """A DuckDB connection with the extraction prepared over one scratch file.

    The query is prepared once, over the file empty or holding the first block, and
    executed for each block or list of lines put in the file. Planned over an empty
    file, DuckDB scans each block on one thread; with two blocks in flight on two
    cores that measured faster end to end than planning every block afresh
    (benchmarks/RESULTS.md).
    """

    def __init__(self, threads: int, path: str) -> None:
        self.path = path
        self.connection = duckdb.connect()
        self.connection.execute(f"SET threads = {int(threads)}")
        self.connection.execute("SET TimeZone = 'UTC'")  # instants come back in UTC
        self.connection.execute(
            "PREPARE extract_audit_events AS " + _EXTRACT_SQL.replace("{source}", _source_sql(path))
        )

    def run(self) -> pl.DataFrame:
        """Extract from what the file holds now."""
        table = self.connection.sql("EXECUTE extract_audit_events").to_arrow_table()
        return pl.from_arrow(table)  # type: ignore[return-value]

    def close(self) -> None:
        self.connection.close()


class _LineExtractor:
    """An extractor over a private scratch file, for lines handed over as a list.

    The scratch folder is created 0700 (lines hold PHI) and removed when the extractor
    is closed or collected.
    """

    def __init__(self, threads: int) -> None:
        scratch = _scratch_folder()
        path = os.path.join(scratch, "chunk.ndjson")
        open(path, "wb").close()
        self.extractor = _Extractor(threads, path)
        self.close = weakref.finalize(self, _close_extractor, self.extractor, scratch)

    def run(self, lines: Sequence[bytes]) -> pl.DataFrame:
        with open(self.extractor.path, "wb") as handle:
            handle.writelines(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        return self.extractor.run()


def _close_extractor(extractor: _Extractor, scratch: str) -> None:
    extractor.close()
    shutil.rmtree(scratch, ignore_errors=True)


class _Block:
    """A scratch file mapped into memory, reused for block after block of whole lines.

    The mapping is the buffer: a block is read from the source straight into it, and
    DuckDB reads the file. Each block is copied once on its way in, not into a bytes
    object, then a longer one to complete its last line, then a fresh scratch file,
    and its pages are allocated once rather than for every block. The block keeps its
    own DuckDB connection, prepared over its file the first time it is extracted (on
    a worker thread). The line count (numpy, off the GIL) tells whether DuckDB
    returned a row for every line.
    """

    def __init__(self, path: str, capacity: int, threads: int) -> None:
        self.path = path
        self.size = 0
        self.lines = 0
        self.threads = threads
        self._extractor: _Extractor | None = None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(self._fd, capacity)
        self._map = mmap.mmap(self._fd, capacity)
        self.capacity = capacity

    def fill(self, handle: BinaryIO, carry: bytes) -> bytes:
        """Read ``carry`` and then whole lines from ``handle``; return the incomplete rest.

        ``size`` is 0 once the file is done. A line longer than the block is read whole
        and the block grows to hold it.
        """
        if self.size < self.capacity:
            os.ftruncate(self._fd, self.capacity)  # the file was cut to the last block's size
        with memoryview(self._map) as view:
            view[: len(carry)] = carry
            size = len(carry) + _read_into(handle, view[len(carry) :])
        carry = b""
        if size == self.capacity:  # more may follow: keep back the line not yet complete
            end = self._map.rfind(b"\n", 0, size) + 1
            if end == 0:
                rest = handle.readline()
                self._map.resize(size + len(rest))
                self._map[size:] = rest
                self.capacity = end = size = size + len(rest)
            carry = self._map[end:size]
            size = end
        self.size = size
        os.ftruncate(self._fd, size)  # DuckDB reads exactly this block
        return carry

    def extract(self) -> pl.DataFrame | None:
        """The extracted rows, or None when DuckDB cannot read the block whole."""
        if self._extractor is None:
            self._extractor = _Extractor(self.threads, self.path)
        try:
            return self._extractor.run()
        except (duckdb.InvalidInputException, duckdb.ConversionException):
            return None

    def count_lines(self) -> int:
        """Count the lines of the block (the last may lack its newline) into ``lines``."""
        data = np.frombuffer(self._map, dtype=np.uint8, count=self.size)
        step = 1 << 20  # slices that stay in cache
        newlines = sum(
            int(np.count_nonzero(data[i : i + step] == 10)) for i in range(0, self.size, step)
        )
        ends_open = self.size > 0 and data[self.size - 1] != 10
        del data  # the mapping cannot be resized or closed while numpy holds it
        self.lines = newlines + int(ends_open)
        return self.lines

    def data(self) -> bytes:
        """A copy of the block, for the rare paths that need its lines in Python."""
        return self._map[: self.size]

    def close(self) -> None:
        if self._extractor is not None:
            self._extractor.close()
        self._map.close()
        os.close(self._fd)


class _Blocks:
    """The blocks of one read, in a private folder removed when closed or at exit."""

    def __init__(self, count: int, capacity: int, threads: int) -> None:
        folder = _scratch_folder()
        self.blocks = [
            _Block(os.path.join(folder, f"block-{n}.ndjson"), capacity, threads)
            for n in range(count)
        ]
        self.close = weakref.finalize(self, _close_blocks, self.blocks, folder)


def _close_blocks(blocks: list[_Block], folder: str) -> None:
    for block in blocks:
        block.close()
    shutil.rmtree(folder, ignore_errors=True)


def _read_into(handle: BinaryIO, view: memoryview) -> int:
    """Fill ``view`` from ``handle`` as far as the file goes; the number of bytes read."""
    done = 0
    while done < len(view):
        count = handle.readinto(view[done:])
        if not count:
            break
        done += count
    return done


class FhirAuditEventReader(EventReader):
    """Reads FHIR AuditEvents from NDJSON (one resource a line) or a Bundle.

    Each chunk of lines is handed to DuckDB's JSON reader, which parses only the
    elements above, in parallel, and applies one SQL extraction; a chunk DuckDB cannot
    read whole is split in halves until the unreadable lines are found and quarantined.
    """

    format_name = FORMAT_NAME

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._extractor: _LineExtractor | None = None

    def __getstate__(self) -> dict:
        return {"threads": self.threads, "_extractor": None}  # a connection does not pickle

    def close(self) -> None:
        """Release the DuckDB connection and the scratch folder (reading reopens them)."""
        if self._extractor is not None:
            self._extractor.close()
            self._extractor = None

    def _extract(self, lines: Sequence[bytes]) -> pl.DataFrame:
        if self._extractor is None:
            self._extractor = _LineExtractor(self.threads or os.cpu_count() or 1)
        return self._extractor.run(lines)

    def parse_lines(self, lines: Sequence[bytes], source_file: str) -> ChunkResult:
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        rows, unreadable = self._extract_all(numbered)
        quarantined = [
            QuarantinedRecord(
                FORMAT_NAME, source_file, n,
                _why_unreadable(line) or "not a valid AuditEvent: an element has an unreadable value",
                decode_raw(line),
            )
            for n, line in unreadable
        ]  # fmt: skip
        result = _classify(rows, source_file, lambda number: lines[number - 1])
        result.quarantined = sorted(quarantined + result.quarantined, key=lambda q: q.line)
        return result

    def _finish_block(
        self, block: _Block, rows: pl.DataFrame | None, source_file: str
    ) -> ChunkResult:
        """Validate a block DuckDB read whole, or send it line by line through ``parse_lines``.

        When DuckDB returned one row per line (no blank line was skipped) the rows are
        numbered by position; otherwise, or when it could not read the block whole, the
        block is split into lines and each is read or quarantined on its own.
        """
        count = block.lines
        if rows is None or rows.height != count:
            result = self.parse_lines(block.data().splitlines(keepends=True), source_file)
        else:
            rows = rows.with_columns(
                source_line=pl.int_range(1, count + 1, dtype=pl.Int64, eager=True)
            )
            split: list[bytes] = []

            def line_at(number: int) -> bytes:  # split only when a reject needs its raw text
                if not split:
                    split.extend(block.data().splitlines())
                return split[number - 1]

            result = _classify(rows, source_file, line_at)
        result.lines_read = count
        result.bytes_read = block.size
        return result

    def _extract_all(
        self, numbered: list[tuple[int, bytes]]
    ) -> tuple[pl.DataFrame | None, list[tuple[int, bytes]]]:
        """Extract every readable line; return rows (with ``source_line``) and the rest.

        The whole chunk goes to DuckDB at once. Only when DuckDB refuses it are the
        lines checked one by one, and only if DuckDB still refuses the rest is the
        chunk halved until the lines it cannot read stand alone.
        """
        if not numbered:
            return None, []
        frames: list[pl.DataFrame] = []
        unreadable: list[tuple[int, bytes]] = []
        pending = [numbered]
        checked = False
        while pending:
            part = pending.pop()
            try:
                frame = self._extract([line for _, line in part])
            except (duckdb.InvalidInputException, duckdb.ConversionException):
                if not checked:
                    checked = True
                    readable = []
                    for number, line in part:
                        (readable if _why_unreadable(line) is None else unreadable).append(
                            (number, line)
                        )
                    if readable:
                        pending.append(readable)
                elif len(part) == 1:
                    unreadable.extend(part)
                else:
                    middle = len(part) // 2
                    pending.extend([part[middle:], part[:middle]])
                continue
            frames.append(
                frame.with_columns(source_line=pl.Series([n for n, _ in part], dtype=pl.Int64))
            )
        if not frames:
            return None, unreadable
        if len(frames) == 1:
            return frames[0], unreadable
        return pl.concat(frames).sort("source_line"), unreadable

    def read(
        self, path: Path, *, workers: int = 1, chunk_lines: int = CHUNK_LINES
    ) -> Iterator[ChunkResult]:
        # DuckDB parses each block on every core, so blocks are read in this process, in
        # bytes, whole lines at a time; Python never touches a line unless it must.
        try:
            if _is_single_document(path):
                yield from self._read_document(path, chunk_lines)
                return
            yield from self._read_blocks(path)
        finally:
            self.close()

    def _read_blocks(self, path: Path) -> Iterator[ChunkResult]:
        """NDJSON in blocks: two are parsed by DuckDB while the one before is stored.

        ``BLOCKS_IN_FLIGHT + 1`` blocks, each with its own file and DuckDB connection, are
        reused in turn: two being parsed, the oldest being stored. The line-by-line path
        uses an extractor of its own.
        """
        threads = max(1, (self.threads or os.cpu_count() or 1) // BLOCKS_IN_FLIGHT)
        files = _Blocks(BLOCKS_IN_FLIGHT + 1, CHUNK_BYTES, threads)
        free = deque(files.blocks)
        offset = 0
        carry: bytes | None = b""  # None once the file is read to its end
        try:
            with open_source(path) as handle, ThreadPoolExecutor(BLOCKS_IN_FLIGHT) as pool:
                pending: deque = deque()

                def submit() -> None:
                    nonlocal carry
                    if carry is None:
                        return
                    block = free.popleft()
                    carry = block.fill(handle, carry)
                    if block.size == 0:
                        carry = None
                        free.append(block)
                        return
                    pending.append(pool.submit(_extract_block, block))

                for _ in range(BLOCKS_IN_FLIGHT):
                    submit()
                while pending:
                    block, rows = pending.popleft().result()
                    submit()
                    result = self._finish_block(block, rows, path.name)
                    free.append(block)
                    yield result.rebased(offset)
                    offset += result.lines_read
        finally:
            files.close()

    def _read_document(self, path: Path, chunk_lines: int) -> Iterator[ChunkResult]:
        """A Bundle (collection, searchset, transaction, batch), a JSON array or one resource.

        Entries are numbered from 1 and reported as line numbers.
        """
        with open_source(path) as handle:
            data = handle.read()
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            reason = "malformed JSON document"
            record = QuarantinedRecord(FORMAT_NAME, path.name, 1, reason, decode_raw(data))
            yield ChunkResult(quarantined=[record], lines_read=1, bytes_read=len(data))
            return
        if isinstance(document, dict) and document.get("resourceType") == "Bundle":
            # An entry without a resource is read as it stands, and so quarantined whole.
            records = [
                e["resource"] if isinstance(e, dict) and "resource" in e else e
                for e in document.get("entry") or []
            ]
        elif isinstance(document, list):
            records = document
        else:
            records = [document]
        lines = [orjson.dumps(r) for r in records]
        for start in range(0, len(lines), chunk_lines):
            chunk = lines[start : start + chunk_lines]
            result = self.parse_lines(chunk, path.name)
            result.lines_read = len(chunk)
            result.bytes_read = len(data) if start + chunk_lines >= len(lines) else 0
            yield result.rebased(start)


def _classify(
    rows: pl.DataFrame | None, source_file: str, line_at: Callable[[int], bytes]
) -> ChunkResult:
    """Split extracted rows into access events, sign-ins and rejects."""
    result = ChunkResult()
    if rows is None:
        return result
    if rows[
        "event_id"
    ].null_count():  # a stable id from the line's bytes, so re-reading adds nothing
        missing = rows.filter(pl.col("event_id").is_null())["source_line"].to_list()
        ids = {number: content_id(line_at(number).strip()) for number in missing}
        rows = rows.with_columns(
            event_id=pl.coalesce(
                "event_id",
                pl.col("source_line").replace_strict(ids, default=None, return_dtype=pl.String),
            )
        )
    # The usual block holds access events only: no filtering, no sign-ins, no rejects.
    only_access = bool((rows["_kind"] == "access").all())
    rejects: list[pl.DataFrame] = []
    access = rows if only_access else rows.filter(pl.col("_kind") == "access")
    result.access, bad = normalise_access_frame(
        access.select(*RAW_ACCESS_COLUMNS, "source_line", "parsed_time"),
        source_format=FORMAT_NAME,
        source_file=source_file,
    )
    rejects.append(bad)
    if not only_access:
        signins = rows.filter(pl.col("_kind") == "signin").select(
            *[
                c if c != "device" else pl.col("workstation").alias("device")
                for c in RAW_SIGNIN_COLUMNS
                if c not in ("mfa_method",)
            ],
            pl.lit(None, dtype=pl.String).alias("mfa_method"),
            "source_line",
            "parsed_time",
        )
        result.signins, bad = normalise_signin_frame(
            signins, source_format=FORMAT_NAME, source_file=source_file
        )
        rejects.append(bad)
        rejects.append(
            rows.filter(pl.col("_kind").is_in(["not-auditevent", "no-patient"])).select(
                "source_line",
                reason=pl.when(pl.col("_kind") == "not-auditevent")
                .then(pl.lit("not an AuditEvent resource"))
                .otherwise(pl.lit("no patient entity: not an access to a patient record")),
            )
        )
    for line, reason in pl.concat(rejects).iter_rows():
        result.quarantined.append(
            QuarantinedRecord(FORMAT_NAME, source_file, line, reason, decode_raw(line_at(line)))
        )
    return result


def _extract_block(block: _Block) -> tuple[_Block, pl.DataFrame | None]:
    """Extract a block and count its lines (on a worker thread)."""
    rows = block.extract()
    block.count_lines()
    return block, rows


def _is_single_document(path: Path) -> bool:
    """True for a Bundle (on one line or pretty-printed), False for NDJSON.

    A pretty-printed document opens with a line holding only ``{`` or ``[``; NDJSON
    holds a whole resource on each line. A broken first line of NDJSON stays NDJSON,
    so it is quarantined alone and the rest of the file is read.
    """
    with open_source(path) as handle:
        first = handle.readline().removeprefix(b"\xef\xbb\xbf").strip()
    if first in (b"{", b"["):
        return True
    try:
        resource = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(resource, dict) and resource.get("resourceType") == "Bundle"


_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ACTION_LETTER = {
    "read": "R",
    "vread": "R",
    "search": "E",
    "create": "C",
    "update": "U",
    "delete": "D",
}
_OUTCOME_CODE = {
    "success": "0",
    "minor_failure": "4",
    "serious_failure": "8",
    "major_failure": "12",
}


def audit_event_resource(event) -> dict:  # event: custodes.core.events.AccessEvent
    """An ``AccessEvent`` as a FHIR R4 AuditEvent in the IHE BALP shape this reader takes.

    The reader reads it back to the same event (a test holds the round trip).
    """
    action = str(event.action)
    resource: dict = {
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"system": _INTERACTION, "code": action}],
        "action": _ACTION_LETTER.get(action, "E"),
        "recorded": event.time.isoformat().replace("+00:00", "Z"),
        "outcome": _OUTCOME_CODE[str(event.outcome)],
        "agent": [],
        "source": {"observer": {"display": event.application or "EHR"}},
        "entity": [
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                },
            }
        ],
    }
    if event.purpose_of_use:
        resource["purposeOfEvent"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": event.purpose_of_use,
                    }
                ]
            }
        ]
    user = {"who": {"reference": f"Practitioner/{event.user_id}"}, "requestor": True}
    if event.source_ip:
        user["network"] = {"address": event.source_ip, "type": "2"}
    resource["agent"].append(user)
    if event.workstation:
        resource["agent"].append(
            {
                "type": {"coding": [{"system": _DCM, "code": "110153"}]},
                "who": {"identifier": {"value": event.workstation}},
                "requestor": False,
                "network": {"address": event.workstation, "type": "1"},
            }
        )
    if event.resource_type and event.resource_type != "Patient":
        resource["entity"].append(
            {"what": {"reference": f"{event.resource_type}/{event.resource_id}"}}
        )
    return resource


def signin_audit_event_resource(event) -> dict:  # event: custodes.core.events.SignInEvent
    """A ``SignInEvent`` (login or logout) as a DICOM 110114 User Authentication AuditEvent."""
    code = "110123" if str(event.kind) == "logout" else "110122"
    user: dict = {"who": {"reference": f"Practitioner/{event.user_id}"}, "requestor": True}
    if event.source_ip:
        user["network"] = {"address": event.source_ip, "type": "2"}
    return {
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {"system": _DCM, "code": _USER_AUTHENTICATION, "display": "User Authentication"},
        "subtype": [{"system": _DCM, "code": code}],
        "action": "E",
        "recorded": event.time.isoformat().replace("+00:00", "Z"),
        "outcome": _OUTCOME_CODE[str(event.outcome)],
        "agent": [user],
        "source": {"observer": {"display": event.application or "EHR"}},
    }
