from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone

import pytest

from custodes.core.clock import FixedClock
from custodes.core.events import (
    ACCESS_EVENT_SCHEMA,
    SIGNIN_EVENT_SCHEMA,
    AccessEvent,
    Action,
    Outcome,
    SignInEvent,
)


def test_schemas_hold_exactly_the_dataclass_fields() -> None:
    assert list(ACCESS_EVENT_SCHEMA) == [f.name for f in fields(AccessEvent)]
    assert list(SIGNIN_EVENT_SCHEMA) == [f.name for f in fields(SignInEvent)]


def test_access_event_needs_an_aware_time_and_stores_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AccessEvent("e", datetime(2026, 1, 1), "u", "p", Action.READ)
    paris = timezone(timedelta(hours=1))
    event = AccessEvent("e", datetime(2026, 1, 1, 3, tzinfo=paris), "u", "p", Action.READ)
    assert event.time == datetime(
        2026, 1, 1, 2, tzinfo=UTC
    ) and event.time.utcoffset() == timedelta(0)


def test_row_round_trip() -> None:
    event = AccessEvent(
        "e1", datetime(2026, 1, 1, tzinfo=UTC), "u", "p", Action.EXPORT, outcome=Outcome.MINOR_FAILURE,
        purpose_of_use="ETREAT", break_the_glass=True, source_line=4,
    )  # fmt: skip
    assert AccessEvent.from_row(event.to_row()) == event


def test_events_are_immutable() -> None:
    event = AccessEvent("e", datetime(2026, 1, 1, tzinfo=UTC), "u", "p", Action.READ)
    with pytest.raises(AttributeError):
        event.user_id = "other"  # type: ignore[misc]


def test_fixed_clock_refuses_naive_time() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 1, 1))
