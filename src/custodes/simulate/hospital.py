"""The hospital's people and places: departments, staff, patients, households, relations.

Everything is held as NumPy columns indexed by position (staff ``i`` is ``staff_ids[i]``),
so later stages join by integer index, never by string. Ids are short and stable:
``s00042`` for staff (the FHIR Practitioner id and the user id of the access log),
``p000042`` for patients, ``dept-medicine`` for departments.

The town is a grid of streets, ``households_per_street`` households to a street, house
numbers two apart: neighbours are households on the same street within three doors.
People are generated household by household, so a household shares an address and
(mostly) a surname; staff join patient households, have relatives who are patients at
other addresses, and are patients themselves, at the rates in ``Population``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from custodes.simulate.config import ROLE_CODES, ROLES, DepartmentSpec, SimulationConfig
from custodes.simulate.names import (
    FEMALE_NAMES,
    MALE_NAMES,
    STREET_SUFFIXES,
    STREETS,
    SURNAMES,
    TOWNS,
)

#: Schedule families (see ``shifts``): the index is what ``Staff.schedule`` holds.
SCHEDULES: tuple[str, ...] = (
    "nurse",  # 12-hour day or night, three a week, weekends alike
    "physician",  # inpatient attending: weekdays, some weekend rounds, on call from home
    "emergency_physician",  # 8-hour rotating day, evening, night
    "resident",  # six days a week; some on a night-float block
    "clinic",  # outpatient: weekdays 08-17
    "around_the_clock",  # pharmacy, laboratory, radiology: fixed 8-hour day, evening, night
    "registration",  # ED desk around the clock, or clinic front desk in business hours
    "therapy",  # weekdays, some weekends
    "business",  # weekdays 08-17; some remote evening workers
)
SCHEDULE_INDEX = {name: i for i, name in enumerate(SCHEDULES)}

#: Relationship codes (HL7 v3 RoleCode) the registry records.
RELATIONSHIP_CODES: tuple[str, ...] = ("SPS", "CHILD", "PRN", "SIB")
SPOUSE, CHILD, PARENT, SIBLING = range(4)
#: Sensitive categories as bits of ``Patients.sensitive``, in this order.
SENSITIVE_CATEGORIES: tuple[str, ...] = ("hiv", "substance-use", "mental-health", "reproductive")
#: The v3 ActCode (``meta.security``) written for each category.
SENSITIVE_SECURITY_CODES: tuple[str, ...] = ("HIV", "ETH", "PSY", "SEX")


@dataclass(slots=True)
class Departments:
    """The departments, with index lists by kind."""

    specs: tuple[DepartmentSpec, ...]
    ids: list[str]
    index: dict[str, int]
    inpatient: np.ndarray  # departments with beds
    clinic: np.ndarray  # departments with outpatient clinics
    clinical: np.ndarray  # departments that employ physicians and nurses
    emergency: int

    @classmethod
    def build(cls, specs: tuple[DepartmentSpec, ...]) -> Departments:
        index = {d.code: i for i, d in enumerate(specs)}
        kinds = [d.kind for d in specs]
        if kinds.count("emergency") != 1:
            raise ValueError("a hospital needs exactly one emergency department")
        return cls(
            specs=specs,
            ids=[f"dept-{d.code}" for d in specs],
            index=index,
            inpatient=np.array([i for i, d in enumerate(specs) if d.beds_weight > 0]),
            clinic=np.array([i for i, d in enumerate(specs) if d.clinic_weight > 0]),
            clinical=np.array([i for i, d in enumerate(specs) if d.staff_weight > 0]),
            emergency=kinds.index("emergency"),
        )

    def __len__(self) -> int:
        return len(self.specs)


@dataclass(slots=True)
class Households:
    """Addresses, one per household; a household has a surname and a street address."""

    street: np.ndarray
    number: np.ndarray
    surname: np.ndarray

    def __len__(self) -> int:
        return len(self.street)

    def address_line(self, h: int) -> str:
        s = int(self.street[h])
        name = STREETS[s % len(STREETS)]
        suffix = STREET_SUFFIXES[(s // len(STREETS)) % len(STREET_SUFFIXES)]
        return f"{int(self.number[h])} {name} {suffix}"

    def town(self, h: int) -> tuple[str, str]:
        """(town, postal code): each street lies in one town and one postal code."""
        s = int(self.street[h])
        town, prefix = TOWNS[(s // 7) % len(TOWNS)]
        return town, f"{prefix}{s % 100:02d}"

    def coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """Latitude and longitude: about 15 metres between house numbers on a street."""
        town = (self.street // 7) % len(TOWNS)
        within = self.street % 7 + (self.street // (7 * len(TOWNS))) * 7
        latitude = 42.20 + town * 0.045 + (within % 24) * 0.0022
        longitude = -71.60 + (within // 24) * 0.004 + self.number * 0.00009
        return np.round(latitude, 6), np.round(longitude, 6)


@dataclass(slots=True)
class Staff:
    """The workforce; ``patient`` is the index of the same person's Patient, or -1."""

    ids: list[str]
    role: np.ndarray  # index into config.ROLES
    department: np.ndarray  # home department
    schedule: np.ndarray  # index into SCHEDULES
    variant: np.ndarray  # 0 day, 1 night / evening / remote, 2 night (three-shift rotas)
    household: np.ndarray
    surname: np.ndarray
    given: np.ndarray  # index into FEMALE_NAMES or MALE_NAMES by ``female``
    female: np.ndarray
    hire_day: np.ndarray  # days from the simulation start (negative: before it)
    termination_day: np.ndarray  # days from the start; a large number when employed
    patient: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def employed_on(self, day: int) -> np.ndarray:
        return self.termination_day > day


NOT_TERMINATED = 1_000_000
#: Roles that work most days and touch patients every shift.
_STEADY_ROLES = ("attending", "registration", "billing", "scheduler", "pharmacist", "lab")


@dataclass(slots=True)
class Patients:
    """The patient registry; ``staff`` is the index of the same person's staff record, or -1."""

    ids: list[str]
    household: np.ndarray
    surname: np.ndarray
    given: np.ndarray
    female: np.ndarray
    birth_day: np.ndarray  # days from the simulation start (negative)
    vip: np.ndarray
    sensitive: np.ndarray  # bits, in SENSITIVE_CATEGORIES order
    staff: np.ndarray
    weight: np.ndarray  # how much care the patient uses (heavy-tailed)

    def __len__(self) -> int:
        return len(self.ids)

    def has_category(self, category: str) -> np.ndarray:
        return (self.sensitive >> SENSITIVE_CATEGORIES.index(category)) & 1 == 1

    @property
    def restricted(self) -> np.ndarray:
        """Records that need break-the-glass from outside the care team: VIPs and the
        mental-health and substance-use records (42 CFR Part 2)."""
        return self.vip | self.has_category("substance-use") | self.has_category("mental-health")


@dataclass(slots=True)
class Relations:
    """Family ties between a patient and a relative (another patient, or a staff member).

    ``relative_staff`` is -1 when the relative is not staff; ``relative_patient`` is -1
    when the relative is not a patient. ``recorded`` says whether the registry holds
    the tie as a RelatedPerson; an unrecorded tie is real but invisible to the context.
    """

    patient: np.ndarray
    relative_patient: np.ndarray
    relative_staff: np.ndarray
    code: np.ndarray  # index into RELATIONSHIP_CODES: what the relative is to the patient
    same_household: np.ndarray
    recorded: np.ndarray

    def __len__(self) -> int:
        return len(self.patient)


@dataclass(slots=True)
class Hospital:
    """Departments, staff, patients, their households and relations."""

    config: SimulationConfig
    departments: Departments
    households: Households
    staff: Staff
    patients: Patients
    relations: Relations

    def day(self, offset: int) -> date:
        return self.config.start + timedelta(days=int(offset))


def build_hospital(
    config: SimulationConfig, rng: np.random.Generator, minimum_leavers: int = 0
) -> Hospital:
    """Generate the hospital's people and places.

    Parameters
    ----------
    config: sizes, departments and population shares.
    rng: the run's one random generator (consumed in a fixed order).
    minimum_leavers: staff to terminate during the window at least (accounts the
        terminated-account scenario can misuse).
    """
    departments = Departments.build(config.departments)
    builder = _PeopleBuilder(config, rng)
    builder.patient_households(config.patients - _staff_patient_count(config))
    staff = _staff(config, departments, rng, minimum_leavers)
    builder.staff_families(staff)
    patients, households, relations = builder.finish()
    staff.patient = builder.staff_patient
    staff.household = builder.staff_household
    staff.surname = builder.staff_surname
    staff.given, staff.female = builder.staff_given, builder.staff_female
    _mark_patients(config, patients, rng)
    return Hospital(config, departments, households, staff, patients, relations)


def _staff_patient_count(config: SimulationConfig) -> int:
    return int(round(config.staff * config.population.staff_patient_share))


# --- staff -----------------------------------------------------------------------------


def _role_counts(total: int) -> np.ndarray:
    """Largest-remainder apportionment of ``total`` over the role shares."""
    shares = np.array([r.share for r in ROLES])
    exact = shares / shares.sum() * total
    counts = np.floor(exact).astype(np.int64)
    for i in np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts


def _staff(
    config: SimulationConfig,
    departments: Departments,
    rng: np.random.Generator,
    minimum_leavers: int,
) -> Staff:
    n = config.staff
    counts = _role_counts(n)
    role = np.repeat(np.arange(len(ROLES)), counts)
    department = np.zeros(n, dtype=np.int64)
    clinical = departments.clinical
    weights = np.array([departments.specs[d].staff_weight for d in clinical])
    teaching = np.array(
        [d for d in clinical if departments.specs[d].kind in ("inpatient", "emergency")]
    )
    for r, spec in enumerate(ROLES):
        members = np.flatnonzero(role == r)
        if spec.home != "clinical":
            department[members] = departments.index[spec.home]
            continue
        # Residents train on the inpatient services and in the ED, not in clinics.
        pool = teaching if spec.code == "resident" else clinical
        pool_weights = weights[np.isin(clinical, pool)]
        # Every clinical department gets one of each role first, then by size.
        first = pool[: len(members)]
        rest = rng.choice(pool, size=len(members) - len(first), p=pool_weights / pool_weights.sum())
        department[members] = np.concatenate([first, rest])
    schedule, variant = _schedules(role, department, departments, rng)
    hire_day = -rng.integers(30, 25 * 365, size=n)
    termination_day = np.full(n, NOT_TERMINATED, dtype=np.int64)
    leavers = rng.random(n) < config.population.terminated_share * config.days / 30
    if config.days >= 4:
        # A leaver works the first part of the window: at least one day is left after.
        termination_day[leavers] = rng.integers(1, config.days - 1, size=int(leavers.sum()))
        # Accounts for the terminated-account scenario: people with steady work who
        # leave halfway, so they have a record of ordinary work before they go.
        steady = np.isin(role, [ROLE_CODES.index(r) for r in _STEADY_ROLES]) & ~leavers
        extra = min(minimum_leavers, int(steady.sum()))
        chosen = rng.choice(np.flatnonzero(steady), size=extra, replace=False)
        termination_day[chosen] = rng.integers(
            max(1, config.days // 2), config.days - 1, size=extra
        )
    ids = [f"s{i:05d}" for i in range(n)]
    empty = np.zeros(n, dtype=np.int64)
    return Staff(
        ids, role, department, schedule, variant, empty.copy(), empty.copy(), empty.copy(),
        np.zeros(n, dtype=bool), hire_day, termination_day, np.full(n, -1, dtype=np.int64),
    )  # fmt: skip


def _schedules(
    role: np.ndarray, department: np.ndarray, departments: Departments, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The schedule family and variant of each staff member."""
    n = len(role)
    kinds = np.array([departments.specs[d].kind for d in department])
    schedule = np.zeros(n, dtype=np.int64)
    variant = np.zeros(n, dtype=np.int64)
    u = rng.random(n)
    for r, spec in enumerate(ROLES):
        members = role == r
        family = spec.schedule
        if spec.code == "attending":
            family_of = np.where(
                kinds == "emergency",
                SCHEDULE_INDEX["emergency_physician"],
                np.where(kinds == "clinic", SCHEDULE_INDEX["clinic"], SCHEDULE_INDEX["physician"]),
            )
            schedule[members] = family_of[members]
            continue
        if spec.code == "nurse":
            schedule[members] = np.where(
                kinds == "clinic", SCHEDULE_INDEX["clinic"], SCHEDULE_INDEX["nurse"]
            )[members]
            # About a third of inpatient nurses work nights (BLS: ~30% of RNs on nights).
            variant[members & (kinds != "clinic")] = (u < 0.35)[members & (kinds != "clinic")]
            continue
        schedule[members] = SCHEDULE_INDEX[family]
        if family == "nurse":  # float nurses
            variant[members] = (u < 0.35)[members]
        elif family == "resident":
            variant[members] = (u < 0.2)[members]  # night float block
        elif family == "around_the_clock":
            shift = np.searchsorted([0.55, 0.85], u)  # day, evening, night
            # A 24-hour service staffs every shift: the first two hired work night, evening.
            shift[np.flatnonzero(members)[:2]] = [2, 1][: int(members.sum())]
            variant[members] = shift[members]
        elif family == "registration":
            # Half staff the ED desk around the clock, half the clinic front desks.
            variant[members] = np.searchsorted([0.3, 0.45, 0.5], u)[members]
        elif spec.code in ("billing", "researcher"):
            # Remote evening workers: about one in eight, and at least one coder.
            evening = u < 0.12
            evening[np.flatnonzero(members)[:1]] = True
            variant[members] = evening[members]
    return schedule, variant


# --- people ----------------------------------------------------------------------------


def _household_sizes(rng: np.random.Generator, people: int) -> np.ndarray:
    """Household sizes until ``people`` are housed (US Census 2020 household-size mix)."""
    sizes = rng.choice(
        [1, 2, 3, 4, 5, 6], size=people // 2 + 10, p=[0.28, 0.35, 0.15, 0.12, 0.06, 0.04]
    )
    cumulative = np.cumsum(sizes)
    count = int(np.searchsorted(cumulative, people)) + 1
    sizes = sizes[:count].copy()
    sizes[-1] -= cumulative[count - 1] - people
    return sizes[sizes > 0]


def _surnames(rng: np.random.Generator, size: int) -> np.ndarray:
    """Surname indices with Zipf-like frequencies: Smith is common, Lindqvist rare."""
    ranks = np.arange(1, len(SURNAMES) + 1)
    p = 1.0 / ranks**0.8
    return rng.choice(len(SURNAMES), size=size, p=p / p.sum())


class _PeopleBuilder:
    """Builds patients and households, then weaves the staff into them."""

    def __init__(self, config: SimulationConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.columns: dict[str, list[np.ndarray]] = {
            k: [] for k in ("household", "surname", "given", "female", "birth_day", "staff")
        }
        self.ties: dict[str, list[np.ndarray]] = {
            k: [] for k in ("patient", "relative_patient", "relative_staff", "code", "same")
        }
        self.household_surname: list[np.ndarray] = []
        self.household_count = 0
        self.patient_count = 0

    def _new_households(self, surnames: np.ndarray) -> np.ndarray:
        first = self.household_count
        self.household_count += len(surnames)
        self.household_surname.append(surnames)
        return np.arange(first, self.household_count)

    def _add_patients(self, **columns: np.ndarray) -> np.ndarray:
        size = len(columns["household"])
        for key, values in columns.items():
            self.columns[key].append(np.asarray(values))
        first = self.patient_count
        self.patient_count += size
        return np.arange(first, self.patient_count)

    def _tie(self, patient, relative_patient, relative_staff, code, same) -> None:
        size = len(patient)
        for key, values in (
            ("patient", patient),
            ("relative_patient", relative_patient),
            ("relative_staff", relative_staff),
            ("code", code),
            ("same", same),
        ):
            self.ties[key].append(np.broadcast_to(np.asarray(values, dtype=np.int64), size).copy())

    def patient_households(self, people: int) -> None:
        rng = self.rng
        sizes = _household_sizes(rng, people)
        households = self._new_households(_surnames(rng, len(sizes)))
        member_household = np.repeat(households, sizes)
        position = np.arange(len(member_household)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        head_age = rng.integers(20, 90, size=len(sizes))
        # Position 0 is the householder, 1 the spouse in a household of 2+, then children.
        is_spouse = (
            (position == 1) & (np.repeat(sizes, sizes) >= 2) & (rng.random(len(position)) < 0.8)
        )
        is_child = (position >= 1) & ~is_spouse
        age = np.repeat(head_age, sizes) + rng.integers(-5, 6, size=len(position))
        child_age = np.clip(
            np.repeat(head_age, sizes) - rng.integers(20, 40, size=len(position)), 0, None
        )
        age = np.where(is_child, child_age, np.clip(age, 18, 100))
        female = rng.random(len(position)) < 0.51
        female = np.where(is_spouse, ~np.roll(female, 1), female)  # spouse of the householder
        surname = self.household_surname[-1][member_household - households[0]]
        # Some spouses keep their own surname: same address, different name.
        keeps_name = is_spouse & (rng.random(len(position)) < 0.15)
        surname = np.where(keeps_name, _surnames(rng, len(position)), surname)
        given = self._given(female)
        birth_day = -(age * 365 + rng.integers(0, 365, size=len(position)))
        patients = self._add_patients(
            household=member_household, surname=surname, given=given, female=female,
            birth_day=birth_day, staff=np.full(len(position), -1),
        )  # fmt: skip
        heads = patients[position == 0]
        head_of = np.repeat(heads, sizes)
        others = position > 0
        code_to_head = np.where(is_spouse, SPOUSE, PARENT)[others]  # the head is to them
        code_of_member = np.where(is_spouse, SPOUSE, CHILD)[others]  # they are to the head
        self._tie(patients[others], head_of[others], -1, code_to_head, 1)
        self._tie(head_of[others], patients[others], -1, code_of_member, 1)
        self.patient_head = heads
        self.patient_household_sizes = sizes

    def _given(self, female: np.ndarray) -> np.ndarray:
        return np.where(
            female,
            self.rng.integers(0, len(FEMALE_NAMES), size=len(female)),
            self.rng.integers(0, len(MALE_NAMES), size=len(female)),
        )

    def staff_families(self, staff: Staff) -> None:
        """Give each staff member a home, a family, and (some) a patient record."""
        rng, population = self.rng, self.config.population
        n = len(staff)
        heads = self.patient_head
        head_household = np.asarray(self.columns["household"][0])[heads]
        head_surname = np.asarray(self.columns["surname"][0])[heads]
        joins = rng.random(n) < population.staff_household_share
        joined = rng.choice(len(heads), size=n)
        own = self._new_households(_surnames(rng, int((~joins).sum())))
        household = np.empty(n, dtype=np.int64)
        household[joins] = head_household[joined[joins]]
        household[~joins] = own
        surname = np.empty(n, dtype=np.int64)
        surname[joins] = head_surname[joined[joins]]
        surname[~joins] = self.household_surname[-1]
        female = rng.random(n) < 0.6  # hospital workforces are majority female
        given = self._given(female)
        staff_index = np.arange(n)
        # A staff member in a patient household is the householder's spouse or grown child.
        code = np.where(rng.random(n) < 0.6, SPOUSE, CHILD)
        inverse = np.where(code == SPOUSE, SPOUSE, PARENT)
        head = heads[joined]
        self._tie(head[joins], -1, staff_index[joins], code[joins], 1)
        # Relatives who are patients at another address: a parent or a sibling.
        extended = rng.random(n) < population.staff_extended_family_share
        relative_head = heads[rng.choice(len(heads), size=n)]
        self._tie(
            relative_head[extended], -1, staff_index[extended],
            np.where(rng.random(n) < 0.6, CHILD, SIBLING)[extended], 0,
        )  # fmt: skip
        # The relative shares the surname: the family name passes to the staff member.
        surname[extended & ~joins] = np.asarray(self.columns["surname"][0])[relative_head][
            extended & ~joins
        ]
        # Staff who are patients: a Patient record in their own household.
        count = _staff_patient_count(self.config)
        is_patient = rng.permutation(n)[:count]
        is_patient.sort()
        age = rng.integers(22, 66, size=count)
        patients = self._add_patients(
            household=household[is_patient], surname=surname[is_patient],
            given=given[is_patient], female=female[is_patient],
            birth_day=-(age * 365 + rng.integers(0, 365, size=count)), staff=is_patient,
        )  # fmt: skip
        staff_patient = np.full(n, -1, dtype=np.int64)
        staff_patient[is_patient] = patients
        # A staff member who is a patient is also family of the householder they live with.
        living_with = np.isin(is_patient, staff_index[joins])
        self._tie(
            patients[living_with], head[is_patient[living_with]], -1,
            inverse[is_patient[living_with]], 1,
        )  # fmt: skip
        self.staff_patient = staff_patient
        self.staff_household = household
        self.staff_surname = surname
        self.staff_given = given
        self.staff_female = female
        del code, inverse

    def finish(self) -> tuple[Patients, Households, Relations]:
        rng, population = self.rng, self.config.population
        cat = {k: np.concatenate(v) for k, v in self.columns.items()}
        n = len(cat["household"])
        surnames = np.concatenate(self.household_surname)
        count = len(surnames)
        per_street = population.households_per_street
        # Households are scattered over the streets: a random slot for each.
        slot = rng.permutation(count)
        street = slot // per_street
        number = 2 + 2 * (slot % per_street) + rng.integers(0, 2, size=count) * 2 * per_street
        households = Households(street, number, surnames)
        weight = rng.gamma(0.7, 1.0, size=n) * (
            1.0 + np.clip(-cat["birth_day"] / 365 - 50, 0, None) / 20
        )
        patients = Patients(
            ids=[f"p{i:06d}" for i in range(n)],
            household=cat["household"], surname=cat["surname"], given=cat["given"],
            female=cat["female"].astype(bool), birth_day=cat["birth_day"],
            vip=np.zeros(n, dtype=bool), sensitive=np.zeros(n, dtype=np.int64),
            staff=cat["staff"], weight=weight,
        )  # fmt: skip
        ties = {k: np.concatenate(v) for k, v in self.ties.items()}
        relations = Relations(
            patient=ties["patient"],
            relative_patient=ties["relative_patient"],
            relative_staff=ties["relative_staff"],
            code=ties["code"],
            same_household=ties["same"].astype(bool),
            recorded=rng.random(len(ties["patient"])) < population.relationship_recorded_share,
        )
        return patients, households, relations


def _mark_patients(config: SimulationConfig, patients: Patients, rng: np.random.Generator) -> None:
    """VIPs and sensitive categories."""
    population = config.population
    n = len(patients)
    age = -patients.birth_day / 365
    adult = age >= 18
    vip_count = max(2, int(round(n * population.vip_share)))
    candidates = np.flatnonzero(adult & (patients.staff < 0))
    patients.vip[rng.choice(candidates, size=vip_count, replace=False)] = True
    shares = (
        population.hiv_share,
        population.substance_use_share,
        population.mental_health_share,
        population.reproductive_share,
    )
    eligible = (
        adult,
        age >= 14,
        np.ones(n, dtype=bool),
        patients.female & (age >= 15) & (age <= 50),
    )
    for bit, (share, who) in enumerate(zip(shares, eligible, strict=True)):
        # Shares are of all patients; drawn among those the category can apply to.
        p = min(1.0, share * n / max(1, who.sum()))
        chosen = who & (rng.random(n) < p)
        patients.sensitive[chosen] |= 1 << bit
