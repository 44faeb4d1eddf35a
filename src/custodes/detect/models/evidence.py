"""The unsupervised combination: evidence from every model, summed, with its reasons.

Each piece of evidence is a term with a weight and a phrase. Binary flags weigh their
surprise for this user in the training log, ``-ln P(flag | user)`` shrunk towards the
user's peers: what is rare for the user weighs more (a self-access more than a first
access; a name search by a surgeon more than by a registration clerk). Identity flags
count in full unless a documented treatment relationship explains the access, and at
half when one does (a nurse caring for a neighbour admitted to her own ward is worth a
look, not an alarm). Behaviour terms are scaled
from the user's own baselines, the collaborative term from the user-patient model. The
sum maps to 0..100 by ``100 * (1 - exp(-total / scale))``; the reasons are the phrases
of the largest terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from custodes.detect.models.base import Detector

#: An identity flag counts at half when a documented treatment relationship explains the
#: access. An inferred reason (the role's routine, continuing an earlier explained
#: access, a visit still to come) explains the work, not why this colleague, neighbour
#: or namesake was opened, so it does not discount.
_EXPLAINED_DISCOUNT = 0.5
#: The explanations that are documented treatment relationships.
_DOCUMENTED = ("care_team", "charted", "department_encounter", "colleague_on_care_team")

#: Flags weighed by their surprise: (name, condition, phrase, discounted when explained).
#: Looking up oneself, one's household or a recorded relative is against policy even
#: when the relative lies in one's own ward, so those are never discounted.
_FLAGS: tuple[tuple[str, str, str, bool], ...] = (
    ("unexplained", "~explained", "no treatment relationship or other documented reason", False),
    ("self_access", "self_access", "the user opened their own record", False),
    ("same_household", "same_household", "the patient lives at the user's address", False),
    (
        "relative_of_user",
        "relative_of_user",
        "the user is recorded as the patient's relative",
        False,
    ),
    ("same_surname", "same_surname", "same surname as the patient", True),
    ("neighbour", "neighbour", "the patient lives a few doors from the user", True),
    ("coworker", "coworker", "the patient works in the user's department", True),
    ("vip", "vip", "a VIP or confidential patient", True),
    ("deceased", "deceased", "the patient had died", True),
    ("sensitive", "sensitive", "a sensitive record (HIV, substance use, mental health, ...)", True),
    ("user_terminated", "user_terminated", "after the user's employment ended", False),
    ("name_search", "name_search", "reached by a name search, not a worklist", True),
    ("new_source_ip", "new_source_ip", "from a network address the user never used", True),
    ("new_workstation", "new_workstation", "from a workstation the user never used", True),
    (
        "concurrent_session",
        "concurrent_session",
        "a second session open at the same time on another workstation",
        False,
    ),
    (
        "break_the_glass",
        "break_the_glass & ~on_care_team",
        "break-the-glass without being on the care team",
        False,
    ),
    ("export", "export", "a print or export", False),
    (
        "first_access_unexplained",
        "first_access & ~explained",
        "first time the user opened this record",
        False,
    ),
)

_MIN_WEIGHT, _MAX_WEIGHT = 0.5, 9.0
#: The most the collaborative model adds (an access none of the user's teams make).
_COLLABORATIVE_WEIGHT = 0.5

#: The feature columns behind each term that is not a flag of the same name: a rule that
#: reads them has already said what the term would say.
TERM_FIELDS: dict[str, tuple[str, ...]] = {
    "unexplained": ("explained",),
    "first_access_unexplained": ("first_access",),
    "off_shift": ("off_shift",),
    "volume": ("volume_vs_user", "user_day_patients"),
    "hour_volume": ("volume_vs_user_hour", "user_hour_patients"),
    "peer_volume": ("volume_vs_peers",),
    "unexplained_lately": ("user_unexplained_7d",),
    "collaborative": ("collaborative_expectedness",),
}
#: Flags that describe how a person works, weighed per user; the others describe who
#: the patient is to the user and weigh the same for everyone (an offender's own rate
#: of looking up relatives must not make it look normal for them).
_HABITS = frozenset(
    {
        "unexplained",
        "name_search",
        "first_access_unexplained",
        "export",
        "new_source_ip",
        "new_workstation",
        "sensitive",
    }
)
#: Flags that are common in honest work too (people change desks) weigh at most this.
_CAPPED = {
    "new_source_ip": 2.0,
    "new_workstation": 2.0,
    "export": 2.5,
    "first_access_unexplained": 1.5,
    "name_search": 2.5,
    "sensitive": 1.5,
}


def _condition(text: str) -> pl.Expr:
    expr: pl.Expr | None = None
    for part in text.split("&"):
        part = part.strip()
        term = ~pl.col(part[1:]) if part.startswith("~") else pl.col(part)
        expr = term if expr is None else expr & term
    assert expr is not None
    return expr.fill_null(False)


@dataclass
class EvidenceScorer(Detector):
    """Sums weighted evidence into one score from 0 to 100, with its top reasons.

    Parameters
    ----------
    scale: the total evidence that maps to 63 points (``1 - 1/e``).
    top_reasons: how many reasons to name per access.
    min_reason: the smallest term named as a reason.
    """

    scale: float = 12.0
    top_reasons: int = 3
    min_reason: float = 0.75
    shrinkage: float = 200.0
    overall_rates_: dict[str, float] = field(default_factory=dict, init=False)
    user_rates_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    peer_rates_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    overall_unexplained_7d_: float = field(default=0.0, init=False)

    inputs = (
        "user_id",
        "user_role",
        "user_department",
        "concurrent_session",
        "volume_vs_user_hour",
        "user_unexplained_7d",
        "explained",
        "explanation",
        "self_access",
        "same_household",
        "relative_of_user",
        "same_surname",
        "neighbour",
        "coworker",
        "vip",
        "deceased",
        "sensitive",
        "user_terminated",
        "name_search",
        "new_source_ip",
        "new_workstation",
        "break_the_glass",
        "on_care_team",
        "export",
        "first_access",
        "off_shift",
        "volume_vs_user",
        "volume_vs_peers",
        "collaborative_expectedness",
        "time",
    )

    def fit(self, features: pl.DataFrame, labels: np.ndarray | None = None) -> EvidenceScorer:
        """Learn how often each flag holds for each user, their peers and everyone.

        A flag's weight for a user is its surprise, ``-ln p``, where ``p`` is the user's
        own rate shrunk towards their peers' (same role and department), and the peers'
        towards everyone's: a registration clerk who searches by name all day is not
        surprising when she searches, a surgeon who never does is.
        """
        flags = features.select(
            "user_id",
            "user_role",
            "user_department",
            *(
                _condition(condition).cast(pl.Float64).alias(name)
                for name, condition, _, _ in _FLAGS
            ),
        )
        names = [name for name, _, _, _ in _FLAGS]
        overall = flags.select(pl.col(names).mean()).row(0, named=True)
        self.overall_rates_ = {name: float(overall[name] or 0.0) for name in names}
        prior = self.shrinkage
        peer = (
            flags.group_by("user_role", "user_department")
            .agg(_n=pl.len(), **{name: pl.col(name).sum() for name in names})
            .select(
                "user_role",
                "user_department",
                *(
                    (
                        (pl.col(name) + prior * self.overall_rates_[name]) / (pl.col("_n") + prior)
                    ).alias(f"peer_{name}")
                    for name in names
                ),
            )
        )
        user = (
            flags.group_by("user_id", "user_role", "user_department")
            .agg(_n=pl.len(), **{name: pl.col(name).sum() for name in names})
            .join(peer, on=["user_role", "user_department"])
            .select(
                "user_id",
                *(
                    (
                        (pl.col(name) + prior * pl.col(f"peer_{name}")) / (pl.col("_n") + prior)
                    ).alias(f"rate_{name}")
                    for name in names
                ),
            )
        )
        self.peer_rates_ = peer.join(
            features.group_by("user_role", "user_department").agg(
                peer_unexplained_7d=pl.col("user_unexplained_7d").quantile(0.9)
            ),
            on=["user_role", "user_department"],
            how="left",
        )
        self.overall_unexplained_7d_ = float(features["user_unexplained_7d"].quantile(0.9) or 0.0)
        self.user_rates_ = user
        return self

    def _with_rates(self, features: pl.DataFrame) -> pl.DataFrame:
        if self.user_rates_ is None or self.peer_rates_ is None:
            raise RuntimeError("fit the evidence scorer first")
        return features.join(
            self.user_rates_, on="user_id", how="left", maintain_order="left"
        ).join(
            self.peer_rates_, on=["user_role", "user_department"], how="left", maintain_order="left"
        )

    def _weight(self, name: str) -> pl.Expr:
        if name not in _HABITS:
            rate = pl.lit(self.overall_rates_[name])
            return (-(rate.clip(lower_bound=1e-6).log())).clip(
                _MIN_WEIGHT, _CAPPED.get(name, _MAX_WEIGHT)
            )
        rate = pl.coalesce(
            pl.col(f"rate_{name}"), pl.col(f"peer_{name}"), pl.lit(self.overall_rates_[name])
        )
        cap = _CAPPED.get(name, _MAX_WEIGHT)
        return (-(rate.clip(lower_bound=1e-6).log())).clip(_MIN_WEIGHT, cap)

    def terms(self) -> list[tuple[str, pl.Expr, str]]:
        """(name, contribution, phrase) for every piece of evidence.

        A phrase may hold ``{time}`` (the access's time of day), ``{day_ratio}`` or
        ``{hour_ratio}`` (the volume over the user's usual), filled in per access.
        """
        explained = pl.col("explained").fill_null(False)
        documented = pl.col("explanation").is_in(_DOCUMENTED).fill_null(False)
        terms = []
        for name, condition, phrase, discounted in _FLAGS:
            weight = self._weight(name)
            if discounted:
                weight = pl.when(documented).then(weight * _EXPLAINED_DISCOUNT).otherwise(weight)
            terms.append((name, pl.when(_condition(condition)).then(weight).otherwise(0.0), phrase))
        off_shift = pl.col("off_shift").fill_null(0.0)
        terms.append(
            (
                "off_shift",
                ((off_shift - 0.9).clip(lower_bound=0.0) * 30.0).clip(upper_bound=3.0),
                "{time}, outside the user's usual hours",
            )
        )
        terms.append(
            (
                "volume",
                (pl.col("volume_vs_user").fill_null(1.0).log(2).clip(0.0, 5.0) * 1.5),
                "{day_ratio} times the patients the user usually sees in a day",
            )
        )
        terms.append(
            (
                "hour_volume",
                (pl.col("volume_vs_user_hour").fill_null(1.0).log(2).clip(0.0, 5.0) * 1.5),
                "{hour_ratio} times the patients the user usually sees in an hour",
            )
        )
        terms.append(
            (
                "peer_volume",
                (pl.col("volume_vs_peers").fill_null(1.0).log(2).clip(0.0, 5.0) * 0.75),
                "far more patients today than the user's peers",
            )
        )
        usual_unexplained = pl.col("peer_unexplained_7d").fill_null(self.overall_unexplained_7d_)
        lately = ((pl.col("user_unexplained_7d") + 1.0) / (usual_unexplained + 1.0)).log(2)
        terms.append(
            (
                "unexplained_lately",
                pl.when(~explained).then(lately.clip(0.0, 5.0) * 1.5).otherwise(0.0),
                "{unexplained_7d} records opened without a reason in 7 days, more than "
                "the user's peers",
            )
        )
        terms.append(
            (
                "collaborative",
                (1.0 - pl.col("collaborative_expectedness").fill_null(1.0)) * _COLLABORATIVE_WEIGHT,
                "none of the user's usual collaborators work on this patient",
            )
        )
        return terms

    def evidence(self, features: pl.DataFrame) -> pl.DataFrame:
        """One column per term, named after it."""
        return self._with_rates(features).select(
            contribution.alias(name) for name, contribution, _ in self.terms()
        )

    def decision_function(self, features: pl.DataFrame) -> np.ndarray:
        return self.score_matrix(self.evidence_matrix(features))

    def evidence_matrix(self, features: pl.DataFrame) -> np.ndarray:
        """The terms of every access as a float matrix, one column per term."""
        return self.evidence(features).to_numpy()

    def score_matrix(self, matrix: np.ndarray) -> np.ndarray:
        """The 0..100 score of each row of an evidence matrix."""
        return 100.0 * (1.0 - np.exp(-matrix.sum(axis=1) / self.scale))

    def reason_keys(self, matrix: np.ndarray) -> np.ndarray:
        """For each row of an evidence matrix, a small integer naming its top terms.

        ``reason_terms(key)`` turns a key back into term indices, largest first; reasons
        are built once per distinct key (there are few), not once per access. Only the
        accesses that will carry reasons need one, so callers pass those rows.
        """
        count = matrix.shape[1]
        key = np.zeros(matrix.shape[0], dtype=np.int64)
        remaining = matrix.copy()
        rows = np.arange(matrix.shape[0])
        for _ in range(min(self.top_reasons, count)):
            best = remaining.argmax(axis=1)
            value = remaining[rows, best]
            chosen = np.where(value >= self.min_reason, best, count)
            key = key * (count + 1) + chosen
            remaining[rows, best] = -np.inf
        return key

    def reason_terms(self, key: int) -> list[int]:
        """The term indices a reason key names, largest first."""
        count = len(self.terms())
        picked = []
        for _ in range(min(self.top_reasons, count)):
            key, index = divmod(key, count + 1)
            picked.append(index)
        return [index for index in reversed(picked) if index < count]


def fill_values(reasons: pl.Series, features: pl.DataFrame) -> pl.Series:
    """Put each access's own time and volume ratios into its phrases."""
    frame = pl.DataFrame({"r": reasons}).with_columns(
        time=features["time"].dt.strftime("%H:%M"),
        day_ratio=features["volume_vs_user"].round(1).cast(pl.String),
        hour_ratio=features["volume_vs_user_hour"].round(1).cast(pl.String),
        unexplained_7d=features["user_unexplained_7d"].cast(pl.String),
    )
    out = pl.col("r")
    for name in ("time", "day_ratio", "hour_ratio", "unexplained_7d"):
        placeholder = "{" + name + "}"
        out = (
            pl.when(out.str.contains(placeholder, literal=True))
            .then(out.str.replace(placeholder, pl.col(name), literal=True))
            .otherwise(out)
        )
    return frame.select(out.alias("reasons"))["reasons"]
