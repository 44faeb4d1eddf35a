"""Alert frames for the case tests: one builder, shared by every test module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from custodes.core.cases import alert_id_of
from custodes.correlate.cases import ALERT_SCHEMA

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def alert(
    event_id: str,
    minute: float,
    *,
    user: str = "u1",
    patient: str | None = "p1",
    action: str = "read",
    source: str = "access",
    score: float = 70.0,
    reasons: str = "no treatment relationship",
    department: str | None = "cardiology",
    rules: tuple[str, ...] = (),
    probability: float | None = None,
) -> tuple:
    return (
        alert_id_of(source, event_id),
        event_id,
        source,
        T0 + timedelta(minutes=minute),
        user,
        patient,
        action,
        score,
        reasons,
        department,
        list(rules),
        probability,
    )


def frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=ALERT_SCHEMA, orient="row")


def compromised_credentials(user: str = "u1", patients: int = 12) -> pl.DataFrame:
    """Unusual sign-in, then a run of accesses, then an export: the whole story."""
    rows = [alert(f"{user}-s", 0, user=user, patient=None, action="login", source="signin")]
    rows += [alert(f"{user}-r{i}", 1 + i, user=user, patient=f"p{i}") for i in range(patients)]
    rows.append(alert(f"{user}-x", 40, user=user, patient="p0", action="export", score=96))
    return frame(rows)
