"""What Custodes writes in the BALP shape, its reader reads back unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.core.events import AccessEvent, Action, Outcome, SignInEvent, SignInKind
from custodes.ingest.codes import PURPOSE_OF_USE_CODES
from custodes.ingest.fhir_audit import (
    FhirAuditEventReader,
    audit_event_resource,
    signin_audit_event_resource,
)

ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", min_size=1, max_size=20)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))
access_events = st.builds(
    AccessEvent,
    event_id=ids,
    time=times,
    user_id=ids,
    patient_id=ids,
    action=st.sampled_from(list(Action)),
    resource_type=st.sampled_from([None, "Observation", "Encounter"]),
    resource_id=ids,
    application=st.sampled_from(["EHR", "Portal"]),
    workstation=st.one_of(st.none(), ids),
    source_ip=st.one_of(st.none(), st.ip_addresses().map(str)),
    outcome=st.sampled_from(list(Outcome)),
    purpose_of_use=st.one_of(st.none(), st.sampled_from(sorted(PURPOSE_OF_USE_CODES))),
)


def _read_lines(lines: list[bytes]):
    return FhirAuditEventReader().parse_lines(lines, "x.ndjson")


@settings(max_examples=150, deadline=None)
@given(st.lists(access_events, min_size=1, max_size=5, unique_by=lambda e: e.event_id))
def test_access_events_round_trip(events: list[AccessEvent]) -> None:
    result = _read_lines([orjson.dumps(audit_event_resource(e)) for e in events])
    assert not result.quarantined
    back = [AccessEvent.from_row(r) for r in result.access.iter_rows(named=True)]
    for original, read in zip(events, back, strict=True):
        expected_resource = (
            (original.resource_type, original.resource_id)
            if original.resource_type not in (None, "Patient")
            else ("Patient", original.patient_id)
        )
        assert (read.event_id, read.time, read.user_id, read.patient_id) == (
            original.event_id, original.time, original.user_id, original.patient_id,
        )  # fmt: skip
        assert (read.action, read.outcome, read.purpose_of_use) == (
            original.action, original.outcome, original.purpose_of_use,
        )  # fmt: skip
        assert (read.resource_type, read.resource_id) == expected_resource
        assert (read.source_ip, read.workstation, read.application) == (
            original.source_ip, original.workstation, original.application,
        )  # fmt: skip
        assert read.break_the_glass == (original.purpose_of_use in {"ETREAT", "BTG", "ERTREAT"})


def test_signins_round_trip() -> None:
    at = datetime(2026, 3, 1, 7, 30, tzinfo=UTC)
    events = [
        SignInEvent(
            "s1", at, "u1", SignInKind.LOGIN, Outcome.SERIOUS_FAILURE, source_ip="10.1.1.1"
        ),
        SignInEvent("s2", at, "u1", SignInKind.LOGOUT),
    ]
    result = _read_lines([orjson.dumps(signin_audit_event_resource(e)) for e in events])
    rows = result.signins.select("event_id", "user_id", "kind", "outcome", "source_ip").rows()
    assert rows == [
        ("s1", "u1", "login", "serious_failure", "10.1.1.1"),
        ("s2", "u1", "logout", "success", None),
    ]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_arbitrary_bytes_never_raise_and_nothing_is_lost(lines: list[bytes]) -> None:
    lines = [line.replace(b"\n", b" ") + b"\n" for line in lines]
    result = _read_lines(lines)
    non_blank = sum(1 for line in lines if line.strip())
    assert result.access.height + result.signins.height + len(result.quarantined) == non_blank


def test_reader_reads_a_written_file(tmp_path: Path) -> None:
    event = AccessEvent("e1", datetime(2026, 1, 1, tzinfo=UTC), "u", "p", Action.READ)
    path = tmp_path / "one.ndjson"
    path.write_bytes(orjson.dumps(audit_event_resource(event)) + b"\n")
    (result,) = list(FhirAuditEventReader().read(path))
    assert result.access["event_id"].to_list() == ["e1"]
