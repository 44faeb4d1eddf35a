"""The case book: record alerts, build or update cases, close them with verdicts.

It reaches storage only through the ``CaseStore`` port, so the same code runs over
the in-memory store in tests and over SQLite or PostgreSQL in production.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

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
from custodes.correlate.cases import ALERT_SCHEMA, correlate
from custodes.correlate.rules import CorrelationRule, load_rules

#: The orders of the case queue: most severe first, or least sure first.
QUEUE_ORDERS = ("severity", "uncertain")


def uncertainty_of(score: float) -> float:
    """How unsure the model is of a case, from 0 (sure) to 1 (a coin toss).

    A score is the model's belief on a 0-100 scale (with verdicts, four fifths of it
    are the ranker's probability of misuse), so 50 is the toss-up and the distance
    from it is the confidence.

    >>> uncertainty_of(50), uncertainty_of(75), uncertainty_of(100), uncertainty_of(30)
    (1.0, 0.5, 0.0, 0.6)
    """
    return round(1.0 - min(abs(score - 50.0), 50.0) / 50.0, 4)


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


def alerts_to_records(frame: pl.DataFrame) -> list[Alert]:
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
            department=row["department"],
            case_id=row.get("case_id"),
            suppressed_by=row.get("suppression_id"),
            status=AlertStatus.CLOSED if row.get("suppression_id") else AlertStatus.NEW,
        )
        for row in frame.iter_rows(named=True)
    ]


def records_to_alerts(alerts: Sequence[Alert]) -> pl.DataFrame:
    return pl.DataFrame(
        [[getattr(a, name) for name in ALERT_SCHEMA] for a in alerts],
        schema=ALERT_SCHEMA,
        orient="row",
    )


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

        Alerts that land in the window of an open case join it (the case is correlated
        again with all its alerts); a closed case stays closed and the newcomers open a
        follow-up case.
        """
        now = self.clock.now()
        fresh = deduplicate(alerts, self.store.known_alert_ids(alerts["alert_id"].to_list()))
        kept, suppressed = suppress(fresh, self.store.suppressions(), now, rule_hits)
        if not suppressed.is_empty():
            self.store.add_alerts(alerts_to_records(suppressed))
        if kept.is_empty():
            return RecordReport(
                alerts.height, 0, alerts.height - fresh.height, suppressed.height, 0, 0
            )
        users = kept["user_id"].unique().to_list()
        offences = self.store.prior_offences(users)
        first = correlate(kept, self.rules, prior_offences=offences)
        statuses = self.store.case_statuses([c.case_id for c in first.cases])
        closed = frozenset(c for c, s in statuses.items() if s is CaseStatus.CLOSED)
        open_ids = [c for c, s in statuses.items() if s is not CaseStatus.CLOSED]
        earlier = self.store.alerts_of_cases(open_ids)
        combined = pl.concat([kept, records_to_alerts(earlier)]) if earlier else kept
        result = correlate(combined, self.rules, prior_offences=offences, closed_case_ids=closed)
        self.store.add_alerts(alerts_to_records(kept))
        self.store.save_cases(result.cases, dict(result.assignment.iter_rows()), now)
        touched = {c.case_id for c in result.cases}
        return RecordReport(
            alerts_in=alerts.height,
            new_alerts=kept.height,
            duplicates=alerts.height - fresh.height,
            suppressed=suppressed.height,
            cases_touched=len(touched),
            new_cases=len(touched - set(statuses)),
            case_ids=tuple(sorted(touched)),
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
            return [replace(c, uncertainty=uncertainty_of(c.score)) for c in found]
        # The queue is kept short by the alert budget, so all of it is read and sorted.
        found = self.store.cases(statuses, 1_000_000)
        ranked = [replace(c, uncertainty=uncertainty_of(c.score)) for c in found]
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
        """``event_id, label`` of every alert in a closed case: 1 for confirmed misuse."""
        closed = self.store.cases([CaseStatus.CLOSED], 1_000_000)
        rows = []
        for case in closed:
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
            "uncertainty": uncertainty_of(case.score),
            "verdict": str(case.verdict) if case.verdict else None,
            "closed_by": case.closed_by,
            "closed_at": case.closed_at.isoformat() if case.closed_at else None,
        }
