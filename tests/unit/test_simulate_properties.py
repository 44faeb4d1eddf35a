"""The statistical properties that make the simulated hospital worth detecting in.

Checked on the ``small`` preset, generated in memory for two seeds. The thresholds are
floors a realistic month must clear, not the exact values of one seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from custodes.simulate import config_for, generate
from custodes.simulate.accesses import (
    ACTIONS,
    ETREAT,
    MISUSE,
    REASON,
    REPORTING,
    UNUSUAL_REASONS,
)
from custodes.simulate.config import ROLE_CODES
from custodes.simulate.encounters import INPATIENT
from custodes.simulate.hospital import SCHEDULE_INDEX
from custodes.simulate.scenarios import SCENARIOS
from custodes.simulate.shifts import DAY, HOUR, KIND
from custodes.simulate.workflows import ATTENDING

SEEDS = (11, 12)
#: Scenarios where a person looks up someone they know or are curious about.
SNOOPING = (
    "family_snooping", "coworker_lookup", "neighbour_lookup", "vip_curiosity", "self_access",
    "name_search", "break_the_glass", "repeat_offender", "slow_and_low",
)  # fmt: skip


@pytest.fixture(scope="module", params=SEEDS)
def sim(request):
    return generate(config_for("small", request.param))


def _hours(sim) -> np.ndarray:
    return (sim.events.time % DAY) // HOUR


def _legitimate(sim) -> np.ndarray:
    return sim.events.reason != MISUSE


def _scenario(sim, name: str) -> np.ndarray:
    return sim.events.scenario == 1 + SCENARIOS.index(name)


# --- shifts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "variant", "hours", "floor"),
    [
        # 12-hour nurses: nights 19:00-07:30, days 07:00-19:30 (handover overlaps).
        ("nurse", 1, (19, 20, 21, 22, 23, 0, 1, 2, 3, 4, 5, 6, 7), 0.95),
        ("nurse", 0, tuple(range(6, 21)), 0.95),
        # Laboratory, pharmacy, radiology on a fixed night shift: 23:00-07:30.
        ("around_the_clock", 2, (22, 23, 0, 1, 2, 3, 4, 5, 6, 7), 0.95),
        # Office staff: business hours (coders, HIM, schedulers, IT, research).
        ("business", 0, tuple(range(6, 19)), 0.95),
        # Remote evening coders and analysts: their own, legitimate, unusual hours.
        ("business", 1, tuple(range(13, 24)) + (0,), 0.95),
    ],
)
def test_accesses_follow_the_shift(sim, schedule, variant, hours, floor):
    staff = sim.hospital.staff
    user = sim.event_user
    mine = (staff.schedule[user] == SCHEDULE_INDEX[schedule]) & (staff.variant[user] == variant)
    mine &= _legitimate(sim)
    assert mine.sum() > 100
    assert np.isin(_hours(sim)[mine], hours).mean() >= floor


def test_night_nurses_work_nights_and_day_nurses_days(sim):
    staff, user, hours = sim.hospital.staff, sim.event_user, _hours(sim)
    nurse = (staff.schedule[user] == SCHEDULE_INDEX["nurse"]) & _legitimate(sim)
    night = (hours >= 19) | (hours < 7)
    assert night[nurse & (staff.variant[user] == 1)].mean() > 0.9
    assert night[nurse & (staff.variant[user] == 0)].mean() < 0.2


def test_the_hospital_works_around_the_clock_and_at_weekends(sim):
    hours = np.bincount(_hours(sim), minlength=24)
    assert hours.min() > 0  # every hour of the day has accesses
    assert hours[9:17].mean() > 3 * hours[1:5].mean()  # but far more by day
    weekday = (sim.config.start.weekday() + sim.events.time // DAY) % 7
    per_day = np.bincount(weekday, minlength=7) / np.bincount(
        (sim.config.start.weekday() + np.arange(sim.config.days)) % 7, minlength=7
    ).clip(1)
    assert 0.15 * per_day[:5].mean() < per_day[5:].mean() < 0.9 * per_day[:5].mean()


def test_unusual_but_legitimate_hours(sim):
    """After-hours charting from home, nights on call: legitimate, remote, late."""
    kind = sim.sessions["kind"][sim.events.session]
    remote = np.isin(kind, [KIND["after_hours_charting"], KIND["on_call"], KIND["remote_evening"]])
    late = (_hours(sim) >= 20) | (_hours(sim) < 6)
    assert (remote & late & _legitimate(sim)).sum() > 100


# --- volumes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "low", "high"),
    [("nurse", 60, 600), ("attending", 60, 900), ("registration", 5, 400), ("billing", 10, 400)],
)
def test_events_per_shift(sim, role, low, high):
    """Tens to a few hundred audit events per clinician shift (median over shifts)."""
    legitimate = _legitimate(sim)
    session = sim.events.session[legitimate]
    per_session = np.bincount(session, minlength=len(sim.sessions["user"]))
    role_of = sim.hospital.staff.role[sim.sessions["user"]]
    shifts = (role_of == ROLE_CODES.index(role)) & np.isin(
        sim.sessions["kind"], [KIND["day"], KIND["evening"], KIND["night"]]
    )
    busy = per_session[shifts & (per_session > 0)]
    assert low <= np.median(busy) <= high


def test_registration_sees_many_patients_briefly(sim):
    role = sim.hospital.staff.role[sim.event_user]
    legitimate = _legitimate(sim)

    def events_per_patient(code: str) -> float:
        mask = legitimate & (role == ROLE_CODES.index(code))
        pairs = np.unique(sim.event_user[mask] * 10**7 + sim.events.patient[mask])
        return mask.sum() / len(pairs)

    assert events_per_patient("registration") < events_per_patient("nurse") / 2


def test_preset_volume(sim):
    assert 60_000 <= len(sim.events) <= 160_000


# --- legitimate accesses without a care-team link ------------------------------------------------


def test_legitimate_accesses_without_a_care_team_link(sim):
    link = sim.care_team_link()
    legitimate = _legitimate(sim)
    share = (~link[legitimate]).mean()
    assert share >= 0.05
    # Not only support roles: some clinicians' legitimate accesses lack the link too.
    clinical = np.isin(
        sim.hospital.staff.role[sim.event_user],
        [ROLE_CODES.index(r) for r in ("attending", "resident", "nurse")],
    )
    assert (~link[legitimate & clinical]).mean() >= 0.05


@pytest.mark.parametrize("reason", sorted(UNUSUAL_REASONS))
def test_every_legitimate_but_unusual_behaviour_happens(sim, reason):
    assert (sim.events.reason == REASON[reason]).sum() > 0


def test_care_teams_change_over_a_stay(sim):
    team = sim.care_team
    encounters = sim.encounters
    attending_rows = team["role"] == ATTENDING
    per_encounter = np.bincount(team["encounter"][attending_rows], minlength=len(encounters))
    inpatient = encounters.encounter_class == INPATIENT
    assert (per_encounter[inpatient] >= 2).sum() > 0  # a new attending the second week
    assert (encounters.stay != np.arange(len(encounters))).sum() > 0  # transfers


# --- misuse ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_incidents_per_scenario_follow_the_rate(sim, scenario):
    config = sim.config
    expected = getattr(config.rates, scenario) * config.staff_days / 1000
    mask = _scenario(sim, scenario)
    incidents = len(np.unique(sim.events.case[mask]))
    assert abs(incidents - expected) <= 1
    assert incidents >= 1 and mask.sum() >= incidents


def test_a_rate_of_zero_turns_a_scenario_off():
    quiet = generate(config_for("small", SEEDS[0], days=3, rates={"bulk_export": 0.0}))
    assert _scenario(quiet, "bulk_export").sum() == 0
    assert (quiet.events.reason == MISUSE).sum() > 0


def test_offenders_also_do_their_normal_work(sim):
    misuse = ~_legitimate(sim)
    offenders = np.unique(sim.event_user[misuse])
    workers = np.unique(sim.event_user[~misuse])
    assert np.isin(offenders, workers).all()


def test_snoopers_look_during_their_ordinary_sessions(sim):
    snooping = np.isin(sim.events.scenario, [1 + SCENARIOS.index(s) for s in SNOOPING])
    kind = sim.sessions["kind"][sim.events.session]
    own_shift = np.isin(
        kind, [KIND[k] for k in ("day", "evening", "night", "weekend_rounds", "remote_evening")]
    )
    assert own_shift[snooping].mean() >= 0.6
    assert np.isin(_hours(sim)[snooping], range(7, 19)).mean() >= 0.4


def test_some_misuse_targets_patients_treated_in_the_offenders_department(sim):
    hospital, events = sim.hospital, sim.events
    departments = len(hospital.departments)
    treated = np.unique(sim.encounters.patient * departments + sim.encounters.department)
    key = events.patient * departments + hospital.staff.department[sim.event_user]
    misuse = ~_legitimate(sim)
    cases = np.unique(events.case[misuse])
    inside = np.unique(events.case[misuse & np.isin(key, treated)])
    assert len(inside) >= max(2, 0.1 * len(cases))


@pytest.mark.parametrize(
    "feature",
    [
        "night",
        "no_care_team_link",
        "remote_device",
        "break_the_glass",
        "export_or_print",
        "reporting_tool",
        "search",
    ],
)
def test_no_single_feature_separates_misuse(sim, feature):
    """Each feature a naive detector would use appears in both classes."""
    events = sim.events
    hours = _hours(sim)
    workstation = sim.sessions["workstation"][events.session]
    values = {
        "night": (hours >= 22) | (hours < 6),
        "no_care_team_link": ~sim.care_team_link(),
        "remote_device": sim.workstations.department[workstation] < 0,
        "break_the_glass": events.purpose == ETREAT,
        "export_or_print": np.isin(
            events.action, [ACTIONS.index("export"), ACTIONS.index("print")]
        ),
        "reporting_tool": events.application == REPORTING,
        "search": events.action == ACTIONS.index("search"),
    }[feature]
    legitimate = _legitimate(sim)
    assert values[legitimate].sum() > 0 and values[~legitimate].sum() > 0
    # ...and none catches most incidents without flagging more legitimate work than misuse.
    cases = np.unique(events.case[~legitimate])
    caught = np.unique(events.case[~legitimate & values])
    if len(caught) > len(cases) / 2:
        assert values[legitimate].sum() > values[~legitimate].sum()


def test_misuse_mostly_declares_the_ordinary_purpose(sim):
    misuse = ~_legitimate(sim)
    assert (sim.events.purpose[misuse] != ETREAT).mean() > 0.9


def test_compromised_credentials_begin_with_failures_from_a_new_device(sim):
    mask = _scenario(sim, "compromised_credentials")
    sessions = np.unique(sim.events.session[mask])
    assert len(sessions) >= 1
    assert (sim.sessions["failures"][sessions] >= 2).all()
    assert (sim.workstations.department[sim.sessions["workstation"][sessions]] < 0).all()
    hours = (sim.sessions["start"][sessions] % DAY) // HOUR
    assert np.isin(hours, range(0, 6)).all()


def test_terminated_accounts_are_used_after_termination(sim):
    mask = _scenario(sim, "terminated_account")
    staff = sim.hospital.staff
    user = sim.event_user[mask]
    assert (sim.events.time[mask] // DAY > staff.termination_day[user]).all()
    # They worked here before they left.
    before = _legitimate(sim) & np.isin(sim.event_user, user)
    assert (sim.events.time[before] // DAY <= staff.termination_day[sim.event_user[before]]).all()


def test_concurrent_sessions_overlap_on_two_workstations(sim):
    mask = _scenario(sim, "concurrent_sessions")
    for session in np.unique(sim.events.session[mask]):
        user = sim.sessions["user"][session]
        start, end = sim.sessions["start"][session], sim.sessions["end"][session]
        others = (sim.sessions["user"] == user) & (sim.sessions["start"] < end)
        others &= (sim.sessions["end"] > start) & (np.arange(len(others)) != session)
        assert others.any()
        assert (sim.sessions["workstation"][others] != sim.sessions["workstation"][session]).all()


def test_vip_news_burst_is_many_users_on_one_patient(sim):
    mask = _scenario(sim, "vip_news_burst")
    for case in np.unique(sim.events.case[mask]):
        in_case = mask & (sim.events.case == case)
        assert len(np.unique(sim.events.patient[in_case])) == 1
        assert len(np.unique(sim.event_user[in_case])) >= 2
        assert sim.hospital.patients.vip[sim.events.patient[in_case][0]]


def test_slow_and_low_spreads_over_days(sim):
    mask = _scenario(sim, "slow_and_low")
    for case in np.unique(sim.events.case[mask]):
        days = np.unique(sim.events.time[mask & (sim.events.case == case)] // DAY)
        assert len(days) >= 2


# --- the people ---------------------------------------------------------------------------------------


def test_the_relationships_a_detector_needs_exist(sim):
    hospital = sim.hospital
    patients, staff, relations = hospital.patients, hospital.staff, hospital.relations
    assert patients.vip.sum() >= 2
    for category in ("hiv", "substance-use", "mental-health", "reproductive"):
        assert patients.has_category(category).sum() > 0
    assert (staff.patient >= 0).sum() > 0  # staff who are patients
    assert (relations.relative_staff >= 0).sum() > 0  # families spanning staff and patients
    assert (relations.recorded & (relations.relative_staff >= 0)).sum() > 0
    assert (~relations.recorded).sum() > 0  # some ties the registry does not know
    # Households share an address and mostly a surname.
    same_home = relations.same_household & (relations.relative_patient >= 0)
    household = patients.household
    assert (
        household[relations.patient[same_home]] == household[relations.relative_patient[same_home]]
    ).all()
    assert (
        patients.surname[relations.patient[same_home]]
        == patients.surname[relations.relative_patient[same_home]]
    ).mean() > 0.7
