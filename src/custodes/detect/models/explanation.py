"""Explanation-based auditing: is an access explained by a documented reason?

After Fabbri and LeFevre ("Explanation-based auditing", VLDB 2012): most accesses in a
hospital are explained by a path in the hospital's own data from the patient to the
user (an encounter the user attends, an appointment in the user's department, a note
the user wrote). The documented reasons below are such paths. Some roles work for
every department (the lab, imaging, billing, registration): for them the model mines,
from the training log, which broader reason explains most of the role's work (the
patient has an encounter somewhere in the hospital, the user's department treated the
patient before) and accepts it for that role only. An access is also explained when an
explained access by the same user to the same patient came in the previous 30 days
(continuing care).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

#: (name, feature, phrase), strongest first; the first that holds names the explanation.
DOCUMENTED_REASONS: tuple[tuple[str, str, str], ...] = (
    ("care_team", "on_care_team", "on the patient's care team"),
    (
        "department_encounter",
        "department_encounter",
        "the patient is being seen in the user's department",
    ),
    (
        "charted",
        "charted_before",
        "the user documented or ordered for this patient in the last 30 days",
    ),
    (
        "upcoming_appointment",
        "upcoming_appointment",
        "the patient has an upcoming visit in the user's department",
    ),
    (
        "colleague_on_care_team",
        "colleague_on_care_team",
        "a colleague from the user's department is on the care team",
    ),
)

#: Broader reasons a role may earn from the training log: (name, feature, phrase).
MINABLE_REASONS: tuple[tuple[str, str, str], ...] = (
    (
        "in_hospital_for_role",
        "in_hospital",
        "the patient is in the hospital and the user's role serves every department",
    ),
    (
        "upcoming_visit_for_role",
        "upcoming_visit",
        "the patient has a visit coming and the user's role prepares visits",
    ),
    (
        "recent_discharge_for_role",
        "recently_discharged",
        "the patient left the hospital recently and the user's role handles discharges",
    ),
    (
        "department_patient",
        "department_treated_before",
        "the user's department has treated the patient before",
    ),
    (
        "role_routine",
        "_routine",
        "routine work of the user's role, at the user's usual pace and hours",
    ),
)

#: Reasons that say nothing about the patient, so no shuffle can test them; they are
#: bounded instead by the user's own pace and hours (a browsing spree is not routine).
_ROUTINE = (
    (pl.col("volume_vs_user_hour").fill_null(0.0) <= 2.0)
    & (pl.col("volume_vs_user").fill_null(0.0) <= 1.5)
    & (pl.col("off_shift").fill_null(0.0) < 0.9)
    & ~pl.col("export").fill_null(False)
    & ~pl.col("break_the_glass").fill_null(False)
)


def _feature(name: str) -> pl.Expr:
    return _ROUTINE if name == "_routine" else pl.col(name)


CONTINUING_CARE = ("continuing_care", "an explained access by the same user in the last 30 days")


@dataclass
class ExplanationModel:
    """Decides ``documented`` (and names the reason) for every access.

    Parameters
    ----------
    min_support: share of a role's training accesses a broader reason must explain
        before it is accepted for that role.
    min_users: distinct users of the role it must explain, so one person's habit does not
        become a rule.
    min_lift: how many times more often than for a random patient the reason must hold.
    max_documented_share: roles whose accesses the documented reasons already explain
        at least this often (nurses, physicians) earn no broader reason.
    """

    min_support: float = 0.6
    min_lift: float = 3.0
    min_users: int = 2
    max_documented_share: float = 0.9
    role_reasons_: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)

    def fit(self, features: pl.DataFrame, chance: pl.DataFrame | None = None) -> ExplanationModel:
        """Mine, per role, the broader reasons that explain most of its accesses.

        ``chance`` holds the same accesses with the patients shuffled: a reason must
        hold ``min_lift`` times more often for the role's real accesses than for random
        patients, or it explains nothing (in a hospital where most patients had a
        recent visit, "had a recent visit" is no reason).
        """
        learned: dict[str, list[str]] = {}
        documented = pl.any_horizontal(pl.col(feature) for _, feature, _ in DOCUMENTED_REASONS)
        # Only roles whose work the documented reasons mostly miss (the lab, billing,
        # registration) earn a broader reason, judged on the accesses left unexplained:
        # a nurse must not be cleared for every admitted patient.
        residual = features.with_columns(_documented=documented)
        role_documented = residual.group_by("user_role").agg(
            documented_share=pl.col("_documented").mean()
        )
        residual = (
            residual.filter(~pl.col("_documented"))
            .join(role_documented, on="user_role")
            .with_columns(_routine=_ROUTINE)
        )
        for name, feature, _ in MINABLE_REASONS:
            if chance is not None and feature != "_routine":
                by_chance = chance.group_by("user_role").agg(chance_share=pl.col(feature).mean())
            else:
                by_chance = (
                    residual.select("user_role").unique().with_columns(chance_share=pl.lit(0.0))
                )
            support = (
                residual.group_by("user_role")
                .agg(
                    share=pl.col(feature).mean(),
                    users=pl.col("user_id").filter(pl.col(feature)).n_unique(),
                    documented_share=pl.col("documented_share").first(),
                )
                .join(by_chance, on="user_role", how="left")
                .filter(
                    (pl.col("share") >= self.min_support)
                    & (pl.col("share") >= self.min_lift * pl.col("chance_share").fill_null(0.0))
                    & (pl.col("users") >= self.min_users)
                    & (pl.col("documented_share") < self.max_documented_share)
                )
            )
            for role in support["user_role"].to_list():
                learned.setdefault(role, []).append(name)
        self.role_reasons_ = {role: tuple(names) for role, names in sorted(learned.items())}
        return self

    def reason_expressions(self) -> list[tuple[str, pl.Expr]]:
        """(name, condition) for every reason, documented first, then the mined ones."""
        reasons = [(name, pl.col(feature)) for name, feature, _ in DOCUMENTED_REASONS]
        for name, feature, _ in MINABLE_REASONS:
            roles = [role for role, names in self.role_reasons_.items() if name in names]
            if roles:
                reasons.append((name, _feature(feature) & pl.col("user_role").is_in(roles)))
        return reasons

    def documented(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add ``documented`` (bool) and ``documented_reason`` (the first reason that holds)."""
        reasons = self.reason_expressions()
        name = pl.lit(None, dtype=pl.String)
        for reason, condition in reversed(reasons):
            name = pl.when(condition).then(pl.lit(reason)).otherwise(name)
        return frame.with_columns(documented_reason=name).with_columns(
            documented=pl.col("documented_reason").is_not_null()
        )


def reason_phrases() -> dict[str, str]:
    """Plain words for every explanation name."""
    phrases = {name: phrase for name, _, phrase in (*DOCUMENTED_REASONS, *MINABLE_REASONS)}
    phrases[CONTINUING_CARE[0]] = CONTINUING_CARE[1]
    return phrases
