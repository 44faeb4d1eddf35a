"""Labelled misuse: the incidents a privacy officer investigates.

Each scenario picks offenders and targets from the hospital's real relationships (a
relative, a neighbour, a co-worker who is a patient, a VIP) and makes touches, labelled
with the scenario and a case id that groups one incident's accesses. The rules that keep
misuse from being separable by one trivial feature:

- offenders are ordinary staff who keep doing their normal work; most misuse happens
  inside their ordinary sessions, at their workstation, at ordinary hours, with their
  role's default purpose of use;
- a share of targets are patients with encounters in the offender's own department;
- misuse reads look like chart review (``browse``), not like a special action.

The exceptions are the point of their scenario: an intruder's new device and odd hour,
a terminated employee's account, a declared break-the-glass, a bulk export.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from custodes.simulate.accesses import ETREAT, MISUSE, REPORTING, Touches
from custodes.simulate.config import ScenarioRates, SimulationConfig
from custodes.simulate.encounters import Encounters
from custodes.simulate.hospital import Hospital
from custodes.simulate.shifts import DAY, HOUR, KIND, MINUTE, Sessions, Workstations
from custodes.simulate.workflows import ROLE, WorkContext

SCENARIOS: tuple[str, ...] = ScenarioRates.names()
#: Roles whose members see patients as part of their job.
CLINICAL_ROLES = ("attending", "resident", "nurse", "float_nurse", "pharmacist", "therapist")


@dataclass(slots=True)
class ScenarioOutcome:
    """What a scenario produced: incidents asked for and made, and its cases' offenders."""

    expected: float
    requested: int
    produced: int = 0
    offenders: list[int] = field(default_factory=list)


def incident_count(rate: float, staff_days: float, rng: np.random.Generator) -> int:
    """``rate`` per 1,000 staff-days, rounded up or down at random by the fraction.

    >>> import numpy as np
    >>> incident_count(2.0, 1500, np.random.default_rng(0)) in (3,)
    True
    """
    expected = rate * staff_days / 1000.0
    whole = int(np.floor(expected))
    return whole + int(rng.random() < expected - whole)


class _Misuse:
    """Shared lookups for the scenarios."""

    def __init__(
        self,
        hospital: Hospital,
        encounters: Encounters,
        work: WorkContext,
        workstations: Workstations,
        rng: np.random.Generator,
    ) -> None:
        self.hospital = hospital
        self.encounters = encounters
        self.work = work
        self.sessions: Sessions = work.sessions
        self.workstations = workstations
        self.touches: Touches = work.touches
        self.rng = rng
        self.case = 0
        self.window_end = work.window_end
        work._load_sessions()
        on_site = np.isin(
            work.s_kind,
            [KIND[k] for k in ("day", "evening", "night", "weekend_rounds", "remote_evening")],
        )
        in_window = (work.s_start >= 0) & (work.s_end <= self.window_end)
        index = np.flatnonzero(on_site & in_window)
        order = np.lexsort((work.s_start[index], work.s_user[index]))
        self.user_session = index[order]
        self.user_session_user = work.s_user[self.user_session]
        counts = np.bincount(self.user_session_user, minlength=len(hospital.staff))
        employed = hospital.staff.termination_day >= hospital.config.days
        # Offenders are people with a job to do here: they have legitimate touches too.
        self.working = np.zeros(len(hospital.staff), dtype=bool)
        touch_start = work.touches.column("start")
        in_window_touch = (touch_start >= 0) & (touch_start < self.window_end)
        self.working[np.unique(work.s_user[work.touches.column("session")[in_window_touch]])] = True
        self.active = np.flatnonzero((counts >= 2) & employed & self.working)
        n_department = len(hospital.departments)
        keys = encounters.patient * n_department + encounters.department
        self.treated_keys = np.unique(keys)
        in_window_encounter = (encounters.end > 0) & (encounters.start < self.window_end)
        self.current_patients = np.unique(encounters.patient[in_window_encounter])

    def sessions_of(self, user: int) -> np.ndarray:
        left = np.searchsorted(self.user_session_user, user, side="left")
        right = np.searchsorted(self.user_session_user, user, side="right")
        return self.user_session[left:right]

    def treated_in_department(self, patient: np.ndarray, staff: np.ndarray) -> np.ndarray:
        """Whether each patient has an encounter in each staff member's home department."""
        n_department = len(self.hospital.departments)
        keys = np.asarray(patient) * n_department + self.hospital.staff.department[staff]
        return np.isin(keys, self.treated_keys)

    def new_case(self) -> int:
        self.case += 1
        return self.case

    def choose_pairs(
        self, offender: np.ndarray, target: np.ndarray, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``count`` distinct (offender, target) pairs, favouring targets in care now
        and targets treated in the offender's department (so misuse is not always outside
        the offender's department)."""
        keep = np.isin(offender, self.active) & (offender >= 0) & (target >= 0)
        keep &= self.hospital.patients.staff[target.clip(0)] != offender  # self-access is its own
        offender, target = offender[keep], target[keep]
        if len(offender) == 0 or count == 0:
            return offender[:0], target[:0]
        weight = (
            1.0
            + 3.0 * np.isin(target, self.current_patients)
            + 4.0 * self.treated_in_department(target, offender)
        )
        count = min(count, len(offender))
        chosen = self.rng.choice(len(offender), size=count, replace=False, p=weight / weight.sum())
        chosen.sort()
        return offender[chosen], target[chosen]

    def snoop(
        self, scenario: str, case: int, user: int, patient, touches: int, *,
        mean_events: float = 4.0, profile: str = "browse", off_hours: float = 0.2,
        purpose: int = -1, spread_days: bool = True,
    ) -> int:  # fmt: skip
        """Touches by ``user`` on ``patient`` (one or an array), mostly inside the user's
        ordinary sessions, some from home in the evening. Returns touches made."""
        rng = self.rng
        own = self.sessions_of(user)
        if len(own) == 0:
            return 0
        patient = np.broadcast_to(np.asarray(patient, dtype=np.int64), touches)
        if spread_days:
            session = own[rng.integers(0, len(own), size=touches)]
        else:
            session = np.full(touches, own[rng.integers(0, len(own))])
        time = self.work.uniform_time(
            self.work.s_start[session] + 10 * MINUTE, self.work.s_end[session] - 10 * MINUTE
        )
        away = rng.random(touches) < off_hours
        if away.any():
            day = self.work.s_day[session[away]]
            start = day * DAY + rng.integers(
                int(19.5 * HOUR), int(23.0 * HOUR), size=int(away.sum())
            )
            start = np.minimum(start, self.window_end - HOUR)
            remote = self.sessions.add(
                np.full(int(away.sum()), user), start, start + rng.integers(15 * MINUTE, 50 * MINUTE, size=int(away.sum())),
                -1, KIND["extra"], self.workstations.home_offset + user,
            )  # fmt: skip
            session = session.copy()
            session[away] = remote
            time[away] = start + MINUTE
        self.touches.add(
            session, patient, time, 1 + rng.poisson(mean_events, size=touches), profile, MISUSE,
            purpose=purpose, scenario=1 + SCENARIOS.index(scenario), case=case,
        )  # fmt: skip
        return touches


def plan_incidents(config: SimulationConfig, rng: np.random.Generator) -> dict[str, int]:
    """How many incidents of each scenario to make, drawn before the hospital is built
    (so the roster can hold enough leavers for the terminated-account scenario)."""
    return {
        name: incident_count(getattr(config.rates, name), config.staff_days, rng)
        for name in SCENARIOS
    }


def inject_misuse(
    hospital: Hospital,
    encounters: Encounters,
    work: WorkContext,
    workstations: Workstations,
    planned: dict[str, int],
    rng: np.random.Generator,
) -> dict[str, ScenarioOutcome]:
    """Add every scenario's labelled touches (and their sessions) to the work's tables."""
    misuse = _Misuse(hospital, encounters, work, workstations, rng)
    config = hospital.config
    outcomes: dict[str, ScenarioOutcome] = {}
    for name in SCENARIOS:
        rate = getattr(config.rates, name)
        requested = planned[name]
        outcome = ScenarioOutcome(round(rate * config.staff_days / 1000.0, 3), requested)
        if requested:
            _GENERATORS[name](misuse, name, requested, outcome)
        outcomes[name] = outcome
    work._load_sessions()
    return outcomes


# --- relationship snooping -------------------------------------------------------------------


def _relationship_snooping(
    misuse: _Misuse,
    name: str,
    count: int,
    outcome: ScenarioOutcome,
    offender,
    target,
    touches=(2, 6),
) -> None:
    offender, target = misuse.choose_pairs(np.asarray(offender), np.asarray(target), count)
    for user, patient in zip(offender.tolist(), target.tolist(), strict=True):
        case = misuse.new_case()
        n = int(misuse.rng.integers(touches[0], touches[1]))
        if misuse.snoop(name, case, user, patient, n):
            outcome.produced += 1
            outcome.offenders.append(user)


def _family_snooping(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    relations = misuse.hospital.relations
    staff_ties = relations.relative_staff >= 0
    _relationship_snooping(
        misuse,
        name,
        count,
        outcome,
        relations.relative_staff[staff_ties],
        relations.patient[staff_ties],
    )


def _coworker_lookup(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    staff = misuse.hospital.staff
    patients_who_work = np.flatnonzero(staff.patient >= 0)
    offenders, targets = [], []
    for colleague in patients_who_work.tolist():
        same = np.flatnonzero(staff.department == staff.department[colleague])
        same = same[same != colleague]
        if len(same):
            picks = misuse.rng.choice(same, size=min(3, len(same)), replace=False)
            offenders.extend(picks.tolist())
            targets.extend([int(staff.patient[colleague])] * len(picks))
    _relationship_snooping(
        misuse,
        name,
        count,
        outcome,
        np.array(offenders, dtype=np.int64),
        np.array(targets, dtype=np.int64),
        (1, 4),
    )


def _neighbour_lookup(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    hospital = misuse.hospital
    households, patients, staff = hospital.households, hospital.patients, hospital.staff
    # Patients sorted by (street, house number): a neighbour is within three doors.
    key = households.street[patients.household] * 100_000 + households.number[patients.household]
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    staff_key = households.street[staff.household] * 100_000 + households.number[staff.household]
    left = np.searchsorted(sorted_key, staff_key - 6, side="left")
    right = np.searchsorted(sorted_key, staff_key + 6, side="right")
    offenders, targets = [], []
    for s in np.flatnonzero(right > left).tolist():
        near = order[left[s] : right[s]]
        near = near[patients.household[near] != staff.household[s]]
        if len(near):
            offenders.append(s)
            targets.append(int(near[misuse.rng.integers(0, len(near))]))
    _relationship_snooping(
        misuse,
        name,
        count,
        outcome,
        np.array(offenders, dtype=np.int64),
        np.array(targets, dtype=np.int64),
        (1, 4),
    )


def _self_access(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    staff = misuse.hospital.staff
    candidates = np.intersect1d(np.flatnonzero(staff.patient >= 0), misuse.active)
    chosen = misuse.rng.choice(candidates, size=min(count, len(candidates)), replace=False)
    for user in np.sort(chosen).tolist():
        case = misuse.new_case()
        if misuse.snoop(
            name,
            case,
            user,
            int(staff.patient[user]),
            int(misuse.rng.integers(1, 5)),
            off_hours=0.3,
        ):
            outcome.produced += 1
            outcome.offenders.append(user)


# --- curiosity -------------------------------------------------------------------------------------


def _vips(misuse: _Misuse) -> np.ndarray:
    return np.flatnonzero(misuse.hospital.patients.vip)


def _vip_curiosity(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    vips = _vips(misuse)
    offenders = misuse.rng.choice(misuse.active, size=count * 4)
    targets = vips[misuse.rng.integers(0, len(vips), size=count * 4)]
    _relationship_snooping(misuse, name, count, outcome, offenders, targets, (1, 4))


def _vip_news_burst(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """A VIP's admission is in the news: many staff look within a day or two."""
    rng, enc, work = misuse.rng, misuse.encounters, misuse.work
    vips = _vips(misuse)
    admitted = np.flatnonzero(
        np.isin(enc.patient, vips) & (enc.start >= 0) & (enc.start < misuse.window_end - DAY)
    )
    if len(admitted) == 0:  # no VIP came in during the window: the news is about an old stay
        admitted = np.flatnonzero(np.isin(enc.patient, vips))
    for _ in range(count):
        encounter = int(admitted[rng.integers(0, len(admitted))])
        patient = int(enc.patient[encounter])
        news = max(0, int(enc.start[encounter])) + int(rng.integers(2 * HOUR, 12 * HOUR))
        news = min(news, misuse.window_end - 6 * HOUR)
        # Whoever is at work in the next two days, across the hospital.
        window = np.flatnonzero((work.s_start < news + 2 * DAY) & (work.s_end > news))
        window = window[
            np.isin(
                work.s_kind[window],
                [KIND[k] for k in ("day", "evening", "night", "weekend_rounds")],
            )
        ]
        window = window[misuse.hospital.patients.staff[patient] != work.s_user[window]]
        users = np.unique(work.s_user[window])
        users = users[misuse.working[users]]
        size = min(len(users), max(5, int(round(0.015 * len(misuse.hospital.staff)))))
        if size == 0:
            continue
        chosen = np.sort(rng.choice(users, size=size, replace=False))
        case = misuse.new_case()
        for user in chosen.tolist():
            own = window[work.s_user[window] == user]
            session = own[rng.integers(0, len(own))]
            low = max(int(work.s_start[session]), news)
            time = low + int(rng.integers(0, max(1, int(work.s_end[session]) - low)))
            touches = int(rng.integers(1, 3))
            misuse.touches.add(
                np.full(touches, session), patient, time + np.arange(touches) * 20 * MINUTE,
                1 + rng.poisson(2.0, size=touches), "browse", MISUSE,
                scenario=1 + SCENARIOS.index(name), case=case,
            )  # fmt: skip
            outcome.offenders.append(user)
        outcome.produced += 1


def _department_browsing(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """A spree through the charts of patients admitted to other departments."""
    rng, work, enc = misuse.rng, misuse.work, misuse.encounters
    staff = misuse.hospital.staff
    for user in np.sort(rng.choice(misuse.active, size=count, replace=False)).tolist():
        own = misuse.sessions_of(user)
        session = int(own[rng.integers(0, len(own))])
        time = int(work.s_start[session]) + int(rng.integers(30 * MINUTE, 3 * HOUR))
        time = min(time, int(work.s_end[session]) - 30 * MINUTE)
        inside = (enc.start <= time) & (enc.end > time) & (enc.department != staff.department[user])
        inside &= enc.patient != staff.patient[user]
        patients = np.unique(enc.patient[inside])
        if len(patients) == 0:
            continue
        size = min(len(patients), 5 + int(rng.poisson(10)))
        chosen = rng.choice(patients, size=size, replace=False)
        case = misuse.new_case()
        misuse.touches.add(
            np.full(size, session), chosen, time + np.arange(size) * rng.integers(30_000, 120_000, size=size),
            1 + rng.poisson(1.5, size=size), "browse", MISUSE,
            scenario=1 + SCENARIOS.index(name), case=case,
        )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


def _name_search(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """Searching a name seen in the news or heard about, with no relationship at all."""
    rng = misuse.rng
    patients = misuse.hospital.patients
    offenders = rng.choice(misuse.active, size=count * 4)
    targets = rng.integers(0, len(patients), size=count * 4)
    offender, target = misuse.choose_pairs(offenders, targets, count)
    for user, patient in zip(offender.tolist(), target.tolist(), strict=True):
        case = misuse.new_case()
        if misuse.snoop(name, case, user, patient, int(rng.integers(1, 4)), profile="name_search"):
            outcome.produced += 1
            outcome.offenders.append(user)


def _break_the_glass(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """Breaking the glass on a restricted record (VIP, psychiatry, substance use) with no
    clinical need: the declaration is real, the emergency is not."""
    rng = misuse.rng
    staff, patients = misuse.hospital.staff, misuse.hospital.patients
    clinical = misuse.active[np.isin(staff.role[misuse.active], [ROLE[r] for r in CLINICAL_ROLES])]
    restricted = np.flatnonzero(patients.restricted)
    offenders = rng.choice(clinical, size=count * 4)
    targets = restricted[rng.integers(0, len(restricted), size=count * 4)]
    offender, target = misuse.choose_pairs(offenders, targets, count)
    for user, patient in zip(offender.tolist(), target.tolist(), strict=True):
        case = misuse.new_case()
        if misuse.snoop(
            name, case, user, patient, int(rng.integers(1, 3)), purpose=ETREAT, off_hours=0.1
        ):
            outcome.produced += 1
            outcome.offenders.append(user)


def _repeat_offender(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """Three to five small episodes over the window, each on a different person."""
    rng = misuse.rng
    relations = misuse.hospital.relations
    patients = misuse.hospital.patients
    days = misuse.hospital.config.days
    for user in np.sort(rng.choice(misuse.active, size=count, replace=False)).tolist():
        own = misuse.sessions_of(user)
        relatives = relations.patient[relations.relative_staff == user]
        episodes = int(rng.integers(3, 6))
        pool = np.concatenate([relatives, rng.integers(0, len(patients), size=episodes)])
        targets = pool[rng.choice(len(pool), size=episodes, replace=len(pool) < episodes)]
        targets = targets[patients.staff[targets] != user]
        case = misuse.new_case()
        made = 0
        # Episodes in different parts of the window: split the sessions into episodes.
        for k, patient in enumerate(targets.tolist()):
            part = own[(misuse.work.s_day[own] * len(targets)) // max(days, 1) == k]
            if len(part) == 0:
                part = own
            session = int(part[rng.integers(0, len(part))])
            touches = int(rng.integers(1, 4))
            time = misuse.work.uniform_time(
                np.full(touches, misuse.work.s_start[session] + 10 * MINUTE),
                np.full(touches, misuse.work.s_end[session] - 10 * MINUTE),
            )
            misuse.touches.add(
                np.full(touches, session), patient, time, 1 + rng.poisson(3.0, size=touches), "browse",
                MISUSE, scenario=1 + SCENARIOS.index(name), case=case,
            )  # fmt: skip
            made += touches
        if made:
            outcome.produced += 1
            outcome.offenders.append(user)


def _slow_and_low(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """A few accesses to one person, spread over weeks, at ordinary hours."""
    rng = misuse.rng
    relations = misuse.hospital.relations
    staff_ties = relations.relative_staff >= 0
    offenders = np.concatenate(
        [relations.relative_staff[staff_ties], rng.choice(misuse.active, size=count * 2)]
    )
    targets = np.concatenate(
        [
            relations.patient[staff_ties],
            rng.integers(0, len(misuse.hospital.patients), size=count * 2),
        ]
    )
    # Only someone who works several days can keep looking over several days.
    days_at_work = np.array(
        [len(np.unique(misuse.work.s_day[misuse.sessions_of(int(u))])) for u in offenders]
    )
    patient_enough = days_at_work >= 3
    offenders, targets = offenders[patient_enough], targets[patient_enough]
    offender, target = misuse.choose_pairs(offenders, targets, count)
    for user, patient in zip(offender.tolist(), target.tolist(), strict=True):
        own = misuse.sessions_of(user)
        touches = min(len(own), int(rng.integers(4, 9)))
        if touches == 0:
            continue
        # Evenly spaced sessions: one look every few days, never a burst.
        picks = own[np.linspace(0, len(own) - 1, touches).round().astype(np.int64)]
        picks = np.unique(picks)
        time = misuse.work.uniform_time(
            misuse.work.s_start[picks] + 10 * MINUTE, misuse.work.s_end[picks] - 10 * MINUTE
        )
        case = misuse.new_case()
        misuse.touches.add(
            picks, patient, time, 1 + rng.poisson(1.5, size=len(picks)), "browse", MISUSE,
            scenario=1 + SCENARIOS.index(name), case=case,
        )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


# --- accounts ----------------------------------------------------------------------------------


def _bulk_export(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """One account pulls hundreds of records through the reporting tool and exports them."""
    rng, work = misuse.rng, misuse.work
    patients = misuse.hospital.patients
    for user in np.sort(rng.choice(misuse.active, size=count, replace=False)).tolist():
        own = misuse.sessions_of(user)
        session = int(own[rng.integers(0, len(own))])
        size = int(rng.integers(150, 600))
        chosen = rng.choice(
            len(patients), size=size, replace=False, p=patients.weight / patients.weight.sum()
        )
        time = work.uniform_time(
            np.full(size, work.s_start[session] + 30 * MINUTE),
            np.full(size, work.s_end[session] - 10 * MINUTE),
        )
        case = misuse.new_case()
        misuse.touches.add(
            np.full(size, session), chosen, np.sort(time), 1 + rng.poisson(1.5, size=size), "export",
            MISUSE, application=REPORTING, scenario=1 + SCENARIOS.index(name), case=case,
        )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


def _compromised_credentials(
    misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome
) -> None:
    """Stolen credentials: failed logins from a new device and address in the small hours,
    then a sweep of records and exports. The account's owner keeps working as usual."""
    rng = misuse.rng
    patients = misuse.hospital.patients
    days = misuse.hospital.config.days
    for user in np.sort(rng.choice(misuse.active, size=count, replace=False)).tolist():
        day = int(rng.integers(0, days))
        start = day * DAY + int(rng.integers(1 * HOUR, int(4.5 * HOUR)))
        length = int(rng.integers(60 * MINUTE, 150 * MINUTE))
        device = misuse.workstations.add(
            f"DESKTOP-{int(rng.integers(0, 16**7)):07X}",
            f"{('203.0.113', '198.51.100', '192.0.2')[int(rng.integers(0, 3))]}.{int(rng.integers(2, 254))}",
        )
        session = int(
            misuse.sessions.add(
                [user],
                start,
                start + length,
                -1,
                KIND["extra"],
                device,
                failures=int(rng.integers(2, 7)),
            )[0]
        )
        misuse.work._load_sessions()
        size = int(rng.integers(150, 500))
        chosen = rng.choice(len(patients), size=size, replace=False)
        time = np.sort(
            misuse.work.uniform_time(
                np.full(size, start + 5 * MINUTE), np.full(size, start + length - 5 * MINUTE)
            )
        )
        case = misuse.new_case()
        profile_mix = rng.random(size) < 0.6
        for profile, mask in (("browse", profile_mix), ("export", ~profile_mix)):
            misuse.touches.add(
                np.full(int(mask.sum()), session), chosen[mask], time[mask],
                1 + rng.poisson(1.0, size=int(mask.sum())), profile, MISUSE,
                scenario=1 + SCENARIOS.index(name), case=case,
            )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


def _terminated_account(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """An account left enabled after its owner left: used in the days after termination,
    from the old unit's workstation or from home."""
    rng = misuse.rng
    hospital = misuse.hospital
    staff = hospital.staff
    days = hospital.config.days
    leavers = np.flatnonzero(staff.termination_day < days - 1)
    leavers = leavers[misuse.working[leavers]]
    chosen = np.sort(rng.choice(leavers, size=min(count, len(leavers)), replace=False))
    for user in chosen.tolist():
        case = misuse.new_case()
        visits = int(rng.integers(1, 4))
        for _ in range(visits):
            day = int(rng.integers(staff.termination_day[user] + 1, days))
            start = day * DAY + int(rng.integers(8 * HOUR, 21 * HOUR))
            start = min(start, misuse.window_end - 2 * HOUR)
            from_home = rng.random() < 0.5
            department = int(staff.department[user])
            pool = misuse.workstations.by_department[department]
            device = (
                misuse.workstations.home_offset + user
                if from_home
                else int(pool[rng.integers(0, len(pool))])
            )
            session = int(
                misuse.sessions.add(
                    [user],
                    start,
                    start + int(rng.integers(20 * MINUTE, 90 * MINUTE)),
                    -1 if from_home else department,
                    KIND["extra"],
                    device,
                )[0]
            )
            misuse.work._load_sessions()
            size = int(rng.integers(3, 15))
            chosen_patients = rng.choice(len(hospital.patients), size=size, replace=False)
            time = np.sort(
                misuse.work.uniform_time(
                    np.full(size, start + MINUTE),
                    np.full(size, int(misuse.work.s_end[session]) - MINUTE),
                )
            )
            misuse.touches.add(
                np.full(size, session), chosen_patients, time, 1 + rng.poisson(3.0, size=size),
                "browse", MISUSE, scenario=1 + SCENARIOS.index(name), case=case,
            )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


def _concurrent_sessions(misuse: _Misuse, name: str, count: int, outcome: ScenarioOutcome) -> None:
    """One account signed in on two workstations in two departments at once: shared or
    borrowed credentials. The second workstation's accesses are the misuse."""
    rng, work, enc = misuse.rng, misuse.work, misuse.encounters
    departments = misuse.hospital.departments
    for user in np.sort(rng.choice(misuse.active, size=count, replace=False)).tolist():
        own = misuse.sessions_of(user)
        own = own[work.s_department[own] >= 0]
        if len(own) == 0:
            continue
        first = int(own[rng.integers(0, len(own))])
        start = int(work.s_start[first]) + int(rng.integers(HOUR, 4 * HOUR))
        end = min(start + int(rng.integers(30 * MINUTE, 90 * MINUTE)), int(work.s_end[first]))
        if end <= start + 10 * MINUTE:
            continue
        other = [d for d in departments.clinical if d != work.s_department[first]]
        department = int(other[rng.integers(0, len(other))])
        pool = misuse.workstations.by_department[department]
        session = int(
            misuse.sessions.add(
                [user], start, end, department, KIND["extra"], int(pool[rng.integers(0, len(pool))])
            )[0]
        )
        misuse.work._load_sessions()
        inside = np.unique(enc.patient[(enc.start <= start) & (enc.end > start)])
        if len(inside) == 0:
            continue
        size = min(len(inside), int(rng.integers(5, 20)))
        chosen = rng.choice(inside, size=size, replace=False)
        time = np.sort(
            misuse.work.uniform_time(np.full(size, start + MINUTE), np.full(size, end - MINUTE))
        )
        case = misuse.new_case()
        misuse.touches.add(
            np.full(size, session), chosen, time, 1 + rng.poisson(3.0, size=size), "browse",
            MISUSE, scenario=1 + SCENARIOS.index(name), case=case,
        )  # fmt: skip
        outcome.produced += 1
        outcome.offenders.append(user)


_GENERATORS = {
    "family_snooping": _family_snooping,
    "coworker_lookup": _coworker_lookup,
    "neighbour_lookup": _neighbour_lookup,
    "vip_curiosity": _vip_curiosity,
    "vip_news_burst": _vip_news_burst,
    "self_access": _self_access,
    "department_browsing": _department_browsing,
    "name_search": _name_search,
    "bulk_export": _bulk_export,
    "compromised_credentials": _compromised_credentials,
    "terminated_account": _terminated_account,
    "break_the_glass": _break_the_glass,
    "repeat_offender": _repeat_offender,
    "concurrent_sessions": _concurrent_sessions,
    "slow_and_low": _slow_and_low,
}
