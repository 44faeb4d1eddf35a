"""Alerts, cases and suppressions in the relational store (SQLite and PostgreSQL).

Implements ``CaseStore`` over SQLAlchemy Core. Alerts are inserted once (their id is
derived from the event, so a re-run finds them known); cases are upserted without
touching the status and verdict a privacy officer set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from custodes.core.cases import (
    Alert,
    AlertStatus,
    Case,
    CaseStatus,
    Severity,
    Suppression,
    SuppressionScope,
    Verdict,
)
from custodes.storage.schema import alerts, cases, suppressions

_CHUNK = 500  # ids per IN (...) list: far below every driver's parameter limit


def _utc(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _chunks(items: Sequence[str]) -> list[list[str]]:
    values = list(dict.fromkeys(items))
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _alert(row) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        event_id=row.event_id,
        source=row.source,
        time=_utc(row.time),
        user_id=row.user_id,
        patient_id=row.patient_id,
        action=row.action,
        score=row.score,
        reasons=row.reasons,
        department=row.department,
        status=AlertStatus(row.status),
        case_id=row.case_id,
        suppressed_by=row.suppressed_by,
        rules=tuple(row.rules or ()),
        probability=row.probability,
        patient_case_id=row.patient_case_id,
        recorded_at=_utc(row.recorded_at),
    )


def _case(row) -> Case:
    return Case(
        case_id=row.case_id,
        kind=row.kind,
        user_id=row.user_id,
        severity=Severity(row.severity),
        score=row.score,
        first_time=_utc(row.first_time),
        last_time=_utc(row.last_time),
        alert_ids=tuple(row.alert_ids),
        patient_count=row.patient_count,
        tactics=tuple(row.tactics),
        story=tuple(row.story),
        prior_offences=row.prior_offences,
        status=CaseStatus(row.status),
        verdict=Verdict(row.verdict) if row.verdict else None,
        verdict_note=row.verdict_note,
        closed_by=row.closed_by,
        closed_at=_utc(row.closed_at),
        opened_at=_utc(row.opened_at),
        subject=row.subject,
        patient_id=row.patient_id,
        user_count=row.user_count,
        probability=row.probability,
    )


def _severity_rank() -> sa.Case:
    return sa.case({s.value: s.rank for s in Severity}, value=cases.c.severity, else_=0)


class SqlCaseStore:
    """``CaseStore`` over SQLAlchemy Core."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def known_alert_ids(self, alert_ids: Sequence[str]) -> set[str]:
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(alert_ids):
                rows = conn.execute(
                    sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(chunk))
                )
                known.update(r.alert_id for r in rows)
        return known

    def add_alerts(self, new: Sequence[Alert]) -> int:
        fresh = {a.alert_id: a for a in new}
        with self.engine.begin() as conn:
            for chunk in _chunks(list(fresh)):
                known = conn.execute(
                    sa.select(alerts.c.alert_id).where(alerts.c.alert_id.in_(chunk))
                )
                for row in known:
                    fresh.pop(row.alert_id, None)
            if fresh:
                conn.execute(
                    alerts.insert(),
                    [
                        {
                            "alert_id": a.alert_id,
                            "event_id": a.event_id,
                            "source": a.source,
                            "time": a.time,
                            "user_id": a.user_id,
                            "patient_id": a.patient_id,
                            "action": a.action,
                            "score": a.score,
                            "reasons": a.reasons,
                            "department": a.department,
                            "status": a.status.value,
                            "case_id": a.case_id,
                            "suppressed_by": a.suppressed_by,
                            "rules": list(a.rules),
                            "probability": a.probability,
                            "patient_case_id": a.patient_case_id,
                            "recorded_at": a.recorded_at,
                        }
                        for a in fresh.values()
                    ],
                )
        return len(fresh)

    def alerts_of_cases(self, case_ids: Sequence[str]) -> list[Alert]:
        found: dict[str, Alert] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(case_ids):
                for column in (alerts.c.case_id, alerts.c.patient_case_id):
                    rows = conn.execute(sa.select(alerts).where(column.in_(chunk)))
                    found.update((r.alert_id, _alert(r)) for r in rows)
        return sorted(found.values(), key=lambda a: (a.time, a.alert_id))

    def alerts_near(
        self,
        since: datetime,
        *,
        user_ids: Sequence[str] = (),
        patient_ids: Sequence[str] = (),
    ) -> list[Alert]:
        found: dict[str, Alert] = {}
        with self.engine.connect() as conn:
            for column, values in ((alerts.c.user_id, user_ids), (alerts.c.patient_id, patient_ids)):
                for chunk in _chunks(values):
                    rows = conn.execute(
                        sa.select(alerts).where(
                            column.in_(chunk),
                            alerts.c.time >= since,
                            alerts.c.suppressed_by.is_(None),
                        )
                    )
                    found.update((r.alert_id, _alert(r)) for r in rows)
        return sorted(found.values(), key=lambda a: (a.time, a.alert_id))

    def save_cases(
        self,
        new: Sequence[Case],
        assignment: Mapping[str, str],
        at: datetime,
        patient_assignment: Mapping[str, str] | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            existing: set[str] = set()
            for chunk in _chunks([c.case_id for c in new]):
                rows = conn.execute(sa.select(cases.c.case_id).where(cases.c.case_id.in_(chunk)))
                existing.update(r.case_id for r in rows)
            inserts, updates = [], []
            for case in new:
                values = {
                    "kind": case.kind,
                    "user_id": case.user_id,
                    "severity": case.severity.value,
                    "score": case.score,
                    "first_time": case.first_time,
                    "last_time": case.last_time,
                    "alert_ids": list(case.alert_ids),
                    "patient_count": case.patient_count,
                    "tactics": list(case.tactics),
                    "story": list(case.story),
                    "prior_offences": case.prior_offences,
                    "subject": case.subject,
                    "patient_id": case.patient_id,
                    "user_count": case.user_count,
                    "probability": case.probability,
                }
                if case.case_id in existing:
                    updates.append({"key": case.case_id, **values})
                else:
                    inserts.append(
                        {"case_id": case.case_id, "status": case.status.value, "opened_at": at,
                         **values}
                    )  # fmt: skip
            if inserts:
                conn.execute(cases.insert(), inserts)
            if updates:
                conn.execute(
                    cases.update()
                    .where(cases.c.case_id == sa.bindparam("key"))
                    .values({name: sa.bindparam(name) for name in updates[0] if name != "key"}),
                    updates,
                )
            for column, links in (
                (alerts.c.case_id, assignment),
                (alerts.c.patient_case_id, patient_assignment or {}),
            ):
                by_case: dict[str, list[str]] = {}
                for alert_id, case_id in links.items():
                    by_case.setdefault(case_id, []).append(alert_id)
                for case_id, alert_ids in by_case.items():
                    for chunk in _chunks(alert_ids):
                        conn.execute(
                            alerts.update()
                            .where(alerts.c.alert_id.in_(chunk))
                            .values({column.name: case_id})
                        )

    def drop_cases(self, case_ids: Sequence[str]) -> None:
        with self.engine.begin() as conn:
            for chunk in _chunks(case_ids):
                conn.execute(
                    cases.delete().where(
                        cases.c.case_id.in_(chunk), cases.c.status != CaseStatus.CLOSED.value
                    )
                )

    def case(self, case_id: str) -> Case | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).first()
        return _case(row) if row else None

    def cases(self, statuses: Sequence[CaseStatus], limit: int) -> list[Case]:
        query = (
            sa.select(cases)
            .where(cases.c.status.in_([s.value for s in statuses]))
            .order_by(
                _severity_rank().desc(), cases.c.score.desc(), cases.c.first_time, cases.c.case_id
            )
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [_case(r) for r in conn.execute(query)]

    def case_statuses(self, case_ids: Sequence[str]) -> dict[str, CaseStatus]:
        found: dict[str, CaseStatus] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(case_ids):
                rows = conn.execute(
                    sa.select(cases.c.case_id, cases.c.status).where(cases.c.case_id.in_(chunk))
                )
                found.update((r.case_id, CaseStatus(r.status)) for r in rows)
        return found

    def set_case_status(
        self,
        case_id: str,
        status: CaseStatus,
        at: datetime,
        *,
        verdict: Verdict | None = None,
        note: str | None = None,
        by: str | None = None,
    ) -> Case | None:
        values: dict = {"status": status.value}
        if status is CaseStatus.CLOSED:
            values |= {
                "verdict": verdict.value if verdict else None,
                "verdict_note": note,
                "closed_by": by,
                "closed_at": at,
            }
        with self.engine.begin() as conn:
            done = conn.execute(cases.update().where(cases.c.case_id == case_id).values(**values))
            if not done.rowcount:
                return None
            conn.execute(
                alerts.update()
                .where(alerts.c.case_id == case_id)
                .values(status=AlertStatus(status.value).value)
            )
        return self.case(case_id)

    def prior_offences(self, user_ids: Sequence[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in _chunks(user_ids):
                rows = conn.execute(
                    sa.select(cases.c.user_id, sa.func.count())
                    .where(
                        cases.c.user_id.in_(chunk),
                        cases.c.verdict == Verdict.CONFIRMED_MISUSE.value,
                    )
                    .group_by(cases.c.user_id)
                )
                counts.update((user, int(n)) for user, n in rows)
        return counts

    def add_suppression(self, suppression: Suppression) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                suppressions.insert().values(
                    suppression_id=suppression.suppression_id,
                    scope=suppression.scope.value,
                    value=suppression.value,
                    reason=suppression.reason,
                    created_by=suppression.created_by,
                    created_at=suppression.created_at,
                    expires_at=suppression.expires_at,
                    revoked_at=suppression.revoked_at,
                )
            )

    def suppressions(self) -> list[Suppression]:
        query = sa.select(suppressions).order_by(
            suppressions.c.created_at, suppressions.c.suppression_id
        )
        with self.engine.connect() as conn:
            return [
                Suppression(
                    r.suppression_id,
                    SuppressionScope(r.scope),
                    r.value,
                    r.reason,
                    r.created_by,
                    _utc(r.created_at),
                    _utc(r.expires_at),
                    _utc(r.revoked_at),
                )
                for r in conn.execute(query)
            ]

    def revoke_suppression(self, suppression_id: str, at: datetime) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                suppressions.update()
                .where(
                    suppressions.c.suppression_id == suppression_id,
                    suppressions.c.revoked_at.is_(None),
                )
                .values(revoked_at=at)
            )
        return bool(done.rowcount)




def queue_metrics(engine: Engine) -> tuple[dict[str, float], dict[str, list[float]]]:
    """Counts, and the delays of every alert and case, for the metrics endpoint (seconds).

    ``event_to_alert``: from an alert's event to Custodes storing the alert;
    ``alert_to_case``: from a case's first alert stored to the case's opening (a case
    opens later than its first alert when its rule fires only on a later one, such as
    the third user on one record);
    ``event_to_case``: from the first access of a case to its opening;
    ``case_to_action``: from the opening to the first response step that succeeded;
    ``case_to_closure``: from the opening to the verdict.
    """
    from custodes.storage.schema import access_events, response_runs

    with engine.connect() as conn:
        alert_count = conn.execute(sa.select(sa.func.count()).select_from(alerts)).scalar_one()
        accesses = conn.execute(
            sa.select(sa.func.count()).select_from(access_events)
        ).scalar_one()
        rows = conn.execute(
            sa.select(cases.c.case_id, cases.c.status, cases.c.first_time, cases.c.opened_at,
                      cases.c.closed_at)
        ).all()
        alert_times = conn.execute(
            sa.select(alerts.c.time, alerts.c.recorded_at).where(
                alerts.c.recorded_at.is_not(None), alerts.c.suppressed_by.is_(None)
            )
        ).all()
        first_alert: dict[str, datetime] = {}
        for link in (alerts.c.case_id, alerts.c.patient_case_id):
            for case_id, at in conn.execute(
                sa.select(link, sa.func.min(alerts.c.recorded_at))
                .where(link.is_not(None), alerts.c.recorded_at.is_not(None))
                .group_by(link)
            ):
                first_alert[case_id] = _utc(at)
        first_action = dict(
            conn.execute(
                sa.select(response_runs.c.case_id, sa.func.min(response_runs.c.at))
                .where(response_runs.c.status == "succeeded")
                .group_by(response_runs.c.case_id)
            ).all()
        )
    opened = {r.case_id: _utc(r.opened_at) for r in rows if r.opened_at}
    counts: dict[str, float] = {
        "alerts": float(alert_count),
        "accesses": float(accesses),
        "alerts_per_10000_accesses": alert_count * 10_000 / accesses if accesses else 0.0,
    }
    for status in CaseStatus:
        counts[f"cases_{status.value}"] = float(sum(r.status == status.value for r in rows))
    delays = {
        "event_to_alert_seconds": [
            (_utc(recorded) - _utc(time)).total_seconds() for time, recorded in alert_times
        ],
        "alert_to_case_seconds": [
            max(0.0, (opened[c] - at).total_seconds()) for c, at in first_alert.items()
            if c in opened
        ],
        "event_to_case_seconds": [
            (opened[r.case_id] - _utc(r.first_time)).total_seconds() for r in rows
            if r.case_id in opened
        ],
        "case_to_action_seconds": [
            (_utc(at) - opened[c]).total_seconds() for c, at in first_action.items()
            if c in opened
        ],
        "case_to_closure_seconds": [
            (_utc(r.closed_at) - opened[r.case_id]).total_seconds() for r in rows
            if r.closed_at and r.case_id in opened
        ],
    }
    return counts, delays
