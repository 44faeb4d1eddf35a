"""The case store in memory, for unit tests and dry runs."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from custodes.core.cases import (
    Alert,
    AlertStatus,
    Case,
    CaseStatus,
    Suppression,
    Verdict,
)


class MemoryCaseStore:
    """Implements ``CaseStore`` with dictionaries under one lock."""

    def __init__(self) -> None:
        self._alerts: dict[str, Alert] = {}
        self._cases: dict[str, Case] = {}
        self._suppressions: dict[str, Suppression] = {}
        self._lock = threading.Lock()

    def known_alert_ids(self, alert_ids: Sequence[str]) -> set[str]:
        return {a for a in alert_ids if a in self._alerts}

    def add_alerts(self, alerts: Sequence[Alert]) -> int:
        with self._lock:
            fresh = [a for a in alerts if a.alert_id not in self._alerts]
            for alert in fresh:
                self._alerts[alert.alert_id] = alert
            return len({a.alert_id for a in fresh})

    def alerts_of_cases(self, case_ids: Sequence[str]) -> list[Alert]:
        wanted = set(case_ids)
        return sorted(
            (
                a
                for a in self._alerts.values()
                if a.case_id in wanted or a.patient_case_id in wanted
            ),
            key=lambda a: (a.time, a.alert_id),
        )

    def alerts_near(
        self,
        since: datetime,
        *,
        user_ids: Sequence[str] = (),
        patient_ids: Sequence[str] = (),
    ) -> list[Alert]:
        users, patients = set(user_ids), set(patient_ids)
        return sorted(
            (
                a
                for a in self._alerts.values()
                if a.time >= since
                and a.suppressed_by is None
                and (a.user_id in users or a.patient_id in patients)
            ),
            key=lambda a: (a.time, a.alert_id),
        )

    def save_cases(
        self,
        cases: Sequence[Case],
        assignment: Mapping[str, str],
        at: datetime,
        patient_assignment: Mapping[str, str] | None = None,
    ) -> None:
        with self._lock:
            for case in cases:
                known = self._cases.get(case.case_id)
                if known is None:
                    self._cases[case.case_id] = replace(case, opened_at=at)
                else:
                    self._cases[case.case_id] = replace(
                        case,
                        status=known.status,
                        verdict=known.verdict,
                        verdict_note=known.verdict_note,
                        closed_by=known.closed_by,
                        closed_at=known.closed_at,
                        opened_at=known.opened_at,
                    )
            for alert_id, case_id in assignment.items():
                if alert_id in self._alerts:
                    self._alerts[alert_id] = replace(self._alerts[alert_id], case_id=case_id)
            for alert_id, case_id in (patient_assignment or {}).items():
                if alert_id in self._alerts:
                    self._alerts[alert_id] = replace(
                        self._alerts[alert_id], patient_case_id=case_id
                    )

    def drop_cases(self, case_ids: Sequence[str]) -> None:
        with self._lock:
            for case_id in case_ids:
                known = self._cases.get(case_id)
                if known is not None and known.status is not CaseStatus.CLOSED:
                    del self._cases[case_id]

    def case(self, case_id: str) -> Case | None:
        return self._cases.get(case_id)

    def cases(self, statuses: Sequence[CaseStatus], limit: int) -> list[Case]:
        chosen = [c for c in self._cases.values() if c.status in statuses]
        chosen.sort(key=lambda c: (-c.severity.rank, -c.score, c.first_time, c.case_id))
        return chosen[:limit]

    def case_statuses(self, case_ids: Sequence[str]) -> dict[str, CaseStatus]:
        return {c: self._cases[c].status for c in case_ids if c in self._cases}

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
        with self._lock:
            case = self._cases.get(case_id)
            if case is None:
                return None
            closing = status is CaseStatus.CLOSED
            case = replace(
                case,
                status=status,
                verdict=verdict if closing else case.verdict,
                verdict_note=note if closing else case.verdict_note,
                closed_by=by if closing else case.closed_by,
                closed_at=at if closing else case.closed_at,
            )
            self._cases[case_id] = case
            alert_status = AlertStatus(status.value)
            # An alert's status follows its own user's case, not a patient case.
            for alert_id in case.alert_ids if case.subject == "user" else ():
                if alert_id in self._alerts:
                    self._alerts[alert_id] = replace(self._alerts[alert_id], status=alert_status)
            return case

    def prior_offences(self, user_ids: Sequence[str]) -> dict[str, int]:
        wanted = set(user_ids)
        counts: dict[str, int] = {}
        for case in self._cases.values():
            if case.user_id in wanted and case.verdict is Verdict.CONFIRMED_MISUSE:
                counts[case.user_id] = counts.get(case.user_id, 0) + 1
        return counts

    def add_suppression(self, suppression: Suppression) -> None:
        self._suppressions[suppression.suppression_id] = suppression

    def suppressions(self) -> list[Suppression]:
        return sorted(self._suppressions.values(), key=lambda s: (s.created_at, s.suppression_id))

    def revoke_suppression(self, suppression_id: str, at: datetime) -> bool:
        known = self._suppressions.get(suppression_id)
        if known is None or known.revoked_at is not None:
            return False
        self._suppressions[suppression_id] = replace(known, revoked_at=at)
        return True
