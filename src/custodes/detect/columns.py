"""The columns of a scored access: what rules, models and reports may refer to.

The feature frame holds one row per access event. Its columns are the event's own
columns (``custodes.core.events.ACCESS_EVENT_SCHEMA``: ``event_id``, ``time``,
``user_id``, ``patient_id``, ``action``, ``resource_type``, ``application``,
``workstation``, ``source_ip``, ``outcome``, ``purpose_of_use``, ``break_the_glass``,
``session_id``, ...), the user's ``user_role`` and ``user_department`` from the roster,
and the features below. Sigma rules (``logsource: product: ehr, category:
record_access``) name these columns as their fields.
"""

from __future__ import annotations

import polars as pl

#: Does something documented explain why this user opened this patient's record?
RELATIONSHIP_FEATURES: dict[str, tuple[pl.DataType, str]] = {
    "on_care_team": (
        pl.Boolean(),
        "the user is on the care team (or attending) of an encounter of the patient around the access",
    ),
    "department_encounter": (
        pl.Boolean(),
        "the patient has an encounter in the user's department around the access",
    ),
    "upcoming_appointment": (
        pl.Boolean(),
        "the patient has an encounter in the user's department starting within 14 days",
    ),
    "charted_before": (
        pl.Boolean(),
        "the user created or updated something in this patient's record in the previous 30 days",
    ),
    "department_treated_before": (
        pl.Boolean(),
        "the patient had an earlier encounter in the user's department",
    ),
    "colleague_on_care_team": (
        pl.Boolean(),
        "a member of the user's department is on the patient's care team around the access",
    ),
    "in_hospital": (
        pl.Boolean(),
        "the patient is in the hospital (any department) on the day, or was the day before or after",
    ),
    "upcoming_visit": (
        pl.Boolean(),
        "the patient has a visit anywhere in the hospital within 14 days",
    ),
    "recently_discharged": (
        pl.Boolean(),
        "the patient left the hospital within the previous 30 days",
    ),
    "accessed_before": (pl.Boolean(), "the user opened this patient's record earlier"),
}

#: Who the patient is to the user, and what the record is.
IDENTITY_FEATURES: dict[str, tuple[pl.DataType, str]] = {
    "same_surname": (pl.Boolean(), "the user and the patient share a family name"),
    "same_household": (pl.Boolean(), "the user and the patient live at the same address"),
    "relative_of_user": (pl.Boolean(), "the user is recorded as the patient's relative or contact"),
    "neighbour": (pl.Boolean(), "the patient lives a few doors from the user"),
    "coworker": (pl.Boolean(), "the patient works in the user's department"),
    "self_access": (pl.Boolean(), "the patient is the user"),
    "vip": (pl.Boolean(), "the patient is flagged VIP or confidential"),
    "sensitive": (
        pl.Boolean(),
        "the record has a sensitive category (HIV, substance use, mental health, ...)",
    ),
    "deceased": (pl.Boolean(), "the patient had died before the access"),
    "user_terminated": (pl.Boolean(), "the access came after the user's termination date"),
}

#: How the access compares with the user's own habits and their peers'.
BEHAVIOUR_FEATURES: dict[str, tuple[pl.DataType, str]] = {
    "hour": (pl.Int8(), "hour of the day (UTC) of the access"),
    "off_shift": (
        pl.Float64(),
        "how unusual this hour is for the user: 1 - the user's share of accesses within an hour of it, 0..1",
    ),
    "user_hour_accesses": (pl.Int64(), "the user's accesses in this clock hour up to this one"),
    "user_day_patients": (
        pl.Int64(),
        "distinct patients the user opened this day up to this access",
    ),
    "volume_vs_user": (
        pl.Float64(),
        "user_day_patients over the user's usual distinct patients per day",
    ),
    "volume_vs_peers": (
        pl.Float64(),
        "user_day_patients over the usual of the user's peers (same role and department)",
    ),
    "user_hour_patients": (
        pl.Int64(),
        "distinct patients the user opened this clock hour up to this access",
    ),
    "volume_vs_user_hour": (
        pl.Float64(),
        "user_hour_patients over the user's usual distinct patients per hour",
    ),
    "concurrent_session": (
        pl.Boolean(),
        "the user's previous access, moments before, came from another session on another workstation",
    ),
    "user_unexplained_7d": (
        pl.Int64(),
        "distinct (patient, day) pairs the user opened with nothing to explain it in the last 7 days",
    ),
    "first_access": (pl.Boolean(), "the user never opened this patient's record before"),
    "name_search": (
        pl.Boolean(),
        "the record was reached by a patient search rather than a worklist",
    ),
    "new_workstation": (pl.Boolean(), "the user never worked on this workstation before"),
    "new_source_ip": (pl.Boolean(), "the user never came from this network address before"),
    "new_place_today": (
        pl.Boolean(),
        "the workstation or network address is one the user first used today (its first "
        "use was new_workstation or new_source_ip)",
    ),
    "export": (pl.Boolean(), "a print or an export, or a reporting application"),
}

#: How expected the user is among the patient's other accessors.
COLLABORATIVE_FEATURES: dict[str, tuple[pl.DataType, str]] = {
    "collaborative_expectedness": (
        pl.Float64(),
        "0..1: how strongly the user's usual collaborators also work on this patient",
    ),
}

#: The explanation model's verdict, kept beside the features.
EXPLANATION_COLUMNS: dict[str, tuple[pl.DataType, str]] = {
    "explained": (pl.Boolean(), "a documented reason explains the access"),
    "explanation": (pl.String(), "the name of that reason, or null"),
}

FEATURES: dict[str, tuple[pl.DataType, str]] = {
    **RELATIONSHIP_FEATURES,
    **IDENTITY_FEATURES,
    **BEHAVIOUR_FEATURES,
    **COLLABORATIVE_FEATURES,
}
