"""What the simulated hospital looks like, as data: presets, departments, roles, rates.

Everything the generator assumes is a number here, so it can be read, argued with and
changed without touching the code; ``docs/simulator.md`` says where each number comes
from. Scenario rates are *expected incidents per 1,000 staff-days* (staff x days / 1,000),
so one rate means the same thing in every preset.

Examples
--------
>>> config = config_for("small", seed=7, rates={"self_access": 2.0})
>>> config.staff, config.days, config.rates.self_access
(150, 7, 2.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date

#: The fixed first day of every simulation (a Monday): no wall clock, so a seed replays.
DEFAULT_START = date(2026, 3, 2)


@dataclass(frozen=True, slots=True)
class ScenarioRates:
    """Expected misuse incidents per 1,000 staff-days, one field per labelled scenario.

    The number of incidents of a scenario is ``rate x staff x days / 1000``, rounded
    up or down at random in proportion to the fraction (so the count is always within
    one of the expectation). A scenario that finds no eligible offender or target
    (no staff member who is also a patient, say) produces fewer incidents, and
    ``summary.json`` says how many it produced.
    """

    family_snooping: float = 1.0
    coworker_lookup: float = 0.6
    neighbour_lookup: float = 0.5
    vip_curiosity: float = 0.4
    vip_news_burst: float = 0.05
    self_access: float = 0.5
    department_browsing: float = 0.5
    name_search: float = 0.4
    bulk_export: float = 0.1
    compromised_credentials: float = 0.08
    terminated_account: float = 0.1
    break_the_glass: float = 0.3
    repeat_offender: float = 0.15
    concurrent_sessions: float = 0.15
    slow_and_low: float = 0.3

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The scenario names, in the order labels and summaries list them."""
        return tuple(f.name for f in fields(cls))

    def with_overrides(self, overrides: Mapping[str, float] | None) -> ScenarioRates:
        """These rates with some replaced; an unknown name or a negative rate is an error.

        >>> ScenarioRates().with_overrides({"bulk_export": 0.0}).bulk_export
        0.0
        """
        if not overrides:
            return self
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise ValueError(
                f"unknown scenario(s) {', '.join(unknown)}; one of {', '.join(self.names())}"
            )
        negative = sorted(name for name, rate in overrides.items() if rate < 0)
        if negative:
            raise ValueError(f"a rate cannot be negative: {', '.join(negative)}")
        return replace(self, **{name: float(rate) for name, rate in overrides.items()})


@dataclass(frozen=True, slots=True)
class DepartmentSpec:
    """One department (a FHIR Organization).

    Attributes
    ----------
    code: the short id (``medicine``); the Organization id is ``dept-{code}``.
    name: the display name.
    kind: ``emergency``, ``inpatient``, ``clinic`` (outpatient only), ``support``
        (pharmacy, laboratory, radiology, rehabilitation), ``admin`` or ``float``.
    staff_weight: share of the clinical staff (physicians, nurses) it employs.
    beds_weight: share of inpatient admissions it receives (0 for none).
    clinic_weight: share of outpatient clinic visits it holds (0 for none).
    sensitive_category: the category its patients carry (``mental-health``, ...).
    """

    code: str
    name: str
    kind: str
    staff_weight: float = 0.0
    beds_weight: float = 0.0
    clinic_weight: float = 0.0
    sensitive_category: str | None = None


#: The departments of a teaching hospital. Support and admin departments hold the
#: roles that serve every unit; the float pool holds nurses moved shift by shift.
HOSPITAL_DEPARTMENTS: tuple[DepartmentSpec, ...] = (
    DepartmentSpec("emergency", "Emergency Department", "emergency", staff_weight=12),
    DepartmentSpec("medicine", "Internal Medicine", "inpatient", 18, 30, 6),
    DepartmentSpec("surgery", "General Surgery", "inpatient", 10, 15, 4),
    DepartmentSpec("cardiology", "Cardiology", "inpatient", 7, 10, 6),
    DepartmentSpec("icu", "Intensive Care Unit", "inpatient", 9, 8, 0),
    DepartmentSpec("oncology", "Oncology", "inpatient", 6, 7, 6),
    DepartmentSpec("obstetrics", "Obstetrics", "inpatient", 6, 8, 3),
    DepartmentSpec("pediatrics", "Pediatrics", "inpatient", 5, 6, 6),
    DepartmentSpec("psychiatry", "Psychiatry", "inpatient", 5, 6, 5, "mental-health"),
    DepartmentSpec("neurology", "Neurology", "inpatient", 3, 4, 3),
    DepartmentSpec("orthopedics", "Orthopedics", "inpatient", 3, 6, 5),
    DepartmentSpec("primary-care", "Primary Care", "clinic", 8, 0, 40),
    DepartmentSpec("infectious-disease", "Infectious Disease Clinic", "clinic", 1.5, 0, 3, "hiv"),
    DepartmentSpec(
        "addiction-medicine", "Addiction Medicine", "clinic", 1.5, 0, 4, "substance-use"
    ),
    DepartmentSpec("womens-health", "Women's Health", "clinic", 2, 0, 5, "reproductive"),
    DepartmentSpec("float-pool", "Nursing Float Pool", "float"),
    DepartmentSpec("pharmacy", "Pharmacy", "support"),
    DepartmentSpec("laboratory", "Laboratory", "support"),
    DepartmentSpec("radiology", "Radiology", "support"),
    DepartmentSpec("rehabilitation", "Rehabilitation Therapy", "support"),
    DepartmentSpec("patient-access", "Patient Access (Registration)", "admin"),
    DepartmentSpec("scheduling", "Scheduling", "admin"),
    DepartmentSpec("revenue-cycle", "Billing and Coding", "admin"),
    DepartmentSpec("him", "Health Information Management", "admin"),
    DepartmentSpec("it", "IT and Analytics", "admin"),
    DepartmentSpec("research", "Research Office", "admin"),
)

#: A community hospital: the same shape with fewer specialties, so a 150-person roster
#: still puts a physician in every clinical department.
COMMUNITY_DEPARTMENTS: tuple[DepartmentSpec, ...] = tuple(
    d
    for d in HOSPITAL_DEPARTMENTS
    if d.code
    not in {"cardiology", "oncology", "pediatrics", "neurology", "orthopedics", "womens-health"}
)


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A job role: how many there are, where they work, and when.

    Attributes
    ----------
    code: the role's short name, used in code and ``summary.json``.
    title: the role as the roster writes it (``PractitionerRole.code.text``).
    share: fraction of the staff.
    home: ``clinical`` (spread over clinical departments by ``staff_weight``), or the
        code of the one department that employs the role.
    schedule: the schedule family (see ``custodes.simulate.shifts``).
    """

    code: str
    title: str
    share: float
    home: str
    schedule: str


#: Workforce mix. Shares follow the US hospital occupational mix (BLS OEWS, NAICS 622),
#: with non-EHR jobs (food service, facilities) left out; see docs/simulator.md.
ROLES: tuple[RoleSpec, ...] = (
    RoleSpec("attending", "attending physician", 0.09, "clinical", "physician"),
    RoleSpec("resident", "resident physician", 0.06, "clinical", "resident"),
    RoleSpec("nurse", "nurse", 0.36, "clinical", "nurse"),
    RoleSpec("float_nurse", "nurse", 0.04, "float-pool", "nurse"),
    RoleSpec("pharmacist", "pharmacist", 0.03, "pharmacy", "around_the_clock"),
    RoleSpec("therapist", "therapist", 0.04, "rehabilitation", "therapy"),
    RoleSpec("registration", "registration clerk", 0.07, "patient-access", "registration"),
    RoleSpec("scheduler", "scheduler", 0.04, "scheduling", "business"),
    RoleSpec("billing", "billing and coding specialist", 0.06, "revenue-cycle", "business"),
    RoleSpec("him", "health information management specialist", 0.03, "him", "business"),
    RoleSpec("lab", "laboratory technologist", 0.07, "laboratory", "around_the_clock"),
    RoleSpec("radiology", "radiology technologist", 0.05, "radiology", "around_the_clock"),
    RoleSpec("it", "it analyst", 0.04, "it", "business"),
    RoleSpec("researcher", "researcher", 0.02, "research", "business"),
)

ROLE_CODES: tuple[str, ...] = tuple(r.code for r in ROLES)


@dataclass(frozen=True, slots=True)
class Volumes:
    """How busy the hospital is, per 1,000 staff per day, and how long things take.

    The defaults put a 2,000-person hospital at about 90 admissions, 150 emergency
    visits and 900 clinic visits a day (AHA Hospital Statistics ratios of staff to
    beds and visits), and about 95 audit events per staff-day.
    """

    admissions: float = 45.0
    emergency_visits: float = 75.0
    clinic_visits: float = 450.0
    #: Share of emergency visits that end in an admission (NHAMCS: about 1 in 7 to 1 in 5).
    emergency_admitted: float = 0.18
    #: Inpatient length of stay, log-normal: median days and sigma (HCUP: mean ~4.6 days).
    stay_median_days: float = 3.2
    stay_sigma: float = 0.75
    #: Share of stays with a transfer between units (ICU step-down, ward to ICU).
    transfer_share: float = 0.25
    #: Share of stays with a consult from another department.
    consult_share: float = 0.30
    #: Share of discharges with a follow-up clinic visit, and of ED visits with a referral.
    follow_up_share: float = 0.5
    referral_share: float = 0.15
    #: Days of encounters before the first simulated day (billing, follow-ups, history).
    history_days: int = 60
    #: Scales events per chart touch, to tune volume without changing the structure.
    intensity: float = 2.1


@dataclass(frozen=True, slots=True)
class Population:
    """Who the patients are and how they are related.

    Shares are of patients unless named otherwise; see docs/simulator.md for sources.
    """

    vip_share: float = 0.002
    hiv_share: float = 0.005
    substance_use_share: float = 0.04
    mental_health_share: float = 0.08
    reproductive_share: float = 0.05
    #: Share of staff who are also patients of the hospital (employees use their employer).
    staff_patient_share: float = 0.15
    #: Share of staff whose household includes patients (family spanning staff and patients).
    staff_household_share: float = 0.30
    #: Share of staff with a relative who is a patient at another address (parent, sibling).
    staff_extended_family_share: float = 0.20
    #: Share of relationships the registry records as a RelatedPerson (emergency contact,
    #: guarantor); the rest exist only as a shared surname or address, or not at all.
    relationship_recorded_share: float = 0.6
    #: Share of staff terminated during the window (the roster keeps their end date).
    terminated_share: float = 0.01
    #: Households per street: neighbours are on one street within a few house numbers.
    households_per_street: int = 40


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """Everything one run needs; the same config and seed give the same bytes.

    Attributes
    ----------
    preset: the preset it came from (``small``, ``hospital``, ``health-system``).
    seed: the seed of the one random generator (``numpy.random.PCG64``).
    staff, patients, days: the roster size, the patient registry size, the window.
    start: the first simulated day (UTC midnight); the hospital keeps its clocks on UTC.
    departments: the departments.
    rates: misuse scenarios, incidents per 1,000 staff-days.
    volumes, population: the hospital's workload and its people.
    hospital_name: the root Organization's name.
    application: the EHR's name in ``AuditEvent.source.observer``.
    chunk_events: events written per chunk (bounds memory while writing).
    """

    preset: str
    seed: int
    staff: int
    patients: int
    days: int
    start: date = DEFAULT_START
    departments: tuple[DepartmentSpec, ...] = HOSPITAL_DEPARTMENTS
    rates: ScenarioRates = field(default_factory=ScenarioRates)
    volumes: Volumes = field(default_factory=Volumes)
    population: Population = field(default_factory=Population)
    hospital_name: str = "Custodes General Hospital"
    application: str = "EHR"
    chunk_events: int = 500_000

    def __post_init__(self) -> None:
        if self.staff < 60:
            raise ValueError("a hospital needs at least 60 staff to fill every role")
        if self.patients < 200:
            raise ValueError("a hospital needs at least 200 patients")
        if not 1 <= self.days <= 366:
            raise ValueError("days must be between 1 and 366")

    @property
    def staff_days(self) -> float:
        """Staff x days, the exposure scenario rates are counted against."""
        return self.staff * self.days


#: Rates for the small preset: higher than a real hospital's so that a week of a
#: 150-person hospital shows every scenario at least once (the demo, the tests).
SMALL_RATES = ScenarioRates(
    family_snooping=4.0,
    coworker_lookup=3.0,
    neighbour_lookup=3.0,
    vip_curiosity=3.0,
    vip_news_burst=1.0,
    self_access=3.0,
    department_browsing=3.0,
    name_search=3.0,
    bulk_export=2.0,
    compromised_credentials=2.0,
    terminated_account=2.0,
    break_the_glass=3.0,
    repeat_offender=2.0,
    concurrent_sessions=2.0,
    slow_and_low=3.0,
)

#: The presets: sizes and the departments and rates that go with them.
PRESETS: dict[str, SimulationConfig] = {
    "small": SimulationConfig(
        preset="small",
        seed=0,
        staff=150,
        patients=2_000,
        days=7,
        departments=COMMUNITY_DEPARTMENTS,
        rates=SMALL_RATES,
        population=Population(terminated_share=0.03, vip_share=0.003),
        volumes=Volumes(history_days=45),
    ),
    "hospital": SimulationConfig(preset="hospital", seed=0, staff=2_000, patients=50_000, days=30),
    "health-system": SimulationConfig(
        preset="health-system", seed=0, staff=5_000, patients=125_000, days=30
    ),
}


def config_for(
    preset: str,
    seed: int,
    staff: int | None = None,
    patients: int | None = None,
    days: int | None = None,
    rates: Mapping[str, float] | None = None,
) -> SimulationConfig:
    """The configuration of a preset, with the command line's overrides applied.

    Parameters
    ----------
    preset: ``small``, ``hospital`` or ``health-system``.
    seed: the random seed.
    staff, patients, days: override the preset's sizes.
    rates: override scenario rates by name (``{"bulk_export": 0.5}``).

    Raises
    ------
    ValueError: an unknown preset or scenario, or a size out of range.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; one of {', '.join(PRESETS)}")
    base = PRESETS[preset]
    return replace(
        base,
        seed=int(seed),
        staff=base.staff if staff is None else int(staff),
        patients=base.patients if patients is None else int(patients),
        days=base.days if days is None else int(days),
        rates=base.rates.with_overrides(rates),
    )


def parse_rate_overrides(values: Iterable[str]) -> dict[str, float]:
    """``SCENARIO=X`` strings (the ``--rate`` options) to a mapping for ``config_for``.

    >>> parse_rate_overrides(["bulk_export=0.5", "self_access=2"])
    {'bulk_export': 0.5, 'self_access': 2.0}

    Raises
    ------
    ValueError: a value that is not ``name=number``; names are checked by ``config_for``.
    """
    overrides: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            overrides[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"--rate expects SCENARIO=NUMBER, got {value!r}") from None
    return overrides
