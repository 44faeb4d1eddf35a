"""From chart touches to audit events, vectorised.

Workflows and scenarios do not write events one by one. They produce *touches*: one
user opening one patient's chart in one session at one moment, for one reason, with a
number of audit events to follow (the screens and resources viewed, the notes written).
``expand`` turns every touch into its events at once with NumPy: the events of a touch
follow each other by exponential gaps (a burst of clicks), and their (action, resource)
pairs are drawn from the touch's *profile*. A snooper's touch and a clinician's touch
go through the same code, so misuse differs from work only where the scenario makes
it differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from custodes.simulate.config import ROLE_CODES

#: Actions as ``custodes.core.events.Action`` values.
ACTIONS: tuple[str, ...] = ("read", "search", "create", "update", "print", "export")
#: The FHIR resource types touched.
RESOURCE_TYPES: tuple[str, ...] = (
    "Patient", "Encounter", "Observation", "DiagnosticReport", "DocumentReference",
    "MedicationRequest", "MedicationAdministration", "Condition", "Procedure",
    "AllergyIntolerance", "ImagingStudy", "Specimen", "Appointment", "Coverage", "Claim",
    "ServiceRequest",
)  # fmt: skip
#: HL7 v3 PurposeOfUse codes declared by the events.
PURPOSES: tuple[str, ...] = (
    "TREAT", "ETREAT", "HPAYMT", "PATADMIN", "RECORDMGT", "HRESCH", "HSYSADMIN",
)  # fmt: skip
ETREAT = PURPOSES.index("ETREAT")
#: The purpose each role declares by default (an EHR sets it from the user's context).
ROLE_PURPOSE: dict[str, str] = {
    "attending": "TREAT", "resident": "TREAT", "nurse": "TREAT", "float_nurse": "TREAT",
    "pharmacist": "TREAT", "therapist": "TREAT", "lab": "TREAT", "radiology": "TREAT",
    "registration": "PATADMIN", "scheduler": "PATADMIN", "billing": "HPAYMT",
    "him": "RECORDMGT", "it": "HSYSADMIN", "researcher": "HRESCH",
}  # fmt: skip
ROLE_PURPOSE_INDEX = np.array([PURPOSES.index(ROLE_PURPOSE[r]) for r in ROLE_CODES])
#: Applications: the EHR itself, and its reporting tool (research queries, exports).
APPLICATIONS: tuple[str, ...] = ("EHR", "EHR Reporting")
REPORTING = 1

#: Why a legitimate touch happened. Misuse touches carry ``MISUSE``.
REASONS: tuple[str, ...] = (
    "worklist",  # the attending's or resident's own patients
    "medication_administration",  # the nurse's assigned patients
    "float_assignment",  # a float nurse's patients on the unit of the day
    "unit_census",  # the unit's patient list: someone else's patient, glanced at
    "covering",  # a colleague's patients on their day off
    "night_float",  # the night resident cross-covering the service
    "consult",  # a consultant from another department
    "teaching_rounds",  # cases from other teams shown at teaching rounds
    "after_hours_charting",  # notes finished from home in the evening
    "on_call",  # a night call answered from home
    "emergency_care",
    "emergency_break_the_glass",  # a restricted record opened in an emergency
    "tracking_board",  # the ED board: every patient in the department
    "registration",
    "pre_visit_review",
    "clinic_visit",
    "post_visit_documentation",
    "scheduling",
    "order_verification",  # the pharmacist verifying orders
    "lab",
    "imaging",
    "therapy",
    "billing",
    "billing_long_after_discharge",  # coding, denials and appeals a month or more later
    "him_chart_completion",
    "him_release_of_information",
    "research_protocol",  # a query under an approved protocol
    "it_support",
    "clinician_relative_on_care_team",  # a clinician treating a family member
)
REASON = {name: i for i, name in enumerate(REASONS)}
MISUSE = -1

#: Reasons a naive detector would flag although the access is legitimate.
UNUSUAL_REASONS: frozenset[str] = frozenset(
    {
        "float_assignment", "covering", "night_float", "consult", "teaching_rounds",
        "after_hours_charting", "on_call", "emergency_break_the_glass",
        "billing_long_after_discharge", "him_release_of_information",
        "clinician_relative_on_care_team",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Profile:
    """What a touch looks like: its first event, then a mix of (action, resource) pairs."""

    opening: tuple[str, str]
    mix: tuple[tuple[str, str, float], ...]
    gap_seconds: float = 20.0


PROFILES: dict[str, Profile] = {
    "chart_review": Profile(("read", "Patient"), (
        ("read", "Encounter", 8), ("read", "Observation", 22), ("read", "DiagnosticReport", 14),
        ("read", "DocumentReference", 18), ("read", "MedicationRequest", 8),
        ("read", "Condition", 6), ("read", "AllergyIntolerance", 3), ("read", "ImagingStudy", 3),
        ("create", "DocumentReference", 4), ("update", "DocumentReference", 4),
        ("create", "ServiceRequest", 5), ("create", "MedicationRequest", 4),
        ("read", "Procedure", 1),
    )),
    "nursing": Profile(("read", "Patient"), (
        ("read", "MedicationRequest", 15), ("create", "MedicationAdministration", 20),
        ("create", "Observation", 25), ("read", "Observation", 15),
        ("read", "DocumentReference", 8), ("create", "DocumentReference", 8),
        ("read", "AllergyIntolerance", 4), ("update", "Observation", 5),
    ), 15.0),
    "glance": Profile(("read", "Patient"), (
        ("read", "Encounter", 50), ("read", "Observation", 30), ("read", "Patient", 20),
    ), 8.0),
    "documentation": Profile(("read", "Patient"), (
        ("create", "DocumentReference", 30), ("update", "DocumentReference", 30),
        ("read", "DocumentReference", 20), ("read", "Observation", 10),
        ("read", "DiagnosticReport", 10),
    ), 40.0),
    "registration": Profile(("search", "Patient"), (
        ("read", "Patient", 30), ("update", "Patient", 15), ("read", "Coverage", 25),
        ("update", "Coverage", 10), ("read", "Encounter", 10), ("create", "Encounter", 10),
    ), 15.0),
    "scheduling": Profile(("search", "Patient"), (
        ("read", "Appointment", 30), ("create", "Appointment", 35),
        ("update", "Appointment", 20), ("read", "Patient", 15),
    )),
    "pharmacy": Profile(("read", "Patient"), (
        ("read", "MedicationRequest", 50), ("update", "MedicationRequest", 20),
        ("read", "AllergyIntolerance", 10), ("read", "Observation", 15), ("read", "Condition", 5),
    ), 12.0),
    "lab": Profile(("read", "Patient"), (
        ("create", "Specimen", 30), ("read", "ServiceRequest", 25), ("create", "Observation", 30),
        ("update", "Observation", 15),
    ), 10.0),
    "imaging": Profile(("read", "Patient"), (
        ("read", "ServiceRequest", 25), ("read", "ImagingStudy", 30),
        ("create", "ImagingStudy", 20), ("create", "DiagnosticReport", 15),
        ("read", "DiagnosticReport", 10),
    ), 30.0),
    "therapy": Profile(("read", "Patient"), (
        ("read", "DocumentReference", 25), ("create", "DocumentReference", 30),
        ("read", "Observation", 25), ("create", "Observation", 20),
    ), 30.0),
    "billing": Profile(("read", "Encounter"), (
        ("read", "Encounter", 15), ("read", "Condition", 20), ("read", "Procedure", 20),
        ("read", "DocumentReference", 20), ("read", "Claim", 10), ("create", "Claim", 10),
        ("update", "Claim", 5),
    ), 35.0),
    "him": Profile(("read", "Patient"), (
        ("read", "DocumentReference", 45), ("update", "DocumentReference", 15),
        ("read", "Encounter", 20), ("print", "DocumentReference", 10),
        ("read", "DiagnosticReport", 10),
    ), 30.0),
    "release": Profile(("search", "Patient"), (
        ("read", "DocumentReference", 30), ("print", "DocumentReference", 30),
        ("export", "DocumentReference", 20), ("read", "DiagnosticReport", 20),
    ), 25.0),
    "research": Profile(("search", "Patient"), (
        ("search", "Observation", 30), ("read", "Observation", 25), ("read", "Condition", 25),
        ("read", "MedicationRequest", 10), ("read", "Procedure", 10),
    ), 6.0),
    "it": Profile(("read", "Patient"), (
        ("read", "Encounter", 40), ("read", "DocumentReference", 30), ("read", "Patient", 30),
    )),
    "browse": Profile(("read", "Patient"), (
        ("read", "Encounter", 15), ("read", "DocumentReference", 25), ("read", "Observation", 20),
        ("read", "DiagnosticReport", 15), ("read", "Condition", 10),
        ("read", "MedicationRequest", 5), ("read", "Patient", 10),
    )),
    "name_search": Profile(("search", "Patient"), (
        ("read", "Patient", 40), ("read", "DocumentReference", 30), ("read", "Encounter", 30),
    )),
    "export": Profile(("search", "Patient"), (
        ("read", "Patient", 30), ("read", "DocumentReference", 20),
        ("export", "DocumentReference", 20), ("print", "DocumentReference", 10),
        ("export", "Patient", 20),
    ), 4.0),
}  # fmt: skip
PROFILE = {name: i for i, name in enumerate(PROFILES)}


def _combination_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flattened per-profile distributions for one vectorised draw.

    Profile ``p``'s cumulative probabilities run from ``p`` to ``p + 1`` in ``cumulative``,
    so ``searchsorted(cumulative, p + u)`` draws from profile ``p`` for every event at once.
    """
    cumulative, action, resource, opening_action, opening_resource = [], [], [], [], []
    for p, profile in enumerate(PROFILES.values()):
        weights = np.array([w for _, _, w in profile.mix], dtype=float)
        cumulative.extend(p + np.cumsum(weights) / weights.sum())
        action.extend(ACTIONS.index(a) for a, _, _ in profile.mix)
        resource.extend(RESOURCE_TYPES.index(r) for _, r, _ in profile.mix)
        opening_action.append(ACTIONS.index(profile.opening[0]))
        opening_resource.append(RESOURCE_TYPES.index(profile.opening[1]))
    cumulative[-1] = len(PROFILES)  # guard the last bound against rounding
    return (
        np.array(cumulative),
        np.array(action, dtype=np.int8),
        np.array(resource, dtype=np.int8),
        np.array(opening_action, dtype=np.int8),
        np.array(opening_resource, dtype=np.int8),
    )


_CUMULATIVE, _MIX_ACTION, _MIX_RESOURCE, _OPEN_ACTION, _OPEN_RESOURCE = _combination_tables()
_GAP_MS = np.array([p.gap_seconds * 1000.0 for p in PROFILES.values()])


@dataclass(slots=True)
class Touches:
    """Touches as they are added, column by column.

    ``purpose`` is -1 for the role's default; ``scenario`` is 0 for legitimate work and
    ``1 + index`` of the scenario for misuse; ``case`` groups the touches of one incident.
    """

    columns: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {
            k: []
            for k in (
                "session",
                "patient",
                "start",
                "events",
                "profile",
                "reason",
                "purpose",
                "application",
                "scenario",
                "case",
            )
        }  # fmt: skip
    )

    def add(
        self, session, patient, start, events, profile: str, reason, *,
        purpose=-1, application=0, scenario=0, case=-1,
    ) -> None:  # fmt: skip
        """Append touches (arrays, or scalars broadcast to the touches' length)."""
        session = np.asarray(session, dtype=np.int64).reshape(-1)
        keep = session >= 0  # a touch nobody was on duty for is not made
        size = len(session)
        values = {
            "session": session, "patient": patient, "start": start, "events": events,
            "profile": PROFILE[profile], "reason": reason, "purpose": purpose,
            "application": application, "scenario": scenario, "case": case,
        }  # fmt: skip
        for key, value in values.items():
            column = np.broadcast_to(np.asarray(value, dtype=np.int64), size)
            self.columns[key].append(column[keep].copy())

    def column(self, name: str) -> np.ndarray:
        parts = self.columns[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return sum(len(p) for p in self.columns["session"])


@dataclass(slots=True)
class EventColumns:
    """Access events as integer columns, one row per event (times in ms from the start)."""

    time: np.ndarray
    session: np.ndarray
    patient: np.ndarray
    action: np.ndarray
    resource: np.ndarray
    resource_number: np.ndarray
    purpose: np.ndarray
    application: np.ndarray
    outcome: np.ndarray  # 0 success, 1 minor failure
    reason: np.ndarray  # index into REASONS, MISUSE for misuse
    scenario: np.ndarray
    case: np.ndarray

    def __len__(self) -> int:
        return len(self.time)

    def take(self, index: np.ndarray) -> EventColumns:
        return EventColumns(**{name: getattr(self, name)[index] for name in self.__slots__})


def expand(
    touches: Touches,
    session_start: np.ndarray,
    session_end: np.ndarray,
    session_role: np.ndarray,
    rng: np.random.Generator,
    window_end: int,
) -> EventColumns:
    """Every touch's events, with times inside the session and the window, sorted by time.

    Parameters
    ----------
    touches: what the workflows and scenarios asked for.
    session_start, session_end, session_role: per session (the role of its user).
    rng: the run's generator.
    window_end: ms of the end of the last simulated day; later events are dropped, as
        are events before the start (a night shift begun the evening before day 0).
    """
    session = touches.column("session")
    counts = np.maximum(touches.column("events"), 1)
    total = int(counts.sum())
    owner = np.repeat(np.arange(len(session)), counts)
    first = np.cumsum(counts) - counts
    position = np.arange(total) - np.repeat(first, counts)
    profile = touches.column("profile")[owner]
    # A burst of clicks: exponential gaps, the first event at the touch's start.
    gaps = rng.exponential(1.0, size=total) * _GAP_MS[profile]
    gaps[first] = 0.0
    offset = np.cumsum(gaps)
    offset -= np.repeat(offset[first], counts)
    start = np.clip(
        touches.column("start"),
        session_start[session],
        np.maximum(session_start[session], session_end[session] - 60_000),
    )
    time = start[owner] + offset.astype(np.int64)
    time = np.minimum(time, session_end[session][owner] - 1)
    pick = np.searchsorted(_CUMULATIVE, profile + rng.random(total), side="right")
    pick = np.minimum(pick, len(_CUMULATIVE) - 1)
    opening = position == 0
    action = np.where(opening, _OPEN_ACTION[profile], _MIX_ACTION[pick])
    resource = np.where(opening, _OPEN_RESOURCE[profile], _MIX_RESOURCE[pick])
    purpose = touches.column("purpose")
    purpose = np.where(purpose >= 0, purpose, ROLE_PURPOSE_INDEX[session_role[session]])
    # One request in five hundred fails (a timeout, a lock); misuse and work alike.
    outcome = (rng.random(total) < 0.002).astype(np.int8)
    events = EventColumns(
        time=time,
        session=session[owner].astype(np.int32),
        patient=touches.column("patient")[owner].astype(np.int32),
        action=action.astype(np.int8),
        resource=resource.astype(np.int8),
        resource_number=rng.integers(1, 60, size=total, dtype=np.int16),
        purpose=purpose[owner].astype(np.int8),
        application=touches.column("application")[owner].astype(np.int8),
        outcome=outcome,
        reason=touches.column("reason")[owner].astype(np.int8),
        scenario=touches.column("scenario")[owner].astype(np.int8),
        case=touches.column("case")[owner].astype(np.int32),
    )
    inside = (events.time >= 0) & (events.time < window_end)
    kept = np.flatnonzero(inside)
    # Ties in time are broken by the order the touches were made, which is fixed.
    order = kept[np.argsort(events.time[kept], kind="stable")]
    return events.take(order)
