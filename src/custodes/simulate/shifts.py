"""Who works when, and where: schedules, EHR sessions, workstations, who is on duty.

A *session* is one sign-in: a shift at a hospital workstation, or a remote session from
home (after-hours charting, a night on call, a remote coder's evening). Every access
event belongs to a session, which gives it its workstation, IP address and session id,
and every session writes a login (and usually a logout) to the sign-in log.

Times are milliseconds from the simulation start (UTC midnight of day 0). The hospital
keeps its clocks on UTC, so an hour here is an hour of the day in the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from custodes.simulate.config import ROLE_CODES
from custodes.simulate.hospital import SCHEDULE_INDEX, Hospital

HOUR = 3_600_000
MINUTE = 60_000
DAY = 24 * HOUR

#: What a session is; the index is what ``Sessions.kind`` holds.
SESSION_KINDS: tuple[str, ...] = (
    "day",  # a day shift (or business hours) on site
    "evening",
    "night",
    "remote_evening",  # a remote worker's regular evening
    "after_hours_charting",  # a physician finishing notes from home
    "on_call",  # a night call answered from home
    "weekend_rounds",
    "extra",  # a session added by a scenario (second workstation, intruder)
)
KIND = {name: i for i, name in enumerate(SESSION_KINDS)}


@dataclass(slots=True)
class Workstations:
    """Devices: hospital workstations by department, then one home device per staff member."""

    names: list[str]
    ips: list[str]
    department: np.ndarray  # -1 for a device outside the hospital
    by_department: list[np.ndarray]
    home_offset: int  # the home device of staff i is ``home_offset + i``

    def add(self, name: str, ip: str) -> int:
        """A device the hospital has never seen (an intruder's laptop)."""
        self.names.append(name)
        self.ips.append(ip)
        self.department = np.append(self.department, -1)
        return len(self.names) - 1


def build_workstations(hospital: Hospital, rng: np.random.Generator) -> Workstations:
    """About one workstation for every two staff members of a unit, at least four."""
    names: list[str] = []
    ips: list[str] = []
    department: list[int] = []
    by_department: list[np.ndarray] = []
    home_counts = np.bincount(hospital.staff.department, minlength=len(hospital.departments))
    for d, spec in enumerate(hospital.departments.specs):
        count = max(4, int(home_counts[d]) // 2 + 2)
        first = len(names)
        short = spec.code.upper().replace("-", "")[:8]
        for k in range(count):
            names.append(f"WS-{short}-{k + 1:03d}")
            ips.append(f"10.{20 + d}.{k // 200}.{k % 200 + 20}")
            department.append(d)
        by_department.append(np.arange(first, len(names)))
    home_offset = len(names)
    # Home devices: a laptop name as IT would enrol it; the address the VPN assigns.
    tags = rng.integers(0, 16**6, size=len(hospital.staff))
    for i, tag in enumerate(tags):
        names.append(f"LT-{int(tag):06X}")
        ips.append(f"172.16.{i // 250}.{i % 250 + 2}")
        department.append(-1)
    return Workstations(names, ips, np.array(department), by_department, home_offset)


@dataclass(slots=True)
class Sessions:
    """Sign-in sessions, appended to as workflows and scenarios add them."""

    user: list[np.ndarray] = field(default_factory=list)
    start: list[np.ndarray] = field(default_factory=list)
    end: list[np.ndarray] = field(default_factory=list)
    department: list[np.ndarray] = field(default_factory=list)
    kind: list[np.ndarray] = field(default_factory=list)
    workstation: list[np.ndarray] = field(default_factory=list)
    failures: list[np.ndarray] = field(default_factory=list)  # failed logins before success
    count: int = 0

    def add(self, user, start, end, department, kind, workstation, failures=0) -> np.ndarray:
        """Append sessions; returns their indices."""
        user = np.asarray(user, dtype=np.int64).reshape(-1)
        size = len(user)
        for name, values in (
            ("user", user),
            ("start", start),
            ("end", end),
            ("department", department),
            ("kind", kind),
            ("workstation", workstation),
            ("failures", failures),
        ):
            column = np.broadcast_to(np.asarray(values, dtype=np.int64), size).copy()
            getattr(self, name).append(column)
        first = self.count
        self.count += size
        return np.arange(first, self.count)

    def column(self, name: str) -> np.ndarray:
        """One column over every session added so far."""
        parts = getattr(self, name)
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def set_department(self, indices: np.ndarray, department: np.ndarray) -> None:
        """Move sessions to another unit (a float nurse's assignment for the shift)."""
        merged = self.column("department")
        merged[indices] = department
        self.department = [merged]


def _shift_windows(
    hospital: Hospital, rng: np.random.Generator, first_day: int, days: int
) -> tuple[np.ndarray, ...]:
    """(staff, day, start hour, length hours, kind, remote) of every scheduled shift."""
    staff = hospital.staff
    n = len(staff)
    day = np.arange(first_day, first_day + days)
    weekday = (hospital.config.start.weekday() + day) % 7
    weekend = weekday >= 5
    schedule, variant = staff.schedule, staff.variant
    p = np.zeros((n, days))
    start = np.zeros((n, days))
    length = np.zeros((n, days))
    kind = np.zeros((n, days), dtype=np.int64)
    remote = np.zeros((n, days), dtype=bool)

    def rows(name: str, which: np.ndarray | None = None) -> np.ndarray:
        mask = schedule == SCHEDULE_INDEX[name]
        return mask if which is None else mask & which

    def assign(mask, probability, hour, hours, what, away=False):
        mask = np.broadcast_to(mask, (n, days))

        def at(value):
            return value[mask] if isinstance(value, np.ndarray) else value

        p[mask] = probability
        start[mask] = at(hour)
        length[mask] = hours
        kind[mask] = at(what)
        remote[mask] = away

    wk = np.broadcast_to(weekend, (n, days))
    col = np.ones((n, days), dtype=bool)
    # 12-hour nurses: three shifts a week, weekends alike; 30 minutes of report overlap.
    nurses = rows("nurse")[:, None] & col
    night = (variant == 1)[:, None]
    assign(nurses & ~night, 3 / 7, 7.0, 12.5, KIND["day"])
    assign(nurses & night, 3 / 7, 19.0, 12.5, KIND["night"])
    # Inpatient attendings: weekdays, and a third of them round on a weekend morning.
    physicians = rows("physician")[:, None] & col
    assign(physicians & ~wk, 0.9, 7.0, 10.5, KIND["day"])
    assign(physicians & wk, 0.3, 8.0, 5.0, KIND["weekend_rounds"])
    # Emergency physicians: 8-hour shifts, rotating through day, evening and night.
    ed = rows("emergency_physician")[:, None] & col
    slot = rng.integers(0, 3, size=(n, days))
    shift_kinds = np.array([KIND["day"], KIND["evening"], KIND["night"]])
    assign(ed, 0.5, 7.0 + 8.0 * slot, 8.5, shift_kinds[slot])
    # Residents: six days a week; the night-float block works five nights.
    residents = rows("resident")[:, None] & col
    assign(residents & ~night, 6 / 7, 6.0, 12.0, KIND["day"])
    assign(residents & night, 5 / 7, 19.0, 12.5, KIND["night"])
    # Clinics, therapy, business hours: weekdays.
    for name, hour, hours in (("clinic", 8.0, 9.0), ("therapy", 7.5, 8.5), ("business", 8.0, 9.0)):
        members = rows(name)[:, None] & col
        assign(members & ~wk, 0.92, hour, hours, KIND["day"])
    assign(rows("therapy")[:, None] & wk, 0.15, 8.0, 6.0, KIND["day"])
    # Remote evening workers (coders, analysts): their own hours, from home.
    evening_remote = rows("business")[:, None] & (variant == 1)[:, None]
    assign(evening_remote & ~wk, 0.85, 15.0, 8.5, KIND["remote_evening"], away=True)
    assign(evening_remote & wk, 0.0, 15.0, 8.5, KIND["remote_evening"], away=True)
    # Around the clock: fixed day, evening or night 8-hour shifts, five in seven days.
    for v, hour, what in ((0, 7.0, "day"), (1, 15.0, "evening"), (2, 23.0, "night")):
        members = rows("around_the_clock")[:, None] & (variant == v)[:, None]
        assign(members, 5 / 7, hour, 8.5, KIND[what])
        desk = rows("registration")[:, None] & (variant == v)[:, None]
        assign(desk, 5 / 7, hour, 8.5, KIND[what])
    front = rows("registration")[:, None] & (variant == 3)[:, None]
    assign(front & ~wk, 0.92, 7.5, 8.5, KIND["day"])
    works = rng.random((n, days)) < p
    # Clock-in jitter: a quarter hour for shift workers, more for office hours.
    jitter = rng.normal(0.0, 0.25, size=(n, days))
    office = np.isin(schedule, [SCHEDULE_INDEX[s] for s in ("physician", "clinic", "business")])
    jitter[office] *= 3.0
    who, when = np.nonzero(works)
    start_ms = ((day[when] * 24 + start[who, when] + jitter[who, when]) * HOUR).astype(np.int64)
    length_ms = (length[who, when] * HOUR).astype(np.int64)
    return who, day[when], start_ms, length_ms, kind[who, when], remote[who, when]


def build_shift_sessions(
    hospital: Hospital, workstations: Workstations, sessions: Sessions, rng: np.random.Generator
) -> np.ndarray:
    """Add every scheduled shift as a session; returns their indices.

    Shifts start from the day before the window, so the first night is staffed; staff
    are not scheduled past their termination day.
    """
    config = hospital.config
    who, day, start, length, kind, remote = _shift_windows(hospital, rng, -1, config.days + 1)
    employed = hospital.staff.termination_day[who] > day
    who, day, start, length, kind, remote = (
        a[employed] for a in (who, day, start, length, kind, remote)
    )
    staff = hospital.staff
    department = staff.department[who].copy()
    # ED registration desks sit in the emergency department.
    registration = ROLE_CODES.index("registration")
    desk = (staff.role[who] == registration) & (staff.variant[who] < 3)
    department[desk] = hospital.departments.emergency
    workstation = pick_workstation(workstations, department, rng)
    home = workstations.home_offset + who
    workstation = np.where(remote, home, workstation)
    return sessions.add(who, start, start + length, department, kind, workstation)


def pick_workstation(
    workstations: Workstations, department: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """A random workstation of each given department."""
    department = np.asarray(department)
    sizes = np.array([len(w) for w in workstations.by_department])
    firsts = np.array([w[0] for w in workstations.by_department])
    return firsts[department] + (rng.random(len(department)) * sizes[department]).astype(np.int64)


class OnDuty:
    """Answers "which session of this group is on duty at this time?" in bulk.

    Each candidate session is expanded into the hours it covers; a query picks uniformly
    among the sessions covering its hour (the touch time is then kept inside the
    chosen session). Groups are any integer the caller chooses (a department, a role).
    """

    def __init__(
        self, session_index: np.ndarray, group: np.ndarray, start: np.ndarray, end: np.ndarray
    ):
        first = start // HOUR
        last = (end - 1) // HOUR
        hours = (last - first + 1).clip(min=1)
        rows = np.repeat(np.arange(len(session_index)), hours)
        hour = first[rows] + (np.arange(len(rows)) - np.repeat(np.cumsum(hours) - hours, hours))
        self._span = int(hour.max() - hour.min() + 2) if len(hour) else 1
        self._base = int(hour.min()) if len(hour) else 0
        key = group[rows].astype(np.int64) * self._span + (hour - self._base)
        order = np.argsort(key, kind="stable")
        self._keys = key[order]
        self._sessions = session_index[rows][order]

    def pick(self, group: np.ndarray, time: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The session picked for each (group, time); -1 where nobody is on duty."""
        hour = np.asarray(time) // HOUR - self._base
        inside = (hour >= 0) & (hour < self._span)
        key = np.asarray(group, dtype=np.int64) * self._span + hour.clip(0, self._span - 1)
        left = np.searchsorted(self._keys, key, side="left")
        right = np.searchsorted(self._keys, key, side="right")
        count = right - left
        found = inside & (count > 0)
        pick = left + (np.asarray(u) * count).astype(np.int64)
        pick = np.minimum(pick, len(self._sessions) - 1)
        return np.where(found, self._sessions[pick.clip(0)] if len(self._sessions) else -1, -1)
