"""The case book: record alerts, build or update cases, close them with verdicts.

It reaches storage only through the ``CaseStore`` port, so the same code runs over
the in-memory store in tests and over SQLite or PostgreSQL in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import polars as pl

from custodes.core.cases import (
    Alert,
    AlertStatus,
    Case,
    CaseStatus,
    Suppression,
    SuppressionScope,
    Verdict,
)
from custodes.core.clock import Clock
from custodes.core.errors import CustodesError
from custodes.core.ports import CaseStore
from custodes.correlate.alerts import deduplicate, suppress
from custodes.correlate.cases import ALERT_SCHEMA, conform_alerts, correlate
from custodes.correlate.rules import CorrelationRule, load_rules

#: The orders of the case queue: most severe first, or least sure first.
QUEUE_ORDERS = ("severity", "uncertain")


def uncertainty_of(score: float, probability: float | None = None) -> float:
    """How unsure the model is of a case, from 0 (sure) to 1 (a coin toss).

    With a fitted ranker, ``probability`` is its probability of misuse and 0.5 is the
    toss-up; without one, the score is the model's belief on a 0-100 scale, 50 the
    toss-up. The distance from the toss-up is the confidence.

    >>> uncertainty_of(50), uncertainty_of(75), uncertainty_of(100), uncertainty_of(30)
    (1.0, 0.5, 0.0, 0.6)
    >>> uncertainty_of(99, probability=0.55)
    0.9
    """
    if probability is not None:
        return round(1.0 - min(abs(probability - 0.5), 0.5) / 0.5, 4)
    return round(1.0 - min(abs(score - 50.0), 50.0) / 50.0, 4)


def case_uncertainty(case: Case) -> float:
    """``uncertainty_of`` a case: its ranker probability when it has one."""
    return uncertainty_of(case.score, case.probability)


class CaseNotFoundError(CustodesError):
    """No case has that id."""


class CaseClosedError(CustodesError):
    """The case is already closed."""


@dataclass(frozen=True)
class RecordReport:
    """What recording a batch of alerts did."""

    alerts_in: int
    new_alerts: int
    duplicates: int
    suppressed: int
    cases_touched: int
    new_cases: int
    case_ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "case_ids"}


def alerts_to_records(frame: pl.DataFrame, recorded_at: datetime | None = None) -> list[Alert]:
    return [
        Alert(
            alert_id=row["alert_id"],
            event_id=row["event_id"],
            source=row["source"],
            time=row["time"],
            user_id=row["user_id"],
            patient_id=row["patient_id"],
            action=row["action"],
            score=float(row["score"]),
            reasons=row["reasons"] or "",
            rules=tuple(row.get("rules") or ()),
            probability=row.get("probability"),
            department=row["department"],
            case_id=row.get("case_id"),
            patient_case_id=row.get("patient_case_id"),
            suppressed_by=row.get("suppression_id"),
            status=AlertStatus.CLOSED if row.get("suppression_id") else AlertStatus.NEW,
            recorded_at=recorded_at,
        )
        for row in frame.iter_rows(named=True)
    ]


def records_to_alerts(alerts: Sequence[Alert]) -> pl.DataFrame:
    """Stored alerts as an alert frame, with the cases they already belong to."""
    names = [*ALERT_SCHEMA, "case_id", "patient_case_id"]
    schema = {**ALERT_SCHEMA, "case_id": pl.String(), "patient_case_id": pl.String()}
    rows = [
        [list(a.rules) if name == "rules" else getattr(a, name) for name in names]
        for a in alerts
    ]
    return pl.DataFrame(rows, schema=schema, orient="row")


class CaseBook:
    """Alerts in, cases out; verdicts and suppressions kept with who and why."""

    def __init__(
        self, store: CaseStore, clock: Clock, rules: Sequence[CorrelationRule] | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.rules = tuple(rules) if rules is not None else load_rules()

    def record(self, alerts: pl.DataFrame, rule_hits: pl.DataFrame | None = None) -> RecordReport:
        """Store new alerts (each once), drop the suppressed, build or update cases.

        A newcomer within the gap of an open case's last alert joins it (the case is
        correlated again with all its alerts, and keeps its id); a closed case stays
        closed and newcomers open a follow-up case. Patient rules see the other users'
        recent alerts on the same record too, whatever became of their own cases.
        Rule-scoped suppressions read the alerts' ``rules`` column, or ``rule_hits``
        (``event_id``, ``rule_id``) when given.
        """
        now = self.clock.now()
        alerts = conform_alerts(alerts).drop("case_id", "patient_case_id")
        fresh = deduplicate(alerts, self.store.known_alert_ids(alerts["alert_id"].to_list()))
        kept, suppressed = suppress(fresh, self.store.suppressions(), now, rule_hits)
        if not suppressed.is_empty():
            self.store.add_alerts(alerts_to_records(suppressed, now))
        if kept.is_empty():
            return RecordReport(
                alerts.height, 0, alerts.height - fresh.height, suppressed.height, 0, 0
            )
        user_input, patient_input, statuses = self._with_neighbours(kept)
        users = kept["user_id"].unique().to_list()
        result = correlate(
            user_input,
            self.rules,
            prior_offences=self.store.prior_offences(users),
            closed_case_ids=frozenset(c for c, s in statuses.items() if s is CaseStatus.CLOSED),
            patient_alerts=patient_input,
        )
        self.store.add_alerts(alerts_to_records(kept, now))
        cases = result.cases
        self.store.save_cases(
            cases,
            dict(result.assignment.iter_rows()),
            now,
            dict(result.patient_assignment.iter_rows()),
        )
        if result.merged:
            self.store.drop_cases(sorted(result.merged))
        touched = {c.case_id for c in cases}
        return RecordReport(
            alerts_in=alerts.height,
            new_alerts=kept.height,
            duplicates=alerts.height - fresh.height,
            suppressed=suppressed.height,
            cases_touched=len(touched),
            new_cases=len(touched - set(statuses)),
            case_ids=tuple(sorted(touched)),
        )

    def _with_neighbours(
        self, kept: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame | None, dict[str, CaseStatus]]:
        """The newcomers with the stored alerts they may correlate with: for the user
        cases, every alert of the open cases they may join; for the patient cases, the
        recent alerts on the same records not yet in a closed patient case, and every
        alert of the open patient cases among them. And the statuses of those cases."""
        start = kept["time"].min()
        assert isinstance(start, datetime)
        near_users = self.store.alerts_near(
            start - self._gap("user"), user_ids=kept["user_id"].unique().to_list()
        )
        patient_rules = any(r.subject == "patient" for r in self.rules)
        near_patients = (
            self.store.alerts_near(
                start - self._gap("patient"),
                patient_ids=kept["patient_id"].drop_nulls().unique().to_list(),
            )
            if patient_rules
            else []
        )
        ids = {a.case_id for a in near_users} | {a.patient_case_id for a in near_patients}
        statuses = self.store.case_statuses(sorted(i for i in ids if i))
        open_ids = [c for c, s in statuses.items() if s is not CaseStatus.CLOSED]
        earlier = self.store.alerts_of_cases(open_ids)
        open_set = set(open_ids)
        user_alerts = [a for a in earlier if a.case_id in open_set]
        user_input = pl.concat([kept, records_to_alerts(user_alerts)], how="diagonal_relaxed")
        if not patient_rules:
            return user_input, None, statuses
        patient_alerts = {
            a.alert_id: a
            for a in [*near_patients, *earlier]
            if a.patient_case_id is None or a.patient_case_id in open_set
        }
        patient_input = pl.concat(
            [kept, records_to_alerts(list(patient_alerts.values()))], how="diagonal_relaxed"
        )
        return user_input, patient_input, statuses

    def _gap(self, subject: str) -> timedelta:
        return max(
            (r.timespan for r in self.rules if r.subject == subject), default=timedelta(hours=1)
        )

    def queue(
        self, *, include_closed: bool = False, limit: int = 100, order: str = "severity"
    ) -> list[Case]:
        """The cases to work on: most severe first, or with ``order="uncertain"`` those
        the model is least sure of first (active learning: their verdicts teach the
        ranker most), ties by severity. Each carries its ``uncertainty``."""
        if order not in QUEUE_ORDERS:
            raise CustodesError(f"order must be one of {', '.join(QUEUE_ORDERS)}, not {order!r}")
        statuses = list(CaseStatus) if include_closed else [CaseStatus.NEW, CaseStatus.ACKNOWLEDGED]
        if order == "severity":
            found = self.store.cases(statuses, limit)
            return [replace(c, uncertainty=case_uncertainty(c)) for c in found]
        # The queue is kept short by the alert budget, so all of it is read and sorted.
        found = self.store.cases(statuses, 1_000_000)
        ranked = [replace(c, uncertainty=case_uncertainty(c)) for c in found]
        ranked.sort(key=lambda c: -(c.uncertainty or 0.0))  # stable: severity order breaks ties
        return ranked[:limit]

    def show(self, case_id: str) -> tuple[Case, list[Alert]]:
        case = self.store.case(case_id)
        if case is None:
            raise CaseNotFoundError(f"no case {case_id!r}")
        return case, self.store.alerts_of_cases([case_id])

    def acknowledge(self, case_id: str, by: str) -> Case:
        case = self._open_case(case_id)
        updated = self.store.set_case_status(
            case.case_id, CaseStatus.ACKNOWLEDGED, self.clock.now(), by=by
        )
        assert updated is not None
        return updated

    def close(self, case_id: str, verdict: Verdict, by: str, note: str | None = None) -> Case:
        self._open_case(case_id)
        closed = self.store.set_case_status(
            case_id, CaseStatus.CLOSED, self.clock.now(), verdict=verdict, note=note, by=by
        )
        assert closed is not None
        return closed

    def _open_case(self, case_id: str) -> Case:
        case = self.store.case(case_id)
        if case is None:
            raise CaseNotFoundError(f"no case {case_id!r}")
        if case.status is CaseStatus.CLOSED:
            raise CaseClosedError(f"case {case_id} is already closed ({case.verdict})")
        return case

    def suppress(
        self,
        scope: SuppressionScope,
        value: str,
        reason: str,
        by: str,
        lasting: timedelta,
    ) -> Suppression:
        """Silence future alerts in one scope for ``lasting``, for a stated reason."""
        now = self.clock.now()
        try:
            suppression = Suppression(
                "s-" + uuid.uuid4().hex[:12], scope, value, reason, by, now, now + lasting
            )
        except ValueError as err:
            raise CustodesError(str(err)) from err
        self.store.add_suppression(suppression)
        return suppression

    def verdict_labels(self) -> pl.DataFrame:
        """``event_id, label`` of every alert in a closed user case: 1 for confirmed misuse.

        A patient case's verdict speaks of a record, not of each user's access, so each
        alert takes its label from its own user's case."""
        closed = self.store.cases([CaseStatus.CLOSED], 1_000_000)
        rows = []
        for case in (c for c in closed if c.subject == "user"):
            label = int(case.verdict is Verdict.CONFIRMED_MISUSE)
            rows.extend(
                (alert.event_id, label) for alert in self.store.alerts_of_cases([case.case_id])
            )
        return pl.DataFrame(rows, schema={"event_id": pl.String, "label": pl.Int64}, orient="row")

    @staticmethod
    def describe(case: Case) -> dict:
        """A case as JSON-ready data: its summary, status, verdict and history."""
        return {
            **case.summary(),
            "status": str(case.status),
            "score": round(case.score, 2),
            "prior_offences": case.prior_offences,
            "probability": None if case.probability is None else round(case.probability, 4),
            "uncertainty": case_uncertainty(case),
            "verdict": str(case.verdict) if case.verdict else None,
            "closed_by": case.closed_by,
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        }
