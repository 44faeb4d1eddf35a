"""Features of every access: relationship, identity, behaviour and collaboration.

One pipeline serves both runners. ``FeaturePipeline.fit`` learns the baselines (each
user's hours and daily volume, their peers', the collaborative model) from a training
log; ``transform(events, state)`` computes the features of a time-ordered chunk and
returns the history state the next chunk continues from. Every history feature
("first access to this patient", "distinct patients today so far") depends only on
earlier events, so one big chunk and many small ones give the same features: the
stream runner replays the batch runner exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import polars as pl

from custodes.context import HospitalContext
from custodes.core.events import ACCESS_EVENT_SCHEMA
from custodes.detect.collaborative import CollaborativeModel
from custodes.detect.columns import FEATURES
from custodes.detect.models.explanation import CONTINUING_CARE, ExplanationModel

#: Days before an encounter's start and after its end during which access is expected.
BEFORE_START_DAYS = 1
AFTER_END_DAYS = 7
#: How far ahead an appointment explains a look at the record.
UPCOMING_DAYS = 14
#: How long after discharge billing and records work is expected.
DISCHARGE_DAYS = 30
#: How long an earlier write (a note, an order) or explained access keeps explaining.
CONTINUITY = timedelta(days=30)
#: A new session on another workstation this soon after the last access means two open.
CONCURRENT_WITHIN = timedelta(minutes=60)
#: How long a quiet session is remembered.
SESSION_MEMORY = timedelta(hours=12)
#: The window of the user's unexplained accesses, in days.
UNEXPLAINED_WINDOW_DAYS = 7
#: Days of the peers' pattern a user's own baseline is shrunk towards.
PRIOR_DAYS = 3.0
#: Floors of the usual distinct patients per day and per hour.
MIN_USUAL_DAY = 5.0
MIN_USUAL_HOUR = 4.0
#: Prior accesses a user needs before "new workstation" or "new address" means anything.
MIN_HISTORY = 20
_WRITES = ("create", "update", "delete")
_EXPORTS = ("export", "print")


@dataclass(frozen=True)
class FeatureState:
    """What the pipeline remembers of earlier chunks (never names, only ids and times).

    pairs: per (user, patient): last write and last explained access.
    seen_workstations, seen_ips: (user, workstation or address) pairs seen.
    users: per user, accesses seen so far.
    hours: per user, the latest clock hour and its access count.
    day_patients: (user, day, patient) for the latest days, for distinct counts.
    hour_patients: (user, clock hour, patient) for each user's latest hour.
    last_event: per user, the time, session and workstation of the latest access.
    sessions: per (user, session), the latest access, for sessions used lately.
    unexplained: (user, day, patient) opened with no documented reason, last 7 days.
    new_places: (user, place, day) for each workstation (``ws:``) or address (``ip:``)
        whose first use was flagged new, on the day of that first use.
    """

    pairs: pl.DataFrame
    seen_workstations: pl.DataFrame
    seen_ips: pl.DataFrame
    users: pl.DataFrame
    hours: pl.DataFrame
    day_patients: pl.DataFrame
    hour_patients: pl.DataFrame
    last_event: pl.DataFrame
    sessions: pl.DataFrame
    unexplained: pl.DataFrame
    new_places: pl.DataFrame

    @classmethod
    def empty(cls) -> FeatureState:
        utc = pl.Datetime("us", "UTC")
        return cls(
            pairs=pl.DataFrame(
                schema={
                    "user_id": pl.String,
                    "patient_id": pl.String,
                    "pair_known": pl.Boolean,
                    "last_write": utc,
                    "last_explained": utc,
                }
            ),
            seen_workstations=pl.DataFrame(schema={"user_id": pl.String, "workstation": pl.String}),
            seen_ips=pl.DataFrame(schema={"user_id": pl.String, "source_ip": pl.String}),
            users=pl.DataFrame(schema={"user_id": pl.String, "prior_events": pl.Int64}),
            hours=pl.DataFrame(
                schema={"user_id": pl.String, "hour_bucket": utc, "hour_count": pl.Int64}
            ),
            day_patients=pl.DataFrame(
                schema={"user_id": pl.String, "day": pl.Date, "patient_id": pl.String}
            ),
            hour_patients=pl.DataFrame(
                schema={"user_id": pl.String, "hour_bucket": utc, "patient_id": pl.String}
            ),
            last_event=pl.DataFrame(
                schema={
                    "user_id": pl.String,
                    "previous_time": utc,
                    "previous_session": pl.String,
                    "previous_workstation": pl.String,
                }
            ),
            sessions=pl.DataFrame(
                schema={
                    "user_id": pl.String,
                    "session_id": pl.String,
                    "session_last": utc,
                    "session_parallel": pl.Boolean,
                }
            ),
            unexplained=pl.DataFrame(
                schema={"user_id": pl.String, "day": pl.Date, "patient_id": pl.String}
            ),
            new_places=pl.DataFrame(
                schema={"user_id": pl.String, "place": pl.String, "new_since": pl.Date}
            ),
        )


@dataclass
class FeaturePipeline:
    """Turns access events and the hospital's context into the feature frame.

    Parameters
    ----------
    context: the hospital's roster, patients, encounters and relations.
    min_user_events: accesses a user needs in the training log to have a baseline of
        their own; below it the user's peers (same role and department) stand in.
    collaborative_rank: rank of the user-patient factorisation.
    seed: for the factorisation's random start.
    """

    context: HospitalContext
    min_user_events: int = 50
    collaborative_rank: int = 24
    seed: int = 0
    hour_profile_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    peer_hour_profile_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    daily_volume_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    peer_daily_volume_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    hourly_volume_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    collaborative_: CollaborativeModel | None = field(default=None, init=False, repr=False)
    explanation_: ExplanationModel = field(default_factory=ExplanationModel, init=False)
    _windows_cache: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame] | None = field(
        default=None, init=False, repr=False
    )

    # -- fitting -------------------------------------------------------------------
    def fit(self, events: pl.DataFrame) -> FeaturePipeline:
        """Learn each user's and each peer group's usual hours and daily volume."""
        self.fit_transform(events)
        return self

    def fit_transform(self, events: pl.DataFrame) -> pl.DataFrame:
        """Fit, and return the training log's features (cheaper than fit, then transform)."""
        frame = self._with_roster(events.select("user_id", "patient_id", "time"))
        frame = frame.with_columns(
            hour=pl.col("time").dt.hour().cast(pl.Int8), day=pl.col("time").dt.date()
        )
        self.hour_profile_ = _hour_profile(frame, ["user_id"], 1)
        self.peer_hour_profile_ = _hour_profile(frame, ["user_role", "user_department"], 1)
        daily = frame.group_by("user_id", "user_role", "user_department", "day").agg(
            day_patients=pl.col("patient_id").n_unique()
        )
        # Medians, not high quantiles: a user's worst day (a spree, a stolen password)
        # must not become their normal.
        self.daily_volume_ = daily.group_by("user_id").agg(
            own_day_patients=pl.col("day_patients").median(), active_days=pl.len()
        )
        self.peer_daily_volume_ = daily.group_by("user_role", "user_department").agg(
            peer_day_patients=pl.col("day_patients").median().clip(lower_bound=MIN_USUAL_DAY)
        )
        hourly = frame.group_by(
            "user_id", pl.col("time").dt.truncate("1h").alias("hour_bucket")
        ).agg(hour_patients=pl.col("patient_id").n_unique())
        self.hourly_volume_ = hourly.group_by("user_id").agg(
            usual_hour_patients=pl.col("hour_patients").median().clip(lower_bound=MIN_USUAL_HOUR)
        )
        self.collaborative_ = CollaborativeModel(rank=self.collaborative_rank, seed=self.seed)
        self.collaborative_.fit(frame.select("user_id", "patient_id"))
        # Mine the roles' broader reasons from the training log's own features, then
        # explain again with them (the explanation reads features, never the reverse).
        self.explanation_ = ExplanationModel()
        features, _ = self.transform(events, keep_state=False)
        self.explanation_.fit(features, self._by_chance(features))
        features = self._explain(features.drop(_EXPLANATION_OUTPUTS))
        return _unexplained_lately(features, FeatureState.empty().unexplained)

    def _by_chance(self, features: pl.DataFrame) -> pl.DataFrame:
        """The relationship features of the same accesses with the patients shuffled."""
        shuffled = features.select("user_id", "user_role", "user_department", "day").with_columns(
            patient_id=features["patient_id"].shuffle(seed=self.seed)
        )
        return self._relationship(shuffled)

    # -- transforming ----------------------------------------------------------------
    def transform(
        self, events: pl.DataFrame, state: FeatureState | None = None, *, keep_state: bool = True
    ) -> tuple[pl.DataFrame, FeatureState]:
        """The features of a time-ordered chunk, and the state after it.

        ``keep_state=False`` skips building the next state (a batch run that ends with
        the chunk needs none) and returns an empty one.
        """
        if self.collaborative_ is None:
            raise RuntimeError("fit the feature pipeline before transforming")
        state = state or FeatureState.empty()
        frame = events.sort("time", "event_id", maintain_order=True)
        frame = self._with_roster(frame).with_columns(
            day=pl.col("time").dt.date(), hour=pl.col("time").dt.hour().cast(pl.Int8)
        )
        frame = self._identity(frame)
        frame = self._relationship(frame)
        frame = self._history(frame, state)
        frame = self._baselines(frame)
        frame = frame.with_columns(
            collaborative_expectedness=self.collaborative_.expectedness(
                frame["user_id"], frame["patient_id"]
            )
        )
        frame = self._explain(frame)
        frame = _unexplained_lately(frame, state.unexplained)
        following = _next_state(frame, state) if keep_state else FeatureState.empty()
        return frame.select(_OUTPUTS), following

    def _explain(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Documented reasons, then continuing care from earlier explained accesses."""
        frame = self.explanation_.documented(frame)
        pair = ["user_id", "patient_id"]
        frame = frame.with_columns(
            explained_at=pl.when(pl.col("documented"))
            .then(pl.col("time"))
            .shift(1)
            .forward_fill()
            .over(pair)
        ).with_columns(
            explained_before=(
                pl.coalesce("explained_at", "last_explained") >= pl.col("time") - CONTINUITY
            ).fill_null(False)
        )
        return frame.with_columns(
            explained=pl.col("documented") | pl.col("explained_before"),
            explanation=pl.when(pl.col("documented"))
            .then(pl.col("documented_reason"))
            .when(pl.col("explained_before"))
            .then(pl.lit(CONTINUING_CARE[0]))
            .otherwise(None),
        )

    def _with_roster(self, events: pl.DataFrame) -> pl.DataFrame:
        staff = self.context.staff.select("user_id", "user_role", "user_department")
        return events.join(staff, on="user_id", how="left", maintain_order="left").with_columns(
            pl.col("user_role").fill_null("unknown"), pl.col("user_department").fill_null("unknown")
        )

    def _identity(self, frame: pl.DataFrame) -> pl.DataFrame:
        ctx = self.context
        staff = ctx.staff.drop("user_role", "user_department")
        patient_staff = ctx.staff.select(
            patient_staff_id="user_id", patient_staff_department="user_department"
        )
        relatives = ctx.relatives.select(
            "patient_id", user_id="staff_id", relative_of_user=pl.lit(True)
        ).unique(["patient_id", "user_id"])
        joined = _left_join(frame, staff, "user_id")
        joined = _left_join(joined, ctx.patients, "patient_id")
        joined = _left_join(joined, patient_staff, "patient_staff_id")
        joined = _left_join(joined, relatives, ["patient_id", "user_id"])
        distance_km = _haversine_km(
            pl.col("user_latitude"),
            pl.col("user_longitude"),
            pl.col("patient_latitude"),
            pl.col("patient_longitude"),
        )
        other_household = (
            pl.col("user_household").is_null()
            | pl.col("patient_household").is_null()
            | (pl.col("user_household") != pl.col("patient_household"))
        )
        near_door = (pl.col("user_street") == pl.col("patient_street")) & (
            (pl.col("user_house_number") - pl.col("patient_house_number")).abs() <= 10
        )
        self_access = (pl.col("patient_staff_id") == pl.col("user_id")).fill_null(False)
        joined = joined.with_columns(
            same_surname=(pl.col("user_surname") == pl.col("patient_surname")).fill_null(False),
            same_household=(pl.col("user_household") == pl.col("patient_household")).fill_null(
                False
            ),
            relative_of_user=pl.col("relative_of_user").fill_null(False),
            neighbour=(
                (near_door.fill_null(False) | (distance_km <= 0.15).fill_null(False))
                & other_household
            ),
            coworker=(
                (pl.col("patient_staff_department") == pl.col("user_department")).fill_null(False)
                & ~self_access
            ),
            self_access=self_access,
            vip=pl.col("vip").fill_null(False),
            sensitive=pl.col("sensitive").fill_null(False),
            deceased=(
                pl.col("deceased_flag").fill_null(False)
                & (pl.col("deceased_at").is_null() | (pl.col("deceased_at") < pl.col("time")))
            ),
            user_terminated=(pl.col("day") > pl.col("user_termination")).fill_null(False),
        )
        keep = [c for c in joined.columns if c not in _IDENTITY_SCRATCH]
        return joined.select(keep)

    def _windows(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        """Encounter, care-team and colleague windows in days, built once per pipeline.

        The context does not change while a pipeline lives; a micro-batch of the stream
        must not rebuild them.
        """
        if self._windows_cache is None:
            ctx = self.context
            team_days = _day_windows(ctx.care_team)
            self._windows_cache = (
                _day_windows(ctx.encounters),
                team_days.select("patient_id", user_id="staff_id", first="first", last="last"),
                team_days.join(
                    ctx.staff.select(staff_id="user_id", user_department="user_department"),
                    on="staff_id",
                ).select("patient_id", "user_department", "first", "last"),
            )
        return self._windows_cache

    def _relationship(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Encounter and care-team windows, decided once per (user, patient, day)."""
        keys = frame.select("user_id", "patient_id", "user_department", "day").unique()
        days, team, colleagues = self._windows()
        within = (pl.col("day") >= pl.col("first")) & (pl.col("day") <= pl.col("last"))
        on_team = _any_match(keys, team, ["user_id", "patient_id"], within, "on_care_team")
        department = (
            keys.join(
                days.select(
                    "patient_id",
                    user_department="department",
                    first="first",
                    last="last",
                    start_day="start_day",
                ),
                on=["patient_id", "user_department"],
            )
            .group_by("user_id", "patient_id", "user_department", "day")
            .agg(
                department_encounter=within.any(),
                upcoming_appointment=(
                    (pl.col("start_day") > pl.col("day"))
                    & (pl.col("start_day") <= pl.col("day") + timedelta(days=UPCOMING_DAYS))
                ).any(),
                department_treated_before=(pl.col("start_day") <= pl.col("day")).any(),
            )
        )
        colleague = _any_match(
            keys, colleagues, ["patient_id", "user_department"], within, "colleague_on_care_team"
        )
        # Where the patient is in the hospital's life, whoever looks: decided per
        # (patient, day), for roles that serve every department.
        patient_days = keys.select("patient_id", "day").unique()
        anywhere = (
            patient_days.join(
                days.select("patient_id", "start_day", end_day=pl.col("end").dt.date()),
                on="patient_id",
            )
            .group_by("patient_id", "day")
            .agg(
                in_hospital=(
                    (pl.col("day") >= pl.col("start_day") - timedelta(days=1))
                    & (
                        pl.col("end_day").is_null()
                        | (pl.col("day") <= pl.col("end_day") + timedelta(days=1))
                    )
                ).any(),
                upcoming_visit=(
                    (pl.col("start_day") > pl.col("day"))
                    & (pl.col("start_day") <= pl.col("day") + timedelta(days=UPCOMING_DAYS))
                ).any(),
                recently_discharged=(
                    (pl.col("end_day") < pl.col("day"))
                    & (pl.col("end_day") >= pl.col("day") - timedelta(days=DISCHARGE_DAYS))
                ).any(),
            )
        )
        key = ["user_id", "patient_id", "user_department", "day"]
        flags = (
            keys.join(on_team, on=key, how="left", maintain_order="left")
            .join(department, on=key, how="left", maintain_order="left")
            .join(colleague, on=key, how="left", maintain_order="left")
            .join(anywhere, on=["patient_id", "day"], how="left", maintain_order="left")
            .with_columns(
                pl.col(name).fill_null(False)
                for name in (
                    "on_care_team",
                    "department_encounter",
                    "upcoming_appointment",
                    "department_treated_before",
                    "colleague_on_care_team",
                    "in_hospital",
                    "upcoming_visit",
                    "recently_discharged",
                )
            )
        )
        return _left_join(frame, flags, key)

    def _history(self, frame: pl.DataFrame, state: FeatureState) -> pl.DataFrame:
        pair = ["user_id", "patient_id"]
        frame = frame.with_columns(
            is_write=pl.col("action").is_in(_WRITES),
            hour_bucket=pl.col("time").dt.truncate("1h"),
        )
        # Last write before each event: within the chunk, then from earlier chunks.
        frame = frame.with_columns(
            write_before=pl.when(pl.col("is_write"))
            .then(pl.col("time"))
            .shift(1)
            .forward_fill()
            .over(pair),
            seen_in_chunk=~pl.struct(pair).is_first_distinct(),
        )
        frame = (
            _left_join(frame, state.pairs, pair)
            .with_columns(
                last_write=pl.coalesce("write_before", "last_write"),
                accessed_before=pl.col("seen_in_chunk") | pl.col("pair_known").fill_null(False),
            )
            .with_columns(
                charted_before=(pl.col("last_write") >= pl.col("time") - CONTINUITY).fill_null(
                    False
                ),
            )
        )
        frame = _left_join(frame, state.users, "user_id").with_columns(
            user_prior_events=pl.col("prior_events").fill_null(0)
            + pl.int_range(pl.len()).over("user_id")
        )
        frame = _first_seen(frame, state.seen_workstations, "workstation", "new_workstation")
        frame = _first_seen(frame, state.seen_ips, "source_ip", "new_source_ip")
        # Accesses in this clock hour, counting the chunk before this one.
        frame = _left_join(frame, state.hours, ["user_id", "hour_bucket"]).with_columns(
            user_hour_accesses=pl.col("hour_count").fill_null(0)
            + pl.int_range(1, pl.len() + 1).over("user_id", "hour_bucket")
        )
        # Distinct patients this day so far, counting the days' earlier chunks.
        frame = _distinct_so_far(frame, state.day_patients, "day", "user_day_patients")
        frame = _distinct_so_far(frame, state.hour_patients, "hour_bucket", "user_hour_patients")
        # The user's previous access, in this chunk or the one before.
        frame = _left_join(frame, state.last_event, "user_id").with_columns(
            previous_time=pl.col("time")
            .shift(1)
            .over("user_id")
            .fill_null(pl.col("previous_time")),
            previous_session=pl.col("session_id")
            .shift(1)
            .over("user_id")
            .fill_null(pl.col("previous_session")),
            previous_workstation=pl.col("workstation")
            .shift(1)
            .over("user_id")
            .fill_null(pl.col("previous_workstation")),
        )
        # A session that begins on another workstation while the user's previous session
        # was in use moments before: two sessions open at once (shared or stolen
        # credentials). The flag stays with every access of the new session.
        frame = _left_join(frame, state.sessions, ["user_id", "session_id"]).with_columns(
            session_before=pl.col("time")
            .shift(1)
            .over("user_id", "session_id")
            .fill_null(pl.col("session_last"))
        )
        opens_in_parallel = (
            pl.col("session_before").is_null()
            & (pl.col("session_id") != pl.col("previous_session"))
            & (pl.col("workstation") != pl.col("previous_workstation"))
            & (pl.col("time") - pl.col("previous_time") <= CONCURRENT_WITHIN)
        ).fill_null(False)
        concurrent = opens_in_parallel.cum_max().over("user_id", "session_id") | pl.col(
            "session_parallel"
        ).fill_null(False)
        frame = frame.with_columns(concurrent_session=concurrent)
        newly_unknown = pl.col("user_prior_events") >= MIN_HISTORY
        frame = frame.with_columns(
            first_access=~pl.col("accessed_before"),
            new_workstation=pl.col("new_workstation") & newly_unknown,
            new_source_ip=pl.col("new_source_ip") & newly_unknown,
            name_search=(pl.col("action") == "search") & (pl.col("resource_type") == "Patient"),
            export=pl.col("action").is_in(_EXPORTS)
            | pl.col("application").str.to_lowercase().str.contains("report").fill_null(False),
        )
        return _new_place_today(frame, state.new_places)

    def _baselines(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The access against the user's own hours and volume, shrunk towards the peers'.

        Each baseline is a user's own figure weighed by their days of history against
        ``PRIOR_DAYS`` days of their peers' (same role and department): a new user looks
        like their peers, a user with a month of history like themselves.
        """
        assert self.hour_profile_ is not None and self.peer_hour_profile_ is not None
        assert self.daily_volume_ is not None and self.peer_daily_volume_ is not None
        assert self.hourly_volume_ is not None
        own = self.hour_profile_.select("user_id", "hour", own_days="days", own_near="near")
        peer = self.peer_hour_profile_.select(
            "user_role", "user_department", "hour", peer_share=pl.col("near") / pl.col("days")
        )
        peer_keys = ["user_role", "user_department"]
        frame = _left_join(frame, own, ["user_id", "hour"])
        frame = _left_join(frame, peer, [*peer_keys, "hour"])
        frame = _left_join(frame, self.daily_volume_, "user_id")
        frame = _left_join(frame, self.peer_daily_volume_, peer_keys)
        frame = _left_join(frame, self.hourly_volume_, "user_id")
        days = pl.col("own_days").fill_null(0)
        peer_share = pl.col("peer_share").fill_null(0.0)
        share = (pl.col("own_near").fill_null(0) + PRIOR_DAYS * peer_share) / (days + PRIOR_DAYS)
        peer_volume = pl.col("peer_day_patients").fill_null(20.0)
        active = pl.col("active_days").fill_null(0)
        usual = (
            (pl.col("own_day_patients").fill_null(0.0) * active + PRIOR_DAYS * peer_volume)
            / (active + PRIOR_DAYS)
        ).clip(lower_bound=MIN_USUAL_DAY)
        return frame.with_columns(
            off_shift=(1.0 - share).clip(0.0, 1.0),
            volume_vs_user=pl.col("user_day_patients") / usual,
            volume_vs_peers=pl.col("user_day_patients") / peer_volume,
            volume_vs_user_hour=pl.col("user_hour_patients")
            / pl.col("usual_hour_patients").fill_null(8.0),
        )


_IDENTITY_SCRATCH = frozenset(
    {
        "user_surname",
        "user_household",
        "user_street",
        "user_house_number",
        "user_latitude",
        "user_longitude",
        "user_termination",
        "patient_surname",
        "patient_household",
        "patient_street",
        "patient_house_number",
        "patient_latitude",
        "patient_longitude",
        "deceased_flag",
        "deceased_at",
        "patient_staff_id",
        "patient_staff_department",
    }
)


_EXPLANATION_OUTPUTS = [
    "user_unexplained_7d",
    "documented",
    "documented_reason",
    "explained_at",
    "explained_before",
    "explained",
    "explanation",
]
#: What a feature frame holds: the event, the user's role and department, the features,
#: the explanation, and the columns the next chunk's state is built from.
_OUTPUTS = [
    *ACCESS_EVENT_SCHEMA,
    "user_role",
    "user_department",
    *FEATURES,
    "documented",
    "documented_reason",
    "explained_at",
    "explained_before",
    "explained",
    "explanation",
    "day",
    "hour_bucket",
    "is_write",
    "last_explained",
]


def feature_columns() -> list[str]:
    """The model inputs, in a fixed order."""
    return list(FEATURES)


def _hour_profile(frame: pl.DataFrame, by: list[str], minimum: int) -> pl.DataFrame:
    """Share of the group's working days with accesses within an hour of each hour.

    Counted in days, not accesses, so one night of a thousand stolen-credential reads
    weighs one night, not a thousand accesses, in the user's own pattern.
    """
    people = list(dict.fromkeys([*by, "user_id"]))
    worked = frame.select(*people, "day", "hour").unique()
    days = worked.select(*people, "day").unique().group_by(by).agg(days=pl.len())
    days = days.filter(pl.col("days") >= minimum)
    shifted = pl.concat(
        [
            worked.with_columns(hour=((pl.col("hour").cast(pl.Int16) + delta) % 24).cast(pl.Int8))
            for delta in (-1, 0, 1)
        ]
    ).unique()
    near = shifted.group_by(*by, "hour").agg(near=pl.len())
    hours = pl.DataFrame({"hour": np.arange(24, dtype=np.int8)})
    return (
        days.join(hours, how="cross")
        .join(near, on=[*by, "hour"], how="left", maintain_order="left")
        .select(*by, "hour", "days", near=pl.col("near").fill_null(0))
    )


def _day_windows(frame: pl.DataFrame) -> pl.DataFrame:
    """An encounter's period as days: from a day before it starts to a week after it ends."""
    start_day = pl.col("start").dt.date()
    end_day = pl.col("end").dt.date()
    return frame.with_columns(
        start_day=start_day,
        first=start_day - timedelta(days=BEFORE_START_DAYS),
        # An encounter still open explains access until it closes.
        last=pl.when(end_day.is_null())
        .then(pl.date(9999, 1, 1))
        .otherwise(end_day + timedelta(days=AFTER_END_DAYS)),
    )


def _any_match(
    keys: pl.DataFrame, windows: pl.DataFrame, on: list[str], within: pl.Expr, name: str
) -> pl.DataFrame:
    key = ["user_id", "patient_id", "user_department", "day"]
    return (
        keys.join(windows, on=on)
        .filter(within)
        .select(key)
        .unique()
        .with_columns(pl.lit(True).alias(name))
    )


def _unexplained_lately(frame: pl.DataFrame, earlier: pl.DataFrame) -> pl.DataFrame:
    """Distinct (patient, day) pairs the user opened with nothing to explain it in the
    last seven days, up to and including this access.

    Slow, spread-out snooping (a few records a day, every day) shows here when no single
    day stands out. Counted by day so that chunks of any size agree.
    """
    unexplained = ~pl.col("explained")
    known = earlier.with_columns(_known=pl.lit(True))
    frame = _left_join(frame, known, ["user_id", "day", "patient_id"])
    first_today = (
        unexplained
        & pl.col("_known").is_null()
        & pl.struct("user_id", "day", "patient_id", unexplained.alias("_u")).is_first_distinct()
    )
    frame = frame.with_columns(_new=first_today.cast(pl.Int64))
    # Daily totals from earlier chunks and this one, for the six days before each day.
    daily = (
        pl.concat(
            [
                earlier.group_by("user_id", "day").agg(_n=pl.len().cast(pl.Int64)),
                frame.group_by("user_id", "day").agg(_n=pl.col("_new").sum()),
            ]
        )
        .group_by("user_id", "day")
        .agg(pl.col("_n").sum())
    )
    days = frame.select("user_id", "day").unique()
    trailing = (
        days.join(daily.rename({"day": "_d"}), on="user_id")
        .filter(
            (pl.col("_d") < pl.col("day"))
            & (pl.col("_d") > pl.col("day") - timedelta(days=UNEXPLAINED_WINDOW_DAYS))
        )
        .group_by("user_id", "day")
        .agg(_before=pl.col("_n").sum())
    )
    today_before = earlier.group_by("user_id", "day").agg(_today=pl.len().cast(pl.Int64))
    frame = _left_join(frame, trailing, ["user_id", "day"])
    frame = _left_join(frame, today_before, ["user_id", "day"])
    return frame.with_columns(
        user_unexplained_7d=pl.col("_before").fill_null(0)
        + pl.col("_today").fill_null(0)
        + pl.col("_new").cum_sum().over("user_id", "day")
    ).drop("_known", "_new", "_before", "_today")


def _distinct_so_far(
    frame: pl.DataFrame, earlier: pl.DataFrame, period: str, name: str
) -> pl.DataFrame:
    """Distinct patients of the user in the period up to each access, earlier chunks included."""
    known = earlier.with_columns(_known=pl.lit(True))
    frame = _left_join(frame, known, ["user_id", period, "patient_id"])
    new = (
        pl.struct("user_id", period, "patient_id").is_first_distinct() & pl.col("_known").is_null()
    )
    before = earlier.group_by("user_id", period).agg(_count=pl.len().cast(pl.Int64))
    frame = _left_join(frame, before, ["user_id", period])
    return frame.with_columns(
        (
            pl.col("_count").fill_null(0) + new.cast(pl.Int64).cum_sum().over("user_id", period)
        ).alias(name)
    ).drop("_known", "_count")


def _first_seen(frame: pl.DataFrame, seen: pl.DataFrame, column: str, name: str) -> pl.DataFrame:
    """True on the first event of a (user, value) pair never seen in earlier chunks."""
    known = seen.with_columns(_known=pl.lit(True))
    frame = _left_join(frame, known, ["user_id", column])
    first = pl.struct("user_id", column).is_first_distinct()
    return frame.with_columns(
        (first & pl.col("_known").is_null() & pl.col(column).is_not_null()).alias(name)
    ).drop("_known")


def _places(frame: pl.DataFrame) -> tuple[pl.Expr, pl.Expr]:
    """The access's workstation and network address as places, ``ws:...`` and ``ip:...``."""
    return (
        pl.concat_str(pl.lit("ws:"), pl.col("workstation")),
        pl.concat_str(pl.lit("ip:"), pl.col("source_ip")),
    )


def _new_place_today(frame: pl.DataFrame, earlier: pl.DataFrame) -> pl.DataFrame:
    """``new_place_today``: the workstation or address is one the user first used today,
    and that first use was flagged new (``new_workstation``, ``new_source_ip``).

    ``new_workstation`` marks the first access from a place only; a sweep from a stolen
    laptop is hundreds of accesses after it, and a rule that weighs volume needs the
    place to stay new for the rest of the day.
    """
    workstation, address = _places(frame)
    columns = []
    for name, place, flag in (
        ("_ws", workstation, "new_workstation"),
        ("_ip", address, "new_source_ip"),
    ):
        # Only the first access from a place can be flagged: carry its day forward.
        in_chunk = (
            pl.when(pl.col(flag)).then(pl.col("day")).forward_fill().over("user_id", place)
        )
        columns.append(place.alias(f"{name}_place"))
        columns.append(in_chunk.alias(f"{name}_since"))
    frame = frame.with_columns(columns)
    for name in ("_ws", "_ip"):
        known = earlier.select(
            "user_id", pl.col("place").alias(f"{name}_place"), pl.col("new_since").alias(f"{name}_earlier")
        )
        frame = _left_join(frame, known, ["user_id", f"{name}_place"])
    today = [
        (pl.coalesce(f"{name}_since", f"{name}_earlier") == pl.col("day")).fill_null(False)
        for name in ("_ws", "_ip")
    ]
    scratch = [f"{n}_{part}" for n in ("_ws", "_ip") for part in ("place", "since", "earlier")]
    return frame.with_columns(new_place_today=today[0] | today[1]).drop(scratch)


def _next_state(frame: pl.DataFrame, state: FeatureState) -> FeatureState:
    pair = ["user_id", "patient_id"]
    writes = frame.filter(pl.col("is_write")).group_by(pair).agg(chunk_write=pl.col("time").max())
    explained = (
        frame.filter(pl.col("documented")).group_by(pair).agg(chunk_explained=pl.col("time").max())
    )
    pairs = (
        pl.concat([state.pairs.select(pair), frame.select(pair).unique()], how="vertical")
        .unique()
        .join(state.pairs, on=pair, how="left", maintain_order="left")
        .join(writes, on=pair, how="left", maintain_order="left")
        .join(explained, on=pair, how="left", maintain_order="left")
        .with_columns(
            pair_known=pl.lit(True),
            last_write=pl.coalesce("chunk_write", "last_write"),
            last_explained=pl.coalesce("chunk_explained", "last_explained"),
        )
        .select(*pair, "pair_known", "last_write", "last_explained")
    )
    users = (
        pl.concat(
            [state.users, frame.group_by("user_id").agg(prior_events=pl.len().cast(pl.Int64))]
        )
        .group_by("user_id")
        .agg(pl.col("prior_events").sum())
    )
    workstations = pl.concat(
        [state.seen_workstations, frame.select("user_id", "workstation").drop_nulls()]
    ).unique()
    ips = pl.concat([state.seen_ips, frame.select("user_id", "source_ip").drop_nulls()]).unique()
    hours = (
        pl.concat(
            [
                state.hours,
                frame.group_by("user_id", "hour_bucket").agg(hour_count=pl.len().cast(pl.Int64)),
            ]
        )
        .group_by("user_id", "hour_bucket")
        .agg(pl.col("hour_count").sum())
        .filter(pl.col("hour_bucket") == pl.col("hour_bucket").max().over("user_id"))
    )
    # What is forgotten is measured from each user's own latest access, not from the
    # newest of anyone's: a user whose events arrive late (a source that lags, a log
    # shipped hours after the others) must keep today's counts while others run ahead.
    days = pl.concat([state.day_patients, frame.select("user_id", "day", "patient_id")]).unique()
    days = days.filter(pl.col("day") >= pl.col("day").max().over("user_id") - timedelta(days=1))
    hour_patients = (
        pl.concat([state.hour_patients, frame.select("user_id", "hour_bucket", "patient_id")])
        .unique()
        .filter(pl.col("hour_bucket") == pl.col("hour_bucket").max().over("user_id"))
    )
    last_event = pl.concat(
        [
            state.last_event,
            frame.group_by("user_id").agg(
                previous_time=pl.col("time").last(),
                previous_session=pl.col("session_id").last(),
                previous_workstation=pl.col("workstation").last(),
            ),
        ]
    ).unique("user_id", keep="last", maintain_order=True)
    sessions = (
        pl.concat(
            [
                state.sessions,
                frame.filter(pl.col("session_id").is_not_null())
                .group_by("user_id", "session_id")
                .agg(
                    session_last=pl.col("time").max(),
                    session_parallel=pl.col("concurrent_session").any(),
                ),
            ]
        )
        .group_by("user_id", "session_id")
        .agg(pl.col("session_last").max(), pl.col("session_parallel").any())
    )
    sessions = sessions.filter(
        pl.col("session_last") >= pl.col("session_last").max().over("user_id") - SESSION_MEMORY
    )
    unexplained = pl.concat(
        [
            state.unexplained,
            frame.filter(~pl.col("explained")).select("user_id", "day", "patient_id"),
        ]
    ).unique()
    unexplained = unexplained.filter(
        pl.col("day")
        > pl.col("day").max().over("user_id") - timedelta(days=UNEXPLAINED_WINDOW_DAYS)
    )
    workstation, address = _places(frame)
    flagged = pl.concat(
        [
            frame.filter(pl.col("new_workstation")).select(
                "user_id", place=workstation, new_since="day"
            ),
            frame.filter(pl.col("new_source_ip")).select("user_id", place=address, new_since="day"),
        ]
    )
    new_places = (
        pl.concat([state.new_places, flagged])
        .unique(["user_id", "place"], keep="last", maintain_order=True)
        .filter(pl.col("new_since") >= pl.col("new_since").max().over("user_id") - timedelta(days=1))
    )
    return FeatureState(
        pairs,
        workstations,
        ips,
        users,
        hours,
        days,
        hour_patients,
        last_event,
        sessions,
        unexplained,
        new_places,
    )


def _left_join(frame: pl.DataFrame, table: pl.DataFrame, on: str | list[str]) -> pl.DataFrame:
    """``frame`` with the other columns of ``table`` (unique on ``on``) matched to its rows.

    Joins the key columns alone and stacks the result beside the frame: a feature frame
    is wide, and a join copies every column it carries. An empty table (the state
    before a batch run's first chunk) matches nothing and is not joined at all.
    """
    keys = [on] if isinstance(on, str) else on
    extra = [name for name in table.columns if name not in keys]
    if table.is_empty():
        return frame.with_columns(
            pl.lit(None, dtype=table.schema[name]).alias(name) for name in extra
        )
    matched = frame.select(keys).join(table, on=keys, how="left", maintain_order="left")
    return frame.hstack(matched.select(extra))


def _haversine_km(lat1: pl.Expr, lon1: pl.Expr, lat2: pl.Expr, lon2: pl.Expr) -> pl.Expr:
    rad = np.pi / 180.0
    dlat = (lat2 - lat1) * rad
    dlon = (lon2 - lon1) * rad
    a = (dlat / 2).sin() ** 2 + (lat1 * rad).cos() * (lat2 * rad).cos() * (dlon / 2).sin() ** 2
    return 2 * 6371.0 * a.sqrt().arcsin()
