"""The policy decision point: ``decide(request) -> Decision``, pure, default deny.

The request carries every fact the decision needs (role, the care relationship, the
patient's consent directives, a break-the-glass declaration, whether a second factor
is fresh); the caller gathers them (``care_relationship`` answers from the hospital
context). Nothing here reads a clock, a database or the environment, so a table of
requests and expected decisions tests it whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from custodes.access.roles import ROLE_POLICIES, Sensitive
from custodes.core.accounts import Role
from custodes.core.events import Action

#: The longest a break-the-glass declaration may last.
BREAK_GLASS_LIMIT = timedelta(hours=4)
#: The shortest reason accepted (a word or two is not a reason).
MIN_REASON_LENGTH = 10


class Obligation(StrEnum):
    """What the enforcement point must do along with the decision."""

    AUDIT = "audit"
    MASK = "mask"
    STEP_UP = "step-up-required"
    REVIEW = "review-queue"


@dataclass(frozen=True, slots=True)
class BreakGlass:
    """An emergency access declaration: a stated reason and a time window."""

    reason: str
    started_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ConsentDirective:
    """A patient's restriction: who may not see their record, for what, when.

    Empty sets match everyone; ``sensitive_only`` restricts only sensitive records;
    ``emergency_override`` lets break-the-glass through (the usual HIPAA reading).
    """

    patient_id: str
    denied_roles: frozenset[Role] = frozenset()
    denied_users: frozenset[str] = frozenset()
    denied_purposes: frozenset[str] = frozenset()
    sensitive_only: bool = False
    emergency_override: bool = True
    start: datetime | None = None
    end: datetime | None = None

    def restricts(self, request: AccessRequest) -> bool:
        if request.patient_id != self.patient_id:
            return False
        if (self.start and request.now < self.start) or (self.end and request.now >= self.end):
            return False
        if self.sensitive_only and not request.sensitive:
            return False
        who = (not self.denied_roles and not self.denied_users) or (
            request.role in self.denied_roles or request.user_id in self.denied_users
        )
        why = not self.denied_purposes or request.purpose_of_use in self.denied_purposes
        return who and why


@dataclass(frozen=True, slots=True)
class AccessRequest:
    user_id: str
    role: Role
    action: Action
    resource_type: str
    now: datetime
    patient_id: str | None = None
    sensitive: bool = False
    purpose_of_use: str | None = None
    care_relationship: bool = False
    consents: tuple[ConsentDirective, ...] = ()
    break_glass: BreakGlass | None = None
    step_up_fresh: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reasons: tuple[str, ...]
    obligations: frozenset[Obligation] = field(default_factory=frozenset)
    visible_elements: frozenset[str] | None = None  # None: every element

    @property
    def effect(self) -> str:
        return "allow" if self.allowed else "deny"


def _deny(reason: str, *extra: Obligation, review: bool = False) -> Decision:
    obligations = {Obligation.AUDIT, *extra} | ({Obligation.REVIEW} if review else set())
    return Decision(False, (reason,), frozenset(obligations))


def break_glass_problem(request: AccessRequest) -> str | None:
    """Why the request's break-the-glass declaration does not hold (None: it holds)."""
    glass = request.break_glass
    if glass is None:
        return "no break-the-glass declaration"
    if not ROLE_POLICIES[request.role].may_break_glass:
        return f"the {request.role} role may not break the glass"
    if len(glass.reason.strip()) < MIN_REASON_LENGTH:
        return "break-the-glass needs a stated reason"
    if glass.expires_at - glass.started_at > BREAK_GLASS_LIMIT:
        return f"break-the-glass may last {BREAK_GLASS_LIMIT} at most"
    if not glass.started_at <= request.now < glass.expires_at:
        return "the break-the-glass window has expired"
    return None


def decide(request: AccessRequest) -> Decision:
    """Allow or deny, with reasons and obligations. Anything not allowed is denied.

    >>> from datetime import datetime, UTC
    >>> now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    >>> decide(AccessRequest("s1", Role.CLINICIAN, Action.READ, "Observation", now,
    ...                      patient_id="p1", care_relationship=True)).allowed
    True
    >>> decide(AccessRequest("s1", Role.CLINICIAN, Action.READ, "Observation", now,
    ...                      patient_id="p1")).reasons
    ('no care relationship with the patient',)

    Any request that declares break-the-glass is queued for review, allowed or not.
    """
    decision = _decide(request)
    if request.break_glass is not None and Obligation.REVIEW not in decision.obligations:
        decision = replace(decision, obligations=decision.obligations | {Obligation.REVIEW})
    return decision


def _decide(request: AccessRequest) -> Decision:
    policy = ROLE_POLICIES.get(request.role)
    if policy is None:
        return _deny("unknown role")
    if request.action not in policy.actions:
        return _deny(f"the {request.role} role may not {request.action}")
    if request.resource_type not in policy.resource_types:
        return _deny(f"the {request.role} role may not touch {request.resource_type}")
    if policy.purposes is not None and request.purpose_of_use not in policy.purposes:
        return _deny(f"the {request.role} role must declare a purpose of use: {', '.join(sorted(policy.purposes))}")

    reasons: list[str] = []
    obligations = {Obligation.AUDIT}
    if policy.review_always:
        obligations.add(Obligation.REVIEW)
        reasons.append("administrator access: every use is reviewed")

    glass_problem = break_glass_problem(request) if request.break_glass else "no break-the-glass declaration"
    if request.break_glass is not None and glass_problem is not None:
        return _deny(glass_problem, review=True)
    glass = glass_problem is None

    for directive in request.consents:
        if directive.restricts(request):
            if glass and directive.emergency_override:
                reasons.append("break-the-glass overrides the patient's consent directive")
                continue
            return _deny("the patient's consent directive restricts this access", review=glass)

    if policy.needs_care_relationship and request.patient_id and not request.care_relationship:
        if not glass:
            return _deny("no care relationship with the patient")
        reasons.append("break-the-glass without a care relationship")
    elif request.care_relationship:
        reasons.append("care relationship with the patient")

    if request.sensitive:
        if policy.sensitive is Sensitive.DENY:
            return _deny(f"the {request.role} role may not see sensitive records")
        if not request.step_up_fresh:
            return _deny("sensitive record: a fresh second factor is required", Obligation.STEP_UP)
        reasons.append("sensitive record after a fresh second factor")

    if glass:
        obligations.add(Obligation.REVIEW)
        reasons.append(f"break-the-glass: {request.break_glass.reason.strip()}")
    visible = (policy.masks or {}).get(request.resource_type)
    if visible is not None:
        obligations.add(Obligation.MASK)
    if not reasons:
        reasons.append(f"allowed to the {request.role} role")
    return Decision(True, tuple(reasons), frozenset(obligations), visible)
