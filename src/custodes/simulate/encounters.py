"""Visits and stays: emergency visits, admissions with transfers, clinic visits,
follow-ups and referrals.

Encounters start ``history_days`` before the window, so the first simulated days
already hold patients mid-stay, discharges waiting to be coded and follow-ups booked
weeks ago. An admission with a transfer is two inpatient encounters (one per unit, the
second ``partOf`` the first), because the context model gives an encounter one
department: the care team changes with the unit.

Who treats each encounter (attending, nurses, consultants) is decided later by the
workflows, from who is on duty; the clinic visits of a clinician's own relatives are
booked here with that clinician as the intended provider.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from custodes.simulate.config import ROLE_CODES
from custodes.simulate.hospital import Hospital
from custodes.simulate.shifts import DAY, HOUR, KIND, MINUTE, Sessions

CLASSES: tuple[str, ...] = ("emergency", "inpatient", "ambulatory")
EMERGENCY, INPATIENT, AMBULATORY = range(3)
#: FHIR R4 ``Encounter.class`` codes (v3 ActEncounterCode) for the classes above.
CLASS_CODES: tuple[str, ...] = ("EMER", "IMP", "AMB")

#: Emergency arrivals by hour of day (NHAMCS: a trough at 04-06, a plateau 10-20).
_ARRIVALS_BY_HOUR = np.array(
    [2.2, 1.8, 1.5, 1.3, 1.2, 1.3, 1.8, 2.8, 4.0, 5.0, 5.6, 5.8,
     5.8, 5.7, 5.6, 5.5, 5.4, 5.4, 5.3, 5.0, 4.5, 3.8, 3.2, 2.6]
)  # fmt: skip


@dataclass(slots=True)
class Encounters:
    """Every encounter, sorted by start; ``stay`` links the units of one admission."""

    ids: list[str]
    patient: np.ndarray
    department: np.ndarray
    start: np.ndarray  # ms from the simulation start
    end: np.ndarray
    encounter_class: np.ndarray
    stay: np.ndarray  # index of the first unit of the admission; itself when first
    provider: np.ndarray  # intended provider (a relative's own clinician), else -1
    booked: np.ndarray  # when a clinic visit was booked (ms), else -1
    attending: np.ndarray  # filled by the workflows; -1 when nobody was on duty

    def __len__(self) -> int:
        return len(self.ids)


class _EncounterBuilder:
    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {
            k: []
            for k in ("patient", "department", "start", "end", "cls", "stay", "provider", "booked")
        }
        self.count = 0

    def add(self, patient, department, start, end, cls, stay=None, provider=-1, booked=-1):
        patient = np.asarray(patient, dtype=np.int64)
        size = len(patient)
        first = self.count
        index = np.arange(first, first + size)
        values = {
            "patient": patient, "department": department, "start": start, "end": end,
            "cls": cls, "stay": index if stay is None else stay, "provider": provider,
            "booked": booked,
        }  # fmt: skip
        for key, value in values.items():
            self.parts[key].append(np.broadcast_to(np.asarray(value, dtype=np.int64), size).copy())
        self.count += size
        return index

    def finish(self) -> Encounters:
        cat = {k: np.concatenate(v) for k, v in self.parts.items()}
        order = np.lexsort((cat["patient"], cat["start"]))
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        cat = {k: v[order] for k, v in cat.items()}
        cat["stay"] = rank[cat["stay"]]
        size = len(order)
        return Encounters(
            ids=[f"e{i:07d}" for i in range(size)],
            patient=cat["patient"], department=cat["department"], start=cat["start"],
            end=cat["end"], encounter_class=cat["cls"], stay=cat["stay"],
            provider=cat["provider"], booked=cat["booked"],
            attending=np.full(size, -1, dtype=np.int64),
        )  # fmt: skip


def build_encounters(
    hospital: Hospital, sessions: Sessions, rng: np.random.Generator
) -> Encounters:
    """Generate every encounter from ``history_days`` before the window to its end."""
    config, volumes = hospital.config, hospital.config.volumes
    departments = hospital.departments
    first_day, last_day = -volumes.history_days, config.days
    days = np.arange(first_day, last_day)
    start_weekday = config.start.weekday()
    weekday = (start_weekday + days) % 7
    scale = config.staff / 1000.0
    builder = _EncounterBuilder()
    pools = _PatientPools(hospital)

    # Emergency visits: a little busier on Mondays, quieter at weekends.
    ed_factor = np.where(weekday == 0, 1.1, np.where(weekday >= 5, 0.95, 1.0))
    ed_counts = rng.poisson(volumes.emergency_visits * scale * ed_factor)
    ed_day = np.repeat(days, ed_counts)
    hour_p = _ARRIVALS_BY_HOUR / _ARRIVALS_BY_HOUR.sum()
    arrival = (ed_day * 24 + rng.choice(24, size=len(ed_day), p=hour_p)) * HOUR + rng.integers(
        0, HOUR, size=len(ed_day)
    )
    ed_length = (rng.lognormal(np.log(3.5), 0.5, size=len(ed_day)) * HOUR).astype(np.int64)
    ed_patient = pools.general(rng, len(ed_day))
    builder.add(ed_patient, departments.emergency, arrival, arrival + ed_length, EMERGENCY)
    admitted = rng.random(len(ed_day)) < volumes.emergency_admitted

    # Admissions: from the ED (at the end of the visit), and elective (weekday mornings).
    from_ed = int(admitted.sum())
    elective_per_day = max(0.0, volumes.admissions * scale - from_ed / len(days)) * 7 / 5
    elective_counts = rng.poisson(np.where(weekday < 5, elective_per_day, 0.0))
    elective_day = np.repeat(days, elective_counts)
    elective_start = (elective_day * 24 + rng.uniform(6.0, 11.0, size=len(elective_day))) * HOUR
    beds = np.array([departments.specs[d].beds_weight for d in departments.inpatient], dtype=float)
    elective_department = rng.choice(
        departments.inpatient, size=len(elective_day), p=beds / beds.sum()
    )
    elective_patient = pools.for_departments(rng, elective_department)
    ed_department = pools.department_after_emergency(rng, ed_patient[admitted])
    stay_patient = np.concatenate([ed_patient[admitted], elective_patient])
    stay_start = np.concatenate(
        [arrival[admitted] + ed_length[admitted], elective_start.astype(np.int64)]
    )
    stay_department = np.concatenate([ed_department, elective_department])
    discharge_department = _admit(builder, hospital, rng, stay_patient, stay_start, stay_department)

    # Clinic visits on weekdays, 20-minute slots 08:00-16:40, booked days to weeks ahead.
    clinic = departments.clinic
    clinic_weight = np.array([departments.specs[d].clinic_weight for d in clinic], dtype=float)
    clinic_counts = rng.poisson(np.where(weekday < 5, volumes.clinic_visits * scale * 7 / 5, 0.0))
    visit_day = np.repeat(days, clinic_counts)
    visit_department = rng.choice(
        clinic, size=len(visit_day), p=clinic_weight / clinic_weight.sum()
    )
    visit_start = visit_day * DAY + (
        8 * HOUR + rng.integers(0, 27, size=len(visit_day)) * 20 * MINUTE
    )
    visit_patient = pools.for_departments(rng, visit_department)
    lead = np.minimum(rng.exponential(14.0, size=len(visit_day)), 90).astype(np.int64) + 1
    booked = _office_time(rng, visit_day - lead, start_weekday)
    builder.add(
        visit_patient,
        visit_department,
        visit_start,
        visit_start + 20 * MINUTE,
        AMBULATORY,
        booked=booked,
    )

    # Follow-ups after discharge, in the discharging department's clinic or primary care.
    stay_end, stay_dept, stay_pat = discharge_department
    follows = rng.random(len(stay_end)) < volumes.follow_up_share
    follow_day = stay_end[follows] // DAY + rng.integers(7, 22, size=int(follows.sum()))
    follow_department = np.where(
        np.isin(stay_dept[follows], clinic), stay_dept[follows], _primary_clinic(hospital)
    )
    _add_visits(
        builder, rng, stay_pat[follows], follow_department, follow_day,
        stay_end[follows] // DAY, last_day, start_weekday,
    )  # fmt: skip
    # Referrals from the ED to a specialty clinic.
    refers = ~admitted & (rng.random(len(ed_day)) < volumes.referral_share)
    refer_day = ed_day[refers] + rng.integers(3, 31, size=int(refers.sum()))
    refer_department = rng.choice(
        clinic, size=int(refers.sum()), p=clinic_weight / clinic_weight.sum()
    )
    _add_visits(
        builder, rng, ed_patient[refers], refer_department, refer_day,
        ed_day[refers] + 1, last_day, start_weekday,
    )  # fmt: skip
    _relatives_of_clinicians(builder, hospital, sessions, rng)
    return builder.finish()


def _weekday(start_weekday: int, day: np.ndarray) -> np.ndarray:
    """The next weekday on or after each day (Saturday and Sunday move to Monday)."""
    weekday = (start_weekday + day) % 7
    return day + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))


def _office_time(rng: np.random.Generator, day: np.ndarray, start_weekday: int) -> np.ndarray:
    """A moment in office hours (09-16) of each day, moved off weekends."""
    day = _weekday(start_weekday, day)
    return day * DAY + (9 * HOUR + rng.integers(0, 7 * HOUR, size=len(day)))


def _primary_clinic(hospital: Hospital) -> int:
    index = hospital.departments.index
    return index.get("primary-care", int(hospital.departments.clinic[0]))


def _add_visits(builder, rng, patient, department, day, booked_day, last_day, start_weekday):
    """Clinic visits on the given days (moved to the next weekday), within the window."""
    day = _weekday(start_weekday, day)
    keep = day < last_day
    start = day[keep] * DAY + 8 * HOUR + rng.integers(0, 27, size=int(keep.sum())) * 20 * MINUTE
    builder.add(
        patient[keep], department[keep], start, start + 20 * MINUTE, AMBULATORY,
        booked=_office_time(rng, booked_day[keep], start_weekday),
    )  # fmt: skip


def _admit(builder, hospital, rng, patient, start, department):
    """Inpatient stays; a quarter with a transfer between units. Returns the discharges."""
    volumes = hospital.config.volumes
    departments = hospital.departments
    size = len(patient)
    length_days = rng.lognormal(np.log(volumes.stay_median_days), volumes.stay_sigma, size=size)
    length_days = np.clip(length_days, 0.4, 45.0)
    # Discharges happen in the day (10:00-16:00) of the day the stay ends.
    end_day = (start + (length_days * DAY).astype(np.int64)) // DAY
    end = end_day * DAY + rng.integers(10 * HOUR, 16 * HOUR, size=size)
    end = np.where(
        end <= start + 4 * HOUR, start + rng.integers(6 * HOUR, 20 * HOUR, size=size), end
    )
    icu = departments.index.get("icu", -1)
    transfer = (rng.random(size) < volumes.transfer_share) & (icu >= 0) & (length_days >= 1.5)
    transfer &= department != icu
    # A transfer goes to the ICU and back, or the ICU comes first: either way two units.
    icu_first = rng.random(size) < 0.5
    split = start + ((end - start) * rng.uniform(0.25, 0.6, size=size)).astype(np.int64)
    first_department = np.where(transfer & icu_first, icu, department)
    second_department = np.where(icu_first, department, icu)
    first_end = np.where(transfer, split, end)
    first = builder.add(patient, first_department, start, first_end, INPATIENT)
    builder.add(
        patient[transfer], second_department[transfer], split[transfer], end[transfer],
        INPATIENT, stay=first[transfer],
    )  # fmt: skip
    last_department = np.where(transfer, second_department, first_department)
    return end, last_department, patient


class _PatientPools:
    """Who comes to which department: sensitive clinics see their category's patients."""

    def __init__(self, hospital: Hospital) -> None:
        self.hospital = hospital
        patients = hospital.patients
        self.age = -patients.birth_day / 365
        self.weight = patients.weight

    def _draw(self, rng, mask, size) -> np.ndarray:
        candidates = np.flatnonzero(mask)
        if size == 0:
            return np.zeros(0, dtype=np.int64)
        if len(candidates) == 0:
            return self.general(rng, size)
        w = self.weight[candidates]
        return candidates[rng.choice(len(candidates), size=size, p=w / w.sum())]

    def general(self, rng, size) -> np.ndarray:
        return self._draw(rng, np.ones(len(self.weight), dtype=bool), size)

    def for_departments(self, rng, department: np.ndarray) -> np.ndarray:
        """A patient for each visit or admission, from the pool its department draws on."""
        hospital = self.hospital
        patients = hospital.patients
        result = np.empty(len(department), dtype=np.int64)
        for d in np.unique(department):
            at = np.flatnonzero(department == d)
            spec = hospital.departments.specs[d]
            adult = self.age >= 18
            if spec.sensitive_category is not None:
                category = patients.has_category(spec.sensitive_category)
                # Most of a sensitive clinic's visits are its own patients' (70%).
                own = rng.random(len(at)) < 0.7
                result[at[own]] = self._draw(rng, category, int(own.sum()))
                result[at[~own]] = self._draw(rng, adult, int((~own).sum()))
            elif spec.code == "pediatrics":
                result[at] = self._draw(rng, self.age < 18, len(at))
            elif spec.code == "obstetrics":
                result[at] = self._draw(
                    rng, patients.female & (self.age >= 16) & (self.age <= 45), len(at)
                )
            else:
                result[at] = self._draw(rng, adult, len(at))
        return result

    def department_after_emergency(self, rng, patient: np.ndarray) -> np.ndarray:
        """The unit an ED patient is admitted to: children to pediatrics, half of the
        mental-health patients to psychiatry, the rest by bed share of the adult units."""
        departments = self.hospital.departments
        adult_units = [
            d for d in departments.inpatient
            if departments.specs[d].code not in ("pediatrics", "obstetrics", "psychiatry")
        ]  # fmt: skip
        beds = np.array([departments.specs[d].beds_weight for d in adult_units], dtype=float)
        result = rng.choice(adult_units, size=len(patient), p=beds / beds.sum())
        child = self.age[patient] < 18
        if "pediatrics" in departments.index:
            result[child] = departments.index["pediatrics"]
        if "psychiatry" in departments.index:
            mental = self.hospital.patients.has_category("mental-health")[patient]
            result[mental & ~child & (rng.random(len(patient)) < 0.5)] = departments.index[
                "psychiatry"
            ]
        return result


def _relatives_of_clinicians(
    builder: _EncounterBuilder, hospital: Hospital, sessions: Sessions, rng: np.random.Generator
) -> None:
    """Book some relatives of clinicians into their relative's own clinic.

    A clinician who treats a family member is a policy question, not a breach: the
    clinician is on the care team and the access is legitimate, but a detector that
    flags every access to a relative will flag it.
    """
    staff, relations = hospital.staff, hospital.relations
    clinical_roles = [ROLE_CODES.index("attending"), ROLE_CODES.index("nurse")]
    has_clinic = np.isin(staff.department, hospital.departments.clinic)
    candidates = np.flatnonzero(
        (relations.relative_staff >= 0)
        & np.isin(staff.role[relations.relative_staff.clip(0)], clinical_roles)
        & has_clinic[relations.relative_staff.clip(0)]
    )
    wanted = max(1, hospital.config.staff // 100)
    user = sessions.column("user")
    start = sessions.column("start")
    kind = sessions.column("kind")
    booked = 0
    # Candidates in random order until enough have a day at work in the window.
    for r in rng.permutation(candidates).tolist():
        if booked == wanted:
            break
        clinician = int(relations.relative_staff[r])
        days = np.flatnonzero((user == clinician) & (kind == KIND["day"]) & (start >= 0))
        if len(days) == 0:
            continue
        booked += 1
        session = int(days[rng.integers(0, len(days))])
        visit = int(start[session]) + int(rng.integers(1, 6)) * HOUR
        builder.add(
            [int(relations.patient[r])], int(staff.department[clinician]), visit,
            visit + 20 * MINUTE, AMBULATORY, provider=clinician, booked=visit - 7 * DAY,
        )  # fmt: skip
