"""The same storage tests against SQLite and the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import sqlalchemy as sa

from custodes.core.entities import (
    Address,
    Department,
    Encounter,
    Patient,
    RelatedPerson,
    StaffMember,
)
from custodes.core.events import ACCESS_EVENT_SCHEMA, SIGNIN_EVENT_SCHEMA
from custodes.core.quarantine import QuarantinedRecord
from custodes.storage.database import current_revision, head_revision, upgrade
from custodes.storage.schema import access_events, encounters, patients, quarantine, staff
from custodes.storage.sql_context import QuarantineStore, SqlContextStore
from custodes.storage.sql_events import SqlEventStore


def _access(ids: list[str]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "event_id": ids,
            "time": [datetime(2026, 11, 1, 2, 14, i % 60, tzinfo=UTC) for i in range(n)],
            "user_id": ["u1"] * n,
            "patient_id": [f"p{i}" for i in range(n)],
            "action": ["read"] * n,
            "resource_type": ["Observation"] * n,
            "resource_id": [None] * n,
            "application": ["EHR, main"] * n,  # a comma, to test CSV quoting in COPY
            "workstation": ['WS "7"'] * n,
            "source_ip": ["10.0.0.1"] * n,
            "outcome": ["success"] * n,
            "purpose_of_use": ["TREAT"] * n,
            "break_the_glass": [False] * n,
            "session_id": [""] * n,
            "source_format": ["csv"] * n,
            "source_file": ["a.csv"] * n,
            "source_line": list(range(2, n + 2)),
        },
        schema=ACCESS_EVENT_SCHEMA,
    )


def test_migrations_reach_head(engine) -> None:
    assert current_revision(engine) == head_revision()
    assert upgrade(engine) == head_revision()  # a second upgrade is a no-op
    tables = set(sa.inspect(engine).get_table_names())
    assert {
        "access_events",
        "signin_events",
        "staff",
        "patients",
        "encounters",
        "quarantine",
    } <= tables


def test_events_are_stored_once_by_id(engine) -> None:
    store = SqlEventStore(engine)
    store.write_access_events(_access(["a", "b", "c"]))
    store.write_access_events(_access(["b", "c", "d"]))
    assert store.flush().access == 4
    assert store.count_access_events() == 4
    with engine.connect() as conn:
        t = access_events.c
        row = conn.execute(
            sa.select(t.application, t.workstation, t.session_id, t.time).where(t.event_id == "a")
        ).one()
    assert row[0] == "EHR, main" and row[1] == 'WS "7"' and row[2] == ""
    stored_time = row[3] if row[3].tzinfo else row[3].replace(tzinfo=UTC)
    assert stored_time == datetime(2026, 11, 1, 2, 14, 0, tzinfo=UTC)


def test_signins_are_stored(engine) -> None:
    frame = pl.DataFrame(
        {"event_id": ["s1"], "time": [datetime(2026, 1, 1, tzinfo=UTC)], "user_id": ["u1"], "kind": ["login"],
         "outcome": ["success"], "source_ip": [None], "device": [None], "application": [None], "session_id": [None],
         "mfa_method": [None], "source_format": ["fhir-auditevent"], "source_file": ["x"], "source_line": [1]},
        schema=SIGNIN_EVENT_SCHEMA,
    )  # fmt: skip
    store = SqlEventStore(engine)
    store.write_signin_events(frame)
    store.write_signin_events(frame)
    assert store.flush().signins == 1 and store.count_signin_events() == 1


def test_context_upserts_replace_by_id(engine) -> None:
    store = SqlContextStore(engine)
    home = Address(
        line="1 Elm St", city="Boston", postal_code="02139", latitude=42.1, longitude=-71.1
    )
    store.upsert_staff(
        [StaffMember("s1", "Rivera", ("Ana",), "nurse", "ICU", home, date(2020, 1, 1))]
    )
    store.upsert_staff(
        [StaffMember("s1", "Rivera", ("Ana",), "nurse", "ED", home, date(2020, 1, 1))]
    )
    store.upsert_patients([Patient("p1", "Rivera", ("Luis",), home, date(1950, 5, 2), vip=True,
                                   sensitive_categories=("hiv",))])  # fmt: skip
    store.upsert_encounters([Encounter("e1", "p1", datetime(2026, 1, 1, tzinfo=UTC), "ICU",
                                       attending_id="s1", care_team=("s1", "s2"))])  # fmt: skip
    store.upsert_related_persons([RelatedPerson("r1", "p1", "SPS", "Rivera", staff_id="s1")])
    store.upsert_departments([Department("ICU", "Intensive Care", "hosp")])
    assert store.counts() == {
        "staff": 1,
        "patients": 1,
        "encounters": 1,
        "related_persons": 1,
        "departments": 1,
    }
    with engine.connect() as conn:
        assert conn.execute(sa.select(staff.c.department)).scalar_one() == "ED"
        assert conn.execute(sa.select(patients.c.address)).scalar_one()["postal_code"] == "02139"
        assert conn.execute(sa.select(encounters.c.care_team)).scalar_one() == ["s1", "s2"]


def test_quarantine_keeps_table_row_and_private_file(engine, tmp_path: Path) -> None:
    sink = QuarantineStore(engine, tmp_path / "q", "run1")
    sink.quarantine([QuarantinedRecord("csv", "a.csv", 7, "bad timestamp in time", "x,y,z")])
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(quarantine.c.line, quarantine.c.reason, quarantine.c.raw)
        ).one()
    assert tuple(row) == (7, "bad timestamp in time", "x,y,z")
    assert sink.path.read_text().count("\n") == 1
    assert sink.path.stat().st_mode & 0o777 == 0o600
