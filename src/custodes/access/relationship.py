"""The care relationship, from the hospital context: the fact ``decide`` needs most."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from custodes.context import HospitalContext

#: After an encounter ends its team may still need the record (results, discharge letters).
AFTER_DISCHARGE = timedelta(days=30)


def care_relationship(
    context: HospitalContext, user_id: str, patient_id: str, at: datetime,
    after_discharge: timedelta = AFTER_DISCHARGE,
) -> bool:  # fmt: skip
    """True when ``user_id`` is on the care team (or attending) of an encounter of the
    patient that is open at ``at`` or ended less than ``after_discharge`` before.

    >>> from datetime import UTC
    >>> from custodes.core.entities import Encounter
    >>> t = datetime(2026, 3, 2, 9, tzinfo=UTC)
    >>> ctx = HospitalContext.from_entities(encounters=[Encounter("e1", "p1", t, care_team=("s1",))])
    >>> care_relationship(ctx, "s1", "p1", t), care_relationship(ctx, "s2", "p1", t)
    (True, False)
    """
    team = context.care_team
    hits = team.filter(
        (pl.col("staff_id") == user_id)
        & (pl.col("patient_id") == patient_id)
        & (pl.col("start") <= at)
        & (pl.col("end").is_null() | (pl.col("end") + after_discharge > at))
    )
    return not hits.is_empty()
