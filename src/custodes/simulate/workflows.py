"""Legitimate work: who opens which chart, when, and why.

Each workflow turns the hospital's day into touches (see ``accesses``), vectorised over
all of its rows at once, and records who joined each encounter's care team. The care
team is documented the way EHRs document it, imperfectly: the attending always, the
primary nurse most of the time, consultants and therapists sometimes, pharmacists,
laboratory, radiology, registration, billing and HIM never. So a large and realistic
share of legitimate accesses has no direct care-team link, and has another reason.

Workflows, in the order they run:

- inpatient nursing: each 12-hour shift's census is split among the unit's nurses on
  duty; float nurses go where the patients-per-nurse ratio is worst; every nurse also
  glances at other patients on the unit list;
- inpatient physicians: an attending per unit stay, changing weekly; a resident; a
  colleague covers their days off; night-float residents cross-cover; consultants
  from other departments; teaching rounds on Wednesdays;
- the emergency department: physician, nurse, resident, registration, tracking board,
  break-the-glass for restricted records;
- clinics: pre-visit review, the visit, documentation, the front desk, scheduling;
- ancillary services: pharmacy verification, laboratory, imaging, therapy;
- billing and coding days to months after discharge; HIM chart completion and release
  of information; research queries under approved protocols; IT support;
- remote work: physicians charting from home in the evening, nights on call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from custodes.simulate.accesses import ETREAT, REASON, REPORTING, Touches
from custodes.simulate.config import ROLE_CODES
from custodes.simulate.encounters import AMBULATORY, EMERGENCY, INPATIENT, Encounters
from custodes.simulate.hospital import SCHEDULE_INDEX, Hospital
from custodes.simulate.shifts import (
    DAY,
    HOUR,
    KIND,
    MINUTE,
    OnDuty,
    Sessions,
    Workstations,
    pick_workstation,
)

ROLE = {code: i for i, code in enumerate(ROLE_CODES)}
#: How a care-team member took part (``Encounter.participant.type`` / CareTeam role).
TEAM_ROLES: tuple[str, ...] = ("ATND", "PART", "CON")
ATTENDING, PARTICIPANT, CONSULTANT = range(3)
_SHIFT = 12 * HOUR
_SHIFT_ORIGIN = 7 * HOUR  # 12-hour shifts change at 07:00 and 19:00


@dataclass(slots=True)
class CareTeam:
    """Documented care-team memberships: (encounter, staff member, how, from, to)."""

    columns: dict[str, list[np.ndarray]] = field(
        default_factory=lambda: {k: [] for k in ("encounter", "staff", "role", "start", "end")}
    )

    def add(self, encounter, staff, role, start, end) -> None:
        encounter = np.asarray(encounter, dtype=np.int64).reshape(-1)
        staff = np.broadcast_to(np.asarray(staff, dtype=np.int64), len(encounter))
        keep = staff >= 0
        for key, value in (
            ("encounter", encounter), ("staff", staff), ("role", role),
            ("start", start), ("end", end),
        ):  # fmt: skip
            column = np.broadcast_to(np.asarray(value, dtype=np.int64), len(encounter))
            self.columns[key].append(column[keep].copy())

    def column(self, name: str) -> np.ndarray:
        parts = self.columns[name]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def deduplicated(self) -> dict[str, np.ndarray]:
        """One row per (encounter, staff member): the first way they joined, the whole span."""
        cols = {k: self.column(k) for k in self.columns}
        order = np.lexsort((cols["start"], cols["staff"], cols["encounter"]))
        cols = {k: v[order] for k, v in cols.items()}
        pair = cols["encounter"] * (cols["staff"].max(initial=0) + 1) + cols["staff"]
        first = np.ones(len(pair), dtype=bool)
        first[1:] = pair[1:] != pair[:-1]
        group = np.cumsum(first) - 1
        end = np.zeros(int(first.sum()), dtype=np.int64)
        np.maximum.at(end, group, cols["end"])
        result = {k: v[first] for k, v in cols.items()}
        result["end"] = end
        return result


def _ranges(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, value) for every integer value from ``first`` to ``last`` inclusive, per row."""
    counts = np.maximum(last - first + 1, 0)
    row = np.repeat(np.arange(len(first)), counts)
    value = first[row] + np.arange(len(row)) - np.repeat(np.cumsum(counts) - counts, counts)
    return row, value


def _pick_in_groups(
    sorted_keys: np.ndarray, keys: np.ndarray, u: np.ndarray | None = None, rank=None
) -> np.ndarray:
    """For each key, a position in ``sorted_keys`` among the entries equal to it: chosen
    by ``u`` in [0, 1), or the ``rank``-th modulo the group's size. -1 where none is."""
    left = np.searchsorted(sorted_keys, keys, side="left")
    count = np.searchsorted(sorted_keys, keys, side="right") - left
    offset = (u * count).astype(np.int64) if rank is None else rank % np.maximum(count, 1)
    return np.where(count > 0, np.minimum(left + offset, len(sorted_keys) - 1), -1)


class WorkContext:
    """Shared state of the workflows: the hospital, the sessions, the duty rosters."""

    def __init__(
        self,
        hospital: Hospital,
        encounters: Encounters,
        sessions: Sessions,
        workstations: Workstations,
        rng: np.random.Generator,
    ) -> None:
        self.hospital = hospital
        self.encounters = encounters
        self.sessions = sessions
        self.workstations = workstations
        self.rng = rng
        self.days = hospital.config.days
        self.window_end = self.days * DAY
        self.intensity = hospital.config.volumes.intensity
        self.touches = Touches()
        self.team = CareTeam()
        self.staff = hospital.staff
        self._load_sessions()
        self._duty: dict[tuple[tuple[str, ...], bool, bool], OnDuty] = {}

    def _load_sessions(self) -> None:
        s = self.sessions
        self.s_user = s.column("user")
        self.s_start = s.column("start")
        self.s_end = s.column("end")
        self.s_department = s.column("department")
        self.s_kind = s.column("kind")
        self.s_role = self.staff.role[self.s_user]
        self.s_day = self.s_start // DAY

    # --- lookups

    def events(self, mean: float, size: int) -> np.ndarray:
        """Events per touch: one, plus a Poisson number scaled by the volume intensity."""
        return 1 + self.rng.poisson(mean * self.intensity, size=size)

    def duty(self, roles: tuple[str, ...], by_department: bool = True, night_only=False) -> OnDuty:
        key = (roles, by_department, night_only)
        if key not in self._duty:
            on_site = ~np.isin(
                self.s_kind, [KIND["after_hours_charting"], KIND["on_call"], KIND["extra"]]
            )
            mask = np.isin(self.s_role, [ROLE[r] for r in roles]) & on_site
            if night_only:
                mask &= self.s_kind == KIND["night"]
            index = np.flatnonzero(mask)
            group = self.s_department[index] if by_department else np.zeros(len(index), np.int64)
            self._duty[key] = OnDuty(index, group, self.s_start[index], self.s_end[index])
        return self._duty[key]

    def on_duty(self, roles, time, department=None) -> np.ndarray:
        """A session of one of ``roles`` on duty at each time (in each department)."""
        time = np.asarray(time, dtype=np.int64)
        duty = self.duty(tuple(roles), department is not None)
        group = np.zeros(len(time), np.int64) if department is None else department
        return duty.pick(np.broadcast_to(group, len(time)), time, self.rng.random(len(time)))

    def day_session(self, user: np.ndarray, day: np.ndarray) -> np.ndarray:
        """The on-site session each user started on each day, or -1."""
        if not hasattr(self, "_day_keys"):
            on_site = np.isin(
                self.s_kind, [KIND[k] for k in ("day", "evening", "night", "weekend_rounds")]
            )
            index = np.flatnonzero(on_site)
            keys = self.s_user[index] * (self.days + 3) + (self.s_day[index] + 1)
            order = np.argsort(keys, kind="stable")
            self._day_keys, self._day_index = keys[order], index[order]
        keys = np.asarray(user) * (self.days + 3) + (np.asarray(day) + 1)
        at = np.searchsorted(self._day_keys, keys).clip(0, max(len(self._day_keys) - 1, 0))
        found = len(self._day_keys) > 0
        hit = found & (self._day_keys[at] == keys) if found else np.zeros(len(keys), bool)
        return np.where(hit, self._day_index[at] if found else -1, -1)

    def uniform_time(self, low, high) -> np.ndarray:
        low = np.asarray(low, dtype=np.int64)
        high = np.maximum(np.asarray(high, dtype=np.int64), low + 1)
        return low + (self.rng.random(len(low)) * (high - low)).astype(np.int64)

    # --- census

    def prepare_census(self) -> None:
        """Inpatient unit stays, as (stay, day) and (stay, 12-hour shift) rows."""
        enc = self.encounters
        self.inpatient = np.flatnonzero(enc.encounter_class == INPATIENT)
        start, end = enc.start[self.inpatient], enc.end[self.inpatient]
        first_day = np.maximum(start // DAY, 0)
        last_day = np.minimum((end - 1) // DAY, self.days - 1)
        row, day = _ranges(first_day, last_day)
        self.stay_day_encounter = self.inpatient[row]
        self.stay_day = day
        first_slot = np.maximum((start - _SHIFT_ORIGIN) // _SHIFT, -2)
        last_slot = np.minimum((end - 1 - _SHIFT_ORIGIN) // _SHIFT, 2 * self.days)
        row, slot = _ranges(first_slot, last_slot)
        self.census_encounter = self.inpatient[row]
        self.census_slot = slot
        self.census_department = enc.department[self.census_encounter]
        self.n_slots = 2 * self.days + 4

    def census_key(self, department, slot) -> np.ndarray:
        return np.asarray(department) * self.n_slots + (np.asarray(slot) + 2)


def legitimate_work(
    hospital: Hospital,
    encounters: Encounters,
    sessions: Sessions,
    workstations: Workstations,
    rng: np.random.Generator,
) -> WorkContext:
    """Every legitimate touch of the window, and the documented care teams.

    Returns the work context: its ``touches`` and ``team``, and the lookups the misuse
    scenarios reuse. Remote sessions (charting from home, nights on call) are added to
    ``sessions``.
    """
    work = WorkContext(hospital, encounters, sessions, workstations, rng)
    work.prepare_census()
    _float_nurses(work)
    _inpatient_nursing(work)
    _inpatient_physicians(work)
    _night_float(work)
    _consults(work)
    _teaching_rounds(work)
    _emergency(work)
    _clinics(work)
    _ancillary(work)
    _outpatient_orders(work)
    _billing(work)
    _him(work)
    _research(work)
    _it_support(work)
    _after_hours_charting(work)
    _on_call(work)
    _history_attendings(work)
    return work


# --- inpatient nursing --------------------------------------------------------------------


def _nurse_shift_sessions(work: WorkContext) -> tuple[np.ndarray, np.ndarray]:
    """12-hour nurse sessions and the shift slot each covers."""
    nurse_schedule = work.staff.schedule[work.s_user] == SCHEDULE_INDEX["nurse"]
    index = np.flatnonzero(nurse_schedule & np.isin(work.s_kind, [KIND["day"], KIND["night"]]))
    slot = (work.s_start[index] - _SHIFT_ORIGIN + _SHIFT // 2) // _SHIFT
    return index, slot


def _float_nurses(work: WorkContext) -> None:
    """Send each float nurse to the unit with the most patients per nurse that shift."""
    departments = work.hospital.departments
    index, slot = _nurse_shift_sessions(work)
    is_float = work.s_role[index] == ROLE["float_nurse"]
    units = departments.inpatient
    # Patients one nurse can take: two in intensive care, four on the wards.
    ratio = np.array([2.0 if departments.specs[d].code == "icu" else 4.0 for d in units])
    census = np.bincount(
        work.census_key(work.census_department, work.census_slot),
        minlength=len(departments) * work.n_slots,
    )
    regular = index[~is_float]
    staffed = np.bincount(
        work.census_key(work.s_department[regular], slot[~is_float]),
        minlength=len(departments) * work.n_slots,
    )
    floats = index[is_float]
    float_slot = slot[is_float]
    assigned = np.empty(len(floats), dtype=np.int64)
    for s in np.unique(float_slot):
        keys = work.census_key(units, s)
        deficit = census[keys] / ratio - staffed[keys]
        for i in np.flatnonzero(float_slot == s):
            best = int(np.argmax(deficit + work.rng.random(len(units)) * 1e-3))
            assigned[i] = units[best]
            deficit[best] -= 1.0
    work.sessions.set_department(floats, assigned)
    workstation = work.sessions.column("workstation")
    workstation[floats] = pick_workstation(work.workstations, assigned, work.rng)
    work.sessions.workstation = [workstation]
    work._load_sessions()


def _inpatient_nursing(work: WorkContext) -> None:
    rng = work.rng
    enc = work.encounters
    index, slot = _nurse_shift_sessions(work)
    key = work.census_key(work.s_department[index], slot)
    order = np.lexsort((rng.random(len(index)), key))
    nurse_key, nurse_session = key[order], index[order]
    census_key = work.census_key(work.census_department, work.census_slot)
    # Split each shift's census among the nurses on duty, round-robin in random order.
    rank_order = np.lexsort((rng.random(len(census_key)), census_key))
    sorted_key = census_key[rank_order]
    group_start = np.searchsorted(sorted_key, sorted_key, side="left")
    rank = np.empty(len(census_key), dtype=np.int64)
    rank[rank_order] = np.arange(len(sorted_key)) - group_start
    position = _pick_in_groups(nurse_key, census_key, rank=rank)
    staffed = position >= 0
    session = np.where(staffed, nurse_session[position.clip(0)] if len(nurse_session) else -1, -1)
    census_row = np.flatnonzero(staffed)
    session = session[census_row]
    encounter = work.census_encounter[census_row]
    low = np.maximum(work.s_start[session], enc.start[encounter])
    high = np.minimum(work.s_end[session], enc.end[encounter])
    keep = high > low + 10 * MINUTE
    session, encounter, low, high = session[keep], encounter[keep], low[keep], high[keep]
    is_float = work.s_role[session] == ROLE["float_nurse"]
    # Medication passes, assessments and charting through the shift.
    rounds = 4 + rng.poisson(2.0, size=len(session))
    row = np.repeat(np.arange(len(session)), rounds)
    reason = np.where(is_float, REASON["float_assignment"], REASON["medication_administration"])
    work.touches.add(
        session[row], enc.patient[encounter][row], work.uniform_time(low[row], high[row]),
        work.events(5.0, len(row)), "nursing", reason[row],
    )  # fmt: skip
    # The primary nurse is documented on the care team most of the time; floats less.
    documented = rng.random(len(session)) < np.where(is_float, 0.5, 0.75)
    work.team.add(
        encounter[documented], work.s_user[session][documented], PARTICIPANT,
        low[documented], high[documented],
    )  # fmt: skip
    # The unit list: every nurse glances at a few of the unit's other patients.
    glances = rng.poisson(6.0, size=len(nurse_session))
    row = np.repeat(np.arange(len(nurse_session)), glances)
    sessions = nurse_session[row]
    position = _pick_in_groups(sorted_key, nurse_key[row], rng.random(len(row)))
    has = position >= 0
    sessions, pick = sessions[has], rank_order[position[has]]
    encounter = work.census_encounter[pick]
    work.touches.add(
        sessions, enc.patient[encounter],
        work.uniform_time(work.s_start[sessions], work.s_end[sessions]),
        work.events(1.0, len(sessions)), "glance", REASON["unit_census"],
    )  # fmt: skip


# --- inpatient physicians -------------------------------------------------------------------


def _candidates(work: WorkContext, role: str, variant: int | None = None) -> dict[int, np.ndarray]:
    staff = work.staff
    # Leavers finish their shifts but are not given new patients to answer for.
    mask = (staff.role == ROLE[role]) & (staff.termination_day >= work.days)
    if variant is not None:
        mask &= staff.variant == variant
    members = np.flatnonzero(mask)
    return {
        int(d): members[staff.department[members] == d]
        for d in np.unique(staff.department[members])
    }


def _assign_by_department(work, encounter, week, candidates, fallback) -> np.ndarray:
    """One of the department's candidates per (stay, week), rotating weekly."""
    enc = work.encounters
    base = (enc.start[encounter] // 1009 + encounter * 7919) % 1_000_003  # stable per stay
    result = np.full(len(encounter), -1, dtype=np.int64)
    department = enc.department[encounter]
    for d in np.unique(department):
        at = department == d
        pool = candidates.get(int(d), fallback)
        if len(pool):
            result[at] = pool[(base[at] + week[at]) % len(pool)]
    return result


def _inpatient_physicians(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    attendings = _candidates(work, "attending")
    residents = _candidates(work, "resident", variant=0)
    all_attendings = np.flatnonzero(work.staff.role == ROLE["attending"])
    # The attending of each week of each stay, documented on the care team.
    inpatient = work.inpatient
    weeks = (enc.end[inpatient] - enc.start[inpatient]) // (7 * DAY)
    row, week = _ranges(np.zeros(len(inpatient), dtype=np.int64), weeks)
    stay = inpatient[row]
    attending = _assign_by_department(work, stay, week, attendings, all_attendings)
    week_start = enc.start[stay] + week * 7 * DAY
    work.team.add(
        stay, attending, ATTENDING, week_start, np.minimum(week_start + 7 * DAY, enc.end[stay])
    )
    enc.attending[inpatient] = attending[week == 0]
    resident = _assign_by_department(
        work, inpatient, np.zeros(len(inpatient), np.int64), residents, np.zeros(0, np.int64)
    )
    documented = rng.random(len(inpatient)) < 0.9
    work.team.add(
        inpatient[documented],
        resident[documented],
        PARTICIPANT,
        enc.start[inpatient][documented],
        enc.end[inpatient][documented],
    )
    resident_of = np.full(len(enc), -1, dtype=np.int64)
    resident_of[inpatient] = resident

    # Daily work on each stay: rounds in the morning, results in the afternoon.
    stay, day = work.stay_day_encounter, work.stay_day
    week = (day * DAY - enc.start[stay]).clip(0) // (7 * DAY)
    physician = _assign_by_department(work, stay, week, attendings, all_attendings)
    for who, rounds_from, rounds_to, covering_roles in (
        (physician, 7.5, 11.0, ("attending",)),
        (resident_of[stay], 6.0, 8.0, ("resident",)),
    ):
        has = who >= 0
        s, d, w = stay[has], day[has], who[has]
        session = work.day_session(w, d)
        reason = np.where(session >= 0, REASON["worklist"], REASON["covering"])
        absent = session < 0
        # A colleague of the same department on duty covers the day off; failing one,
        # whoever of that role is on in the hospital (weekend cross-cover).
        morning_of = d[absent] * DAY + 9 * HOUR
        cover = work.on_duty(covering_roles, morning_of, enc.department[s[absent]])
        nobody = cover < 0
        cover[nobody] = work.on_duty(covering_roles, morning_of[nobody])
        session[absent] = cover
        morning = d * DAY + work.uniform_time(
            np.full(len(d), int(rounds_from * HOUR)), np.full(len(d), int(rounds_to * HOUR))
        )
        afternoon = d * DAY + work.uniform_time(
            np.full(len(d), 13 * HOUR), np.full(len(d), 17 * HOUR)
        )
        second = rng.random(len(d)) < 0.7
        for time, mean, keep in ((morning, 8.0, np.ones(len(d), bool)), (afternoon, 4.0, second)):
            present = keep & (time >= enc.start[s]) & (time < enc.end[s]) & (session >= 0)
            work.touches.add(
                session[present], enc.patient[s][present], time[present],
                work.events(mean, int(present.sum())), "chart_review", reason[present],
            )  # fmt: skip


def _night_float(work: WorkContext) -> None:
    """Night residents cross-cover the census: a third of the patients, briefly."""
    rng, enc = work.rng, work.encounters
    night = (work.census_slot % 2) == 1
    rows = np.flatnonzero(night & (rng.random(len(night)) < 0.35))
    slot_start = _SHIFT_ORIGIN + work.census_slot[rows] * _SHIFT
    time = slot_start + work.uniform_time(np.full(len(rows), HOUR), np.full(len(rows), 11 * HOUR))
    encounter = work.census_encounter[rows]
    inside = (time >= enc.start[encounter]) & (time < enc.end[encounter])
    rows, time, encounter = rows[inside], time[inside], encounter[inside]
    session = work.on_duty(("resident",), time, enc.department[encounter])
    # Services without their own night resident are covered by whoever is on.
    missing = session < 0
    duty = work.duty(("resident",), False, night_only=True)
    session[missing] = duty.pick(
        np.zeros(int(missing.sum()), np.int64), time[missing], rng.random(int(missing.sum()))
    )
    work.touches.add(
        session, enc.patient[encounter], time, work.events(2.0, len(session)),
        "chart_review", REASON["night_float"],
    )  # fmt: skip


def _consults(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    departments = work.hospital.departments
    stays = work.inpatient[
        rng.random(len(work.inpatient)) < work.hospital.config.volumes.consult_share
    ]
    clinical = departments.clinical[departments.clinical != departments.emergency]
    weight = np.array([departments.specs[d].staff_weight for d in clinical], dtype=float)
    consult_department = rng.choice(clinical, size=len(stays), p=weight / weight.sum())
    same = consult_department == enc.department[stays]
    stays, consult_department = stays[~same], consult_department[~same]
    # A weekday afternoon during the stay, within the window.
    low = np.maximum(enc.start[stays], 0)
    high = np.minimum(enc.end[stays], work.window_end)
    ok = high > low + HOUR
    stays, consult_department, low, high = stays[ok], consult_department[ok], low[ok], high[ok]
    time = work.uniform_time(low, high)
    time = (time // DAY) * DAY + work.uniform_time(
        np.full(len(time), 10 * HOUR), np.full(len(time), 17 * HOUR)
    )
    session = work.on_duty(("attending",), time, consult_department)
    found = session >= 0
    stays, time, session = stays[found], time[found], session[found]
    patient = enc.patient[stays]
    work.touches.add(
        session, patient, time, work.events(8.0, len(session)), "chart_review", REASON["consult"]
    )
    # Consultants often look again the next day, from their own next session.
    again = rng.random(len(session)) < 0.5
    next_session = work.day_session(work.s_user[session[again]], time[again] // DAY + 1)
    work.touches.add(
        next_session, patient[again], time[again] + DAY, work.events(4.0, int(again.sum())),
        "chart_review", REASON["consult"],
    )  # fmt: skip
    documented = rng.random(len(session)) < 0.3
    work.team.add(
        stays[documented],
        work.s_user[session[documented]],
        CONSULTANT,
        time[documented],
        enc.end[stays[documented]],
    )


def _teaching_rounds(work: WorkContext) -> None:
    """Wednesday noon: attendings and residents review interesting cases of other teams."""
    rng, enc = work.rng, work.encounters
    config = work.hospital.config
    weekday = (config.start.weekday() + work.s_day) % 7
    teaching = np.isin(work.s_department, work.hospital.departments.inpatient)
    doctors = np.isin(work.s_role, [ROLE["attending"], ROLE["resident"]])
    sessions = np.flatnonzero(
        teaching
        & doctors
        & (weekday == 2)
        & (work.s_kind == KIND["day"])
        & (rng.random(len(weekday)) < 0.6)
    )
    cases = 1 + rng.poisson(1.5, size=len(sessions))
    session = np.repeat(sessions, cases)
    time = work.s_day[session] * DAY + 12 * HOUR + rng.integers(0, HOUR, size=len(session))
    # A case from the census of that day, of any team.
    slot = (time - _SHIFT_ORIGIN) // _SHIFT
    in_slot = np.flatnonzero(np.isin(work.census_slot, np.unique(slot)))
    if len(in_slot) == 0:
        return
    by_slot = in_slot[np.argsort(work.census_slot[in_slot], kind="stable")]
    slots_sorted = work.census_slot[by_slot]
    position = _pick_in_groups(slots_sorted, slot, rng.random(len(slot)))
    has = position >= 0
    encounter = work.census_encounter[by_slot[position[has]]]
    work.touches.add(
        session[has], enc.patient[encounter], time[has], work.events(2.0, int(has.sum())),
        "chart_review", REASON["teaching_rounds"],
    )  # fmt: skip


# --- emergency department -------------------------------------------------------------------


def _multi(
    work: WorkContext, session, patient, low, high, touches_per, mean, profile, reason, purpose=-1
):
    """Several touches per row, at uniform times between ``low`` and ``high``."""
    row = np.repeat(np.arange(len(session)), touches_per)
    reason_column = np.broadcast_to(np.asarray(reason), len(session))[row]
    work.touches.add(
        session[row], patient[row], work.uniform_time(low[row], high[row]),
        work.events(mean, len(row)), profile, reason_column,
        purpose=np.broadcast_to(np.asarray(purpose), len(session))[row],
    )  # fmt: skip


def _emergency(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    hospital = work.hospital
    ed = hospital.departments.emergency
    visits = np.flatnonzero(
        (enc.encounter_class == EMERGENCY) & (enc.end > 0) & (enc.start < work.window_end)
    )
    arrival, leave = enc.start[visits], enc.end[visits]
    patient = enc.patient[visits]
    seen = arrival + rng.integers(5 * MINUTE, 40 * MINUTE, size=len(visits))
    physician = work.on_duty(("attending",), seen, ed)
    no_attending = physician < 0
    physician[no_attending] = work.on_duty(("resident",), seen[no_attending], ed)
    enc.attending[visits] = np.where(physician >= 0, work.s_user[physician.clip(0)], -1)
    work.team.add(
        visits,
        np.where(physician >= 0, work.s_user[physician.clip(0)], -1),
        ATTENDING,
        arrival,
        leave,
    )
    restricted = hospital.patients.restricted[patient]
    # A restricted record (VIP, psychiatry, substance use) opened in an emergency needs
    # break-the-glass; the first look declares it.
    has = physician >= 0
    first_reason = np.where(
        restricted, REASON["emergency_break_the_glass"], REASON["emergency_care"]
    )
    first_purpose = np.where(restricted, ETREAT, -1)
    work.touches.add(
        physician[has], patient[has], seen[has], work.events(5.0, int(has.sum())),
        "chart_review", first_reason[has], purpose=first_purpose[has],
    )  # fmt: skip
    _multi(
        work,
        physician[has],
        patient[has],
        seen[has],
        leave[has],
        1 + rng.poisson(1.5, int(has.sum())),
        4.0,
        "chart_review",
        REASON["emergency_care"],
    )
    # The ED nurse, and a resident for half the visits.
    nurse = work.on_duty(("nurse",), arrival, ed)
    has = nurse >= 0
    _multi(
        work,
        nurse[has],
        patient[has],
        arrival[has],
        leave[has],
        3 + rng.poisson(2.0, int(has.sum())),
        3.0,
        "nursing",
        REASON["emergency_care"],
    )
    documented = has & (rng.random(len(visits)) < 0.85)
    work.team.add(
        visits[documented],
        work.s_user[nurse[documented]],
        PARTICIPANT,
        arrival[documented],
        leave[documented],
    )
    resident = np.where(rng.random(len(visits)) < 0.5, work.on_duty(("resident",), seen, ed), -1)
    has = resident >= 0
    _multi(
        work,
        resident[has],
        patient[has],
        seen[has],
        leave[has],
        2 + rng.poisson(1.0, int(has.sum())),
        4.0,
        "chart_review",
        REASON["emergency_care"],
    )
    documented = has & (rng.random(len(visits)) < 0.9)
    work.team.add(
        visits[documented],
        work.s_user[resident[documented]],
        PARTICIPANT,
        arrival[documented],
        leave[documented],
    )
    # Registration at the ED desk as the patient arrives.
    desk = work.on_duty(("registration",), arrival + 2 * MINUTE, ed)
    work.touches.add(
        desk,
        patient,
        arrival + 2 * MINUTE,
        work.events(2.5, len(visits)),
        "registration",
        REASON["registration"],
    )
    # The tracking board: colleagues on duty see every patient in the department.
    for _ in range(2):
        time = work.uniform_time(arrival, leave)
        glancer = work.on_duty(("nurse", "attending"), time, ed)
        work.touches.add(glancer, patient, time, 1, "glance", REASON["tracking_board"])


# --- clinics --------------------------------------------------------------------------------


def _clinics(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    hospital = work.hospital
    visits = np.flatnonzero(
        (enc.encounter_class == AMBULATORY) & (enc.start >= 0) & (enc.start < work.window_end)
    )
    start, end = enc.start[visits], enc.end[visits]
    department, patient = enc.department[visits], enc.patient[visits]
    provider = work.on_duty(("attending",), start, department)
    # A clinician's own relative, booked with that clinician.
    intended = enc.provider[visits]
    own = intended >= 0
    intended_session = work.day_session(intended[own], start[own] // DAY)
    intended_is_attending = work.staff.role[intended[own]] == ROLE["attending"]
    provider[np.flatnonzero(own)[intended_is_attending & (intended_session >= 0)]] = (
        intended_session[intended_is_attending & (intended_session >= 0)]
    )
    nurse = work.on_duty(("nurse",), start - 5 * MINUTE, department)
    nurse_own = np.flatnonzero(own)[~intended_is_attending & (intended_session >= 0)]
    nurse[nurse_own] = intended_session[~intended_is_attending & (intended_session >= 0)]
    relative = np.zeros(len(visits), dtype=bool)
    relative[own] = intended_session >= 0
    enc.attending[visits] = np.where(provider >= 0, work.s_user[provider.clip(0)], -1)
    work.team.add(
        visits, np.where(provider >= 0, work.s_user[provider.clip(0)], -1), ATTENDING, start, end
    )
    has = provider >= 0
    visit_reason = np.where(
        relative, REASON["clinician_relative_on_care_team"], REASON["clinic_visit"]
    )
    before = start - rng.integers(15 * MINUTE, 3 * HOUR, size=len(visits))
    after = end + rng.integers(0, 3 * HOUR, size=len(visits))
    for time, mean, profile, reason in (
        (before, 5.0, "chart_review", np.where(relative, visit_reason, REASON["pre_visit_review"])),
        (start, 8.0, "chart_review", visit_reason),
        (
            after,
            4.0,
            "documentation",
            np.where(relative, visit_reason, REASON["post_visit_documentation"]),
        ),
    ):
        work.touches.add(
            provider[has],
            patient[has],
            time[has],
            work.events(mean, int(has.sum())),
            profile,
            reason[has],
        )
    has = nurse >= 0
    work.touches.add(
        nurse[has],
        patient[has],
        start[has] - 5 * MINUTE,
        work.events(3.0, int(has.sum())),
        "nursing",
        visit_reason[has],
    )
    documented = has & ((rng.random(len(visits)) < 0.5) | relative)
    work.team.add(
        visits[documented],
        work.s_user[nurse[documented]],
        PARTICIPANT,
        start[documented],
        end[documented],
    )
    # The front desk checks the patient in; a scheduler booked the visit.
    front_desk = hospital.departments.index["patient-access"]
    desk = work.on_duty(("registration",), start - 10 * MINUTE, front_desk)
    work.touches.add(
        desk,
        patient,
        start - 10 * MINUTE,
        work.events(2.0, len(visits)),
        "registration",
        REASON["registration"],
    )
    booked = enc.booked[visits]
    in_window = (booked >= 0) & (booked < start)
    scheduler = work.on_duty(
        ("scheduler",), booked[in_window], hospital.departments.index["scheduling"]
    )
    work.touches.add(
        scheduler,
        patient[in_window],
        booked[in_window],
        work.events(2.0, int(in_window.sum())),
        "scheduling",
        REASON["scheduling"],
    )


# --- ancillary services ---------------------------------------------------------------------


def _service(work: WorkContext, role: str, department: str, encounter, time, mean, profile, reason):
    session = work.on_duty((role,), time, work.hospital.departments.index[department])
    work.touches.add(
        session,
        work.encounters.patient[encounter],
        time,
        work.events(mean, len(time)),
        profile,
        reason,
    )
    return session


def _ancillary(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    stay, day = work.stay_day_encounter, work.stay_day
    weekday = (work.hospital.config.start.weekday() + day) % 7

    def within_stay(encounter, time):
        return np.clip(time, enc.start[encounter], enc.end[encounter] - MINUTE)

    # Pharmacists verify each patient's new orders once or twice a day.
    count = 1 + rng.poisson(0.6, size=len(stay))
    row = np.repeat(np.arange(len(stay)), count)
    time = within_stay(stay[row], day[row] * DAY + rng.integers(0, DAY, size=len(row)))
    _service(
        work,
        "pharmacist",
        "pharmacy",
        stay[row],
        time,
        2.0,
        "pharmacy",
        REASON["order_verification"],
    )
    # Morning blood draws, results entered.
    drawn = rng.random(len(stay)) < 0.75
    time = within_stay(
        stay[drawn],
        day[drawn] * DAY + rng.integers(4 * HOUR, int(6.5 * HOUR), size=int(drawn.sum())),
    )
    _service(work, "lab", "laboratory", stay[drawn], time, 2.0, "lab", REASON["lab"])
    imaged = rng.random(len(stay)) < 0.25
    time = within_stay(
        stay[imaged], day[imaged] * DAY + rng.integers(8 * HOUR, 18 * HOUR, size=int(imaged.sum()))
    )
    _service(work, "radiology", "radiology", stay[imaged], time, 3.0, "imaging", REASON["imaging"])
    therapy = (weekday < 5) & (rng.random(len(stay)) < 0.35)
    time = within_stay(
        stay[therapy],
        day[therapy] * DAY + rng.integers(9 * HOUR, 15 * HOUR, size=int(therapy.sum())),
    )
    session = _service(
        work, "therapist", "rehabilitation", stay[therapy], time, 3.0, "therapy", REASON["therapy"]
    )
    documented = (session >= 0) & (rng.random(len(session)) < 0.3)
    work.team.add(
        stay[therapy][documented],
        work.s_user[session[documented]],
        PARTICIPANT,
        time[documented],
        enc.end[stay[therapy][documented]],
    )
    # The emergency department's orders, and a quarter of clinic visits' labs.
    ed = np.flatnonzero(
        (enc.encounter_class == EMERGENCY) & (enc.end > 0) & (enc.start < work.window_end)
    )
    for role, department, share, mean, profile, reason in (
        ("pharmacist", "pharmacy", 0.5, 2.0, "pharmacy", "order_verification"),
        ("lab", "laboratory", 0.6, 2.0, "lab", "lab"),
        ("radiology", "radiology", 0.45, 3.0, "imaging", "imaging"),
    ):
        chosen = ed[rng.random(len(ed)) < share]
        time = work.uniform_time(enc.start[chosen] + 15 * MINUTE, enc.end[chosen])
        _service(work, role, department, chosen, time, mean, profile, REASON[reason])
    clinic = np.flatnonzero(
        (enc.encounter_class == AMBULATORY) & (enc.start >= 0) & (enc.start < work.window_end)
    )
    chosen = clinic[rng.random(len(clinic)) < 0.25]
    _service(
        work,
        "lab",
        "laboratory",
        chosen,
        enc.end[chosen] + rng.integers(0, 2 * HOUR, size=len(chosen)),
        2.0,
        "lab",
        REASON["lab"],
    )


def _outpatient_orders(work: WorkContext) -> None:
    """Work that comes with no encounter in this hospital's record: appointments booked
    for visits after the window, and outpatient draws, imaging and therapy ordered by
    community physicians. Patients come from the whole registry."""
    rng = work.rng
    weight = work.hospital.patients.weight
    on_site = np.isin(work.s_kind, [KIND[k] for k in ("day", "evening", "night")])
    for role, per_session, mean, profile, reason in (
        ("scheduler", 20.0, 2.0, "scheduling", "scheduling"),
        ("lab", 12.0, 2.0, "lab", "lab"),
        ("radiology", 6.0, 3.0, "imaging", "imaging"),
        ("therapist", 5.0, 4.0, "therapy", "therapy"),
    ):
        sessions = np.flatnonzero((work.s_role == ROLE[role]) & on_site & (work.s_start >= 0))
        session = np.repeat(sessions, rng.poisson(per_session, size=len(sessions)))
        patient = rng.choice(len(weight), size=len(session), p=weight / weight.sum())
        time = work.uniform_time(work.s_start[session], work.s_end[session])
        work.touches.add(
            session, patient, time, work.events(mean, len(session)), profile, REASON[reason]
        )


# --- billing, HIM, research, IT -------------------------------------------------------------


def _last_units(work: WorkContext) -> np.ndarray:
    """Encounters that end a visit or stay: every one but a transferred stay's first unit."""
    enc = work.encounters
    index = np.arange(len(enc))
    continued = enc.stay[enc.stay != index]
    return np.setdiff1d(index, continued)


def _office_hours_or_evening(work: WorkContext, day: np.ndarray) -> np.ndarray:
    """Mostly office hours; some work is done by the remote evening coders."""
    rng = work.rng
    evening = rng.random(len(day)) < 0.15
    hour = np.where(evening, rng.uniform(16.0, 23.0, len(day)), rng.uniform(8.5, 16.5, len(day)))
    return day * DAY + (hour * HOUR).astype(np.int64)


def _billing(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    last = _last_units(work)
    cls = enc.encounter_class[last]
    coded = (cls != AMBULATORY) | (rng.random(len(last)) < 0.35)
    last, cls = last[coded], cls[coded]
    median = np.where(cls == INPATIENT, 4.0, 2.0)
    lag = rng.lognormal(np.log(median), 0.7)
    # Denials, appeals and late charges bring coders back a month or more later.
    late = rng.random(len(last)) < 0.08
    lag = np.where(late, rng.uniform(30.0, 75.0, len(last)), lag)
    day = enc.end[last] // DAY + np.ceil(lag).astype(np.int64)
    inside = (day >= 0) & (day < work.days)
    last, day, lag = last[inside], day[inside], lag[inside]
    time = _office_hours_or_evening(work, day)
    reason = np.where(lag >= 30, REASON["billing_long_after_discharge"], REASON["billing"])
    session = work.on_duty(("billing",), time, work.hospital.departments.index["revenue-cycle"])
    touches = 1 + (rng.random(len(last)) < 0.3)
    row = np.repeat(np.arange(len(last)), touches)
    work.touches.add(
        session[row], enc.patient[last][row], time[row] + (np.arange(len(row)) % 2) * rng.integers(5 * MINUTE, 2 * HOUR, size=len(row)),
        work.events(5.0, len(row)), "billing", reason[row],
    )  # fmt: skip


def _him(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    him = work.hospital.departments.index["him"]
    last = _last_units(work)
    stays = last[(enc.encounter_class[last] == INPATIENT) & (rng.random(len(last)) < 0.5)]
    day = enc.end[stays] // DAY + rng.integers(1, 11, size=len(stays))
    inside = (day >= 0) & (day < work.days)
    stays, day = stays[inside], day[inside]
    time = day * DAY + rng.integers(int(8.5 * HOUR), int(16.5 * HOUR), size=len(day))
    session = work.on_duty(("him",), time, him)
    work.touches.add(
        session,
        enc.patient[stays],
        time,
        work.events(4.0, len(stays)),
        "him",
        REASON["him_chart_completion"],
    )
    # Release of information: copies for patients, insurers and lawyers, any patient.
    sessions = np.flatnonzero((work.s_role == ROLE["him"]) & (work.s_start >= 0))
    requests = rng.poisson(1.5, size=len(sessions))
    session = np.repeat(sessions, requests)
    weight = work.hospital.patients.weight
    patient = rng.choice(len(weight), size=len(session), p=weight / weight.sum())
    time = work.uniform_time(work.s_start[session], work.s_end[session])
    work.touches.add(
        session,
        patient,
        time,
        work.events(4.0, len(session)),
        "release",
        REASON["him_release_of_information"],
    )


def _research(work: WorkContext) -> None:
    """Queries over an approved protocol's cohort: the patients of one department."""
    rng, enc = work.rng, work.encounters
    staff = work.staff
    clinical = work.hospital.departments.clinical
    researchers = np.flatnonzero(staff.role == ROLE["researcher"])
    protocol = np.full(len(staff), -1, dtype=np.int64)
    protocol[researchers] = rng.choice(clinical, size=len(researchers))
    order = np.lexsort((enc.patient, enc.department))
    cohort_department, cohort_patient = enc.department[order], enc.patient[order]
    sessions = np.flatnonzero(
        (work.s_role == ROLE["researcher"]) & (rng.random(len(work.s_role)) < 0.35)
    )
    size = 10 + rng.poisson(30.0, size=len(sessions))
    session = np.repeat(sessions, size)
    department = protocol[work.s_user[session]]
    position = _pick_in_groups(cohort_department, department, rng.random(len(session)))
    has = position >= 0
    patient = cohort_patient[position.clip(0)]
    time = work.uniform_time(work.s_start[session], work.s_end[session])
    work.touches.add(
        session[has], patient[has], time[has], work.events(1.0, int(has.sum())), "research",
        REASON["research_protocol"], application=REPORTING,
    )  # fmt: skip


def _it_support(work: WorkContext) -> None:
    rng, enc = work.rng, work.encounters
    sessions = np.flatnonzero((work.s_role == ROLE["it"]) & (rng.random(len(work.s_role)) < 0.3))
    tickets = 1 + rng.poisson(1.0, size=len(sessions))
    session = np.repeat(sessions, tickets)
    recent = np.flatnonzero((enc.start >= 0) & (enc.start < work.window_end))
    if len(recent) == 0:
        return
    patient = enc.patient[recent[rng.integers(0, len(recent), size=len(session))]]
    time = work.uniform_time(work.s_start[session], work.s_end[session])
    work.touches.add(
        session, patient, time, work.events(2.0, len(session)), "it", REASON["it_support"]
    )


# --- remote work ----------------------------------------------------------------------------


def _after_hours_charting(work: WorkContext) -> None:
    """Physicians finish notes from home in the evening (Arndt 2017: "pajama time")."""
    rng = work.rng
    weekday = (work.hospital.config.start.weekday() + work.s_day) % 7
    physicians = np.isin(
        work.staff.schedule[work.s_user], [SCHEDULE_INDEX["physician"], SCHEDULE_INDEX["clinic"]]
    )
    day_sessions = np.flatnonzero(
        physicians & (work.s_role == ROLE["attending"]) & (work.s_kind == KIND["day"])
        & (weekday < 5) & (work.s_start >= 0) & (rng.random(len(weekday)) < 0.25)
    )  # fmt: skip
    if len(day_sessions) == 0:
        return
    user = work.s_user[day_sessions]
    start = work.s_day[day_sessions] * DAY + rng.integers(
        int(19.5 * HOUR), int(22.5 * HOUR), size=len(user)
    )
    end = start + rng.integers(20 * MINUTE, 70 * MINUTE, size=len(user))
    remote = work.sessions.add(
        user, start, end, -1, KIND["after_hours_charting"], work.workstations.home_offset + user
    )
    remote_of = np.full(work.sessions.count, -1, dtype=np.int64)
    remote_of[day_sessions] = remote
    touched = work.touches.column("session")
    patient = work.touches.column("patient")
    reason = work.touches.column("reason")
    own_work = np.isin(
        reason,
        [
            REASON[r]
            for r in ("worklist", "clinic_visit", "post_visit_documentation", "pre_visit_review")
        ],
    )
    chosen = np.flatnonzero(
        own_work
        & (remote_of[touched.clip(0, len(remote_of) - 1)] >= 0)
        & (rng.random(len(touched)) < 0.3)
    )
    session = remote_of[touched[chosen]]
    time = work.uniform_time(
        start[np.searchsorted(remote, session)], end[np.searchsorted(remote, session)]
    )
    work.touches.add(
        session,
        patient[chosen],
        time,
        work.events(3.0, len(chosen)),
        "documentation",
        REASON["after_hours_charting"],
    )
    work._load_sessions()


def _on_call(work: WorkContext) -> None:
    """Night calls about inpatients, answered by the department's attending from home."""
    rng, enc = work.rng, work.encounters
    attendings = _candidates(work, "attending")
    users, starts, patients = [], [], []
    for day in range(work.days):
        for department in work.hospital.departments.inpatient:
            pool = attendings.get(int(department))
            if pool is None or len(pool) == 0 or rng.random() >= 0.35:
                continue
            time = day * DAY + int(rng.integers(22 * HOUR, 27 * HOUR))
            if time >= work.window_end:
                continue
            slot = (time - _SHIFT_ORIGIN) // _SHIFT
            census = np.flatnonzero(
                (work.census_slot == slot) & (work.census_department == department)
            )
            if len(census) == 0:
                continue
            users.append(int(pool[rng.integers(0, len(pool))]))
            starts.append(time)
            patients.append(
                int(enc.patient[work.census_encounter[census[rng.integers(0, len(census))]]])
            )
    if not users:
        return
    user = np.array(users)
    start = np.array(starts)
    end = start + rng.integers(10 * MINUTE, 40 * MINUTE, size=len(user))
    session = work.sessions.add(
        user, start, end, -1, KIND["on_call"], work.workstations.home_offset + user
    )
    work.touches.add(
        session,
        np.array(patients),
        start + MINUTE,
        work.events(4.0, len(user)),
        "chart_review",
        REASON["on_call"],
    )
    work._load_sessions()


def _history_attendings(work: WorkContext) -> None:
    """Visits before the window (no sessions were simulated then) get the attending the
    record would show: one of the department's attendings, on the care team."""
    rng, enc = work.rng, work.encounters
    past = np.flatnonzero(
        (enc.attending < 0) & (enc.encounter_class != INPATIENT) & (enc.start < 0)
    )
    attendings = _candidates(work, "attending")
    everyone = np.flatnonzero(work.staff.role == ROLE["attending"])
    for department in np.unique(enc.department[past]):
        at = past[enc.department[past] == department]
        pool = attendings.get(int(department), everyone)
        enc.attending[at] = pool[rng.integers(0, len(pool), size=len(at))]
    work.team.add(past, enc.attending[past], ATTENDING, enc.start[past], enc.end[past])
