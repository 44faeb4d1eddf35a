"""Alerts, cases, verdicts and suppressions: what a privacy officer works through.

An *alert* is one scored access (or sign-in) whose score crossed the alert threshold.
Correlation groups alerts into *cases*; a case is closed with a *verdict*. A
*suppression* silences future alerts in one scope (a user, a patient, a rule or a
department) until it expires, and always says why.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class CaseStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Verdict(StrEnum):
    """How a privacy officer closes a case."""

    CONFIRMED_MISUSE = "confirmed_misuse"
    FALSE_POSITIVE = "false_positive"
    JUSTIFIED_ACCESS = "justified_access"

    @property
    def is_misuse(self) -> bool:
        """The label the supervised ranker learns: only confirmed misuse is positive."""
        return self is Verdict.CONFIRMED_MISUSE


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Severity).index(self)

    def raised(self, steps: int = 1) -> Severity:
        """One level up (at most critical).

        >>> Severity.MEDIUM.raised()
        <Severity.HIGH: 'high'>
        >>> Severity.CRITICAL.raised()
        <Severity.CRITICAL: 'critical'>
        """
        levels = list(Severity)
        return levels[min(len(levels) - 1, self.rank + steps)]


class SuppressionScope(StrEnum):
    USER = "user"
    PATIENT = "patient"
    RULE = "rule"
    DEPARTMENT = "department"


def alert_id_of(source: str, event_id: str) -> str:
    """The alert id of an event: the same event never makes two alerts (deduplication).

    >>> alert_id_of("access", "e1") == alert_id_of("access", "e1")
    True
    """
    return "a-" + hashlib.blake2b(f"{source}\x1f{event_id}".encode(), digest_size=10).hexdigest()


@dataclass(frozen=True)
class Alert:
    """One event whose score crossed the alert threshold."""

    alert_id: str
    event_id: str
    source: str  # "access" or "signin"
    time: datetime
    user_id: str
    patient_id: str | None
    action: str
    score: float
    reasons: str
    rules: tuple[str, ...] = ()
    department: str | None = None
    status: AlertStatus = AlertStatus.NEW
    case_id: str | None = None
    suppressed_by: str | None = None
    #: The supervised ranker's probability of misuse, when one was fitted.
    probability: float | None = None
    #: The patient case ("one record, many users") the alert also belongs to, if any.
    patient_case_id: str | None = None
    #: When Custodes stored the alert (``time`` is when its event happened).
    recorded_at: datetime | None = None


@dataclass(frozen=True)
class Case:
    """Alerts that tell one story: who, which patients, when, how bad, what it maps to.

    ``kind`` names the correlation rule that made it (``single_alert`` when none did);
    ``story`` is the plain account a privacy officer reads first. A ``user`` case is
    one user's alerts (``user_id``); a ``patient`` case is the alerts of many users on
    one record (``patient_id``; ``user_id`` is empty, since no one account is its
    subject). ``probability`` is the ranker's highest probability of misuse among the
    case's alerts, when a ranker was fitted.
    """

    case_id: str
    kind: str
    user_id: str
    severity: Severity
    score: float
    first_time: datetime
    last_time: datetime
    alert_ids: tuple[str, ...]
    patient_count: int
    tactics: tuple[str, ...] = ()
    story: tuple[str, ...] = ()
    prior_offences: int = 0
    status: CaseStatus = CaseStatus.NEW
    verdict: Verdict | None = None
    verdict_note: str | None = None
    closed_by: str | None = None
    closed_at: datetime | None = None
    opened_at: datetime | None = None
    uncertainty: float | None = None
    subject: str = "user"
    patient_id: str | None = None
    user_count: int = 1
    probability: float | None = None

    @property
    def alert_count(self) -> int:
        return len(self.alert_ids)

    @property
    def subject_text(self) -> str:
        """Who or what the case is about, for a listing.

        >>> from datetime import UTC
        >>> t = datetime(2026, 1, 1, tzinfo=UTC)
        >>> Case("p-1-p7", "record_viewed_by_many", "", Severity.HIGH, 80, t, t, ("a",), 1,
        ...      subject="patient", patient_id="p7", user_count=4).subject_text
        'patient p7 (4 users)'
        """
        if self.subject == "patient":
            return f"patient {self.patient_id} ({self.user_count} users)"
        return self.user_id

    def summary(self) -> dict:
        """What leaves Custodes about a case (API, CLI, notifications): ids, counts,
        times, severity, tactics and the story; never a name or a record's content."""
        return {
            "case_id": self.case_id,
            "kind": self.kind,
            "subject": self.subject,
            "severity": str(self.severity),
            "user_id": self.user_id,
            "patient_id": self.patient_id,
            "alerts": self.alert_count,
            "patients": self.patient_count,
            "users": self.user_count,
            "first_time": self.first_time.isoformat(),
            "last_time": self.last_time.isoformat(),
            "tactics": list(self.tactics),
            "story": list(self.story),
        }


@dataclass(frozen=True)
class Suppression:
    """Silence alerts in one scope until ``expires_at``, for a stated reason.

    >>> from datetime import UTC
    >>> s = Suppression("s1", SuppressionScope.USER, "u1", "on-call cover",
    ...     "officer", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    >>> s.active(datetime(2026, 1, 1, 12, tzinfo=UTC)), s.active(datetime(2026, 1, 3, tzinfo=UTC))
    (True, False)
    """

    suppression_id: str
    scope: SuppressionScope
    value: str
    reason: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.reason.strip():
            raise ValueError("a suppression needs a reason")
        if self.expires_at <= self.created_at:
            raise ValueError("a suppression must expire after it starts")

    def active(self, at: datetime) -> bool:
        return self.revoked_at is None and self.created_at <= at < self.expires_at
