"""The one entry point: ``simulate(config, out_dir) -> Summary``.

``generate`` builds the whole simulation in memory (the tests inspect it);
``simulate`` generates and writes ``out_dir``::

    context/          the hospital's context, FHIR NDJSON and CSV (see context_files)
    events.ndjson     every access, a BALP FHIR AuditEvent a line, in time order
    events.csv        the same events in the canonical access CSV
    signins.ndjson    sign-ins, DICOM 110114 AuditEvents, in time order
    labels.csv        event_id,label,scenario,case_id for every access event
    summary.json      counts by role, department, scenario and legitimate reason

One generator (``numpy.random.PCG64(seed)``) drives everything, in a fixed order, and
nothing reads the clock: the same config gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson

from custodes.simulate.accesses import MISUSE, REASONS, UNUSUAL_REASONS, EventColumns, expand
from custodes.simulate.config import ROLE_CODES, ROLES, SimulationConfig, config_for
from custodes.simulate.context_files import write_context
from custodes.simulate.encounters import Encounters, build_encounters
from custodes.simulate.hospital import Hospital, build_hospital
from custodes.simulate.scenarios import SCENARIOS, ScenarioOutcome, inject_misuse, plan_incidents
from custodes.simulate.shifts import (
    DAY,
    KIND,
    Sessions,
    Workstations,
    build_shift_sessions,
    build_workstations,
)
from custodes.simulate.workflows import legitimate_work
from custodes.simulate.writers import EventWriter, SessionStrings, write_signins

__all__ = ["Simulation", "Summary", "config_for", "generate", "simulate"]


@dataclass(slots=True)
class Simulation:
    """A generated hospital and its month, in memory, before anything is written."""

    config: SimulationConfig
    hospital: Hospital
    workstations: Workstations
    sessions: dict[str, np.ndarray]
    encounters: Encounters
    care_team: dict[str, np.ndarray]
    events: EventColumns
    outcomes: dict[str, ScenarioOutcome]
    rng: np.random.Generator

    @property
    def event_user(self) -> np.ndarray:
        return self.sessions["user"][self.events.session]

    def care_team_link(self) -> np.ndarray:
        """Per event: is the user on a documented care team of any encounter of the patient?

        The link a context-aware detector finds first, and the one whose absence the
        issue asks to be common among legitimate accesses.
        """
        patients = len(self.hospital.patients)
        pairs = (
            self.care_team["staff"] * patients
            + self.encounters.patient[self.care_team["encounter"]]
        )
        keys = self.event_user * patients + self.events.patient
        return np.isin(keys, np.unique(pairs))


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run wrote; ``data`` is ``summary.json``.

    Attributes
    ----------
    out_dir: where the files are.
    access_events, signin_events, misuse_events: line counts.
    data: the whole summary, as written.
    """

    out_dir: Path
    access_events: int
    signin_events: int
    misuse_events: int
    data: dict

    def as_json(self) -> dict:
        return self.data


def generate(config: SimulationConfig) -> Simulation:
    """Build the hospital, its sessions, encounters, work and misuse, in memory."""
    rng = np.random.Generator(np.random.PCG64(config.seed))
    planned = plan_incidents(config, rng)
    hospital = build_hospital(config, rng, minimum_leavers=planned["terminated_account"])
    workstations = build_workstations(hospital, rng)
    sessions = Sessions()
    build_shift_sessions(hospital, workstations, sessions, rng)
    encounters = build_encounters(hospital, sessions, rng)
    work = legitimate_work(hospital, encounters, sessions, workstations, rng)
    outcomes = inject_misuse(hospital, encounters, work, workstations, planned, rng)
    columns = {
        name: sessions.column(name)
        for name in ("user", "start", "end", "department", "kind", "workstation", "failures")
    }
    events = expand(
        work.touches,
        columns["start"],
        columns["end"],
        hospital.staff.role[columns["user"]],
        rng,
        config.days * DAY,
    )
    return Simulation(
        config, hospital, workstations, columns, encounters, work.team.deduplicated(),
        events, outcomes, rng,
    )  # fmt: skip


def simulate(config: SimulationConfig, out_dir: Path) -> Summary:
    """Generate a hospital and write its context, access log, sign-ins and labels.

    Parameters
    ----------
    config: from ``config_for(preset, seed, ...)``.
    out_dir: the folder to write (created; files in it are replaced).

    Returns
    -------
    The summary also written to ``out_dir/summary.json``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    simulation = generate(config)
    start = datetime.combine(config.start, datetime.min.time(), tzinfo=UTC)
    hospital = simulation.hospital
    sessions = simulation.sessions
    strings = SessionStrings(
        hospital.staff.ids,
        sessions["user"],
        sessions["workstation"],
        simulation.workstations.names,
        simulation.workstations.ips,
        config.seed,
    )
    events = simulation.events
    # The context is written in Python while Polars writes the events (it releases the
    # GIL): neither draws random numbers, so the overlap changes no byte.
    with ThreadPoolExecutor(max_workers=1) as pool:
        context_written = pool.submit(
            write_context,
            hospital,
            simulation.encounters,
            simulation.care_team,
            out_dir / "context",
        )
        with EventWriter(
            out_dir,
            seed=config.seed,
            start=start,
            sessions=strings,
            patient_ids=hospital.patients.ids,
            scenario_names=SCENARIOS,
            application=config.application,
        ) as writer:
            for first in range(0, len(events), config.chunk_events):
                index = np.arange(first, min(first + config.chunk_events, len(events)))
                writer.write(events.take(index))
        context_counts = context_written.result()
    workstation = sessions["workstation"]
    home = workstation >= simulation.workstations.home_offset
    new_device = simulation.workstations.department[workstation] < 0
    new_device &= workstation >= simulation.workstations.home_offset + len(hospital.staff)
    signins = write_signins(
        out_dir / "signins.ndjson",
        seed=config.seed,
        start=start,
        sessions=strings,
        session_start=sessions["start"],
        session_end=sessions["end"],
        session_failures=sessions["failures"],
        session_remote=home,
        session_new_device=new_device,
        application=config.application,
        window_end=config.days * DAY,
        rng=simulation.rng,
    )
    data = _summary(simulation, context_counts, signins, start)
    (out_dir / "summary.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    misuse = int((events.reason == MISUSE).sum())
    return Summary(out_dir, len(events), signins["total"], misuse, data)


def _summary(
    simulation: Simulation, context: dict[str, int], signins: dict[str, int], start: datetime
) -> dict:
    config, hospital, events = simulation.config, simulation.hospital, simulation.events
    staff = hospital.staff
    user = simulation.event_user
    misuse = events.reason == MISUSE
    link = simulation.care_team_link()
    legitimate = ~misuse

    def split(index: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        return (
            np.bincount(index[legitimate], minlength=size),
            np.bincount(index[misuse], minlength=size),
        )

    role_of_event = staff.role[user]
    legit_by_role, misuse_by_role = split(role_of_event, len(ROLES))
    staff_by_role = np.bincount(staff.role, minlength=len(ROLES))
    department_of_event = staff.department[user]
    legit_by_department, misuse_by_department = split(
        department_of_event, len(hospital.departments)
    )
    staff_by_department = np.bincount(staff.department, minlength=len(hospital.departments))
    reason = events.reason.astype(np.int64)
    by_reason = {}
    for r, name in enumerate(REASONS):
        mask = reason == r
        by_reason[name] = {
            "events": int(mask.sum()),
            "without_care_team_link": int((mask & ~link).sum()),
            "unusual": name in UNUSUAL_REASONS,
        }
    scenario = events.scenario.astype(np.int64)
    by_scenario = {}
    for s, name in enumerate(SCENARIOS, start=1):
        mask = scenario == s
        outcome = simulation.outcomes[name]
        by_scenario[name] = {
            "rate_per_1000_staff_days": getattr(config.rates, name),
            "expected_incidents": outcome.expected,
            "requested_incidents": outcome.requested,
            "incidents": int(len(np.unique(events.case[mask]))),
            "events": int(mask.sum()),
            "users": int(len(np.unique(user[mask]))),
            "patients": int(len(np.unique(events.patient[mask]))),
            "events_with_care_team_link": int((mask & link).sum()),
        }
    legit_total = int(legitimate.sum())
    without_link = int((legitimate & ~link).sum())
    hours = ((events.time % DAY) // 3_600_000).astype(np.int64)
    sessions = simulation.sessions
    end = start + timedelta(days=config.days)
    return {
        "simulator": {
            "preset": config.preset,
            "seed": config.seed,
            "start": start.isoformat().replace("+00:00", "Z"),
            "end": end.isoformat().replace("+00:00", "Z"),
            "days": config.days,
            "time_zone": "UTC",
        },
        "rates_per_1000_staff_days": {name: getattr(config.rates, name) for name in SCENARIOS},
        "counts": {
            "access_events": len(events),
            "legitimate_events": legit_total,
            "misuse_events": int(misuse.sum()),
            "signin_events": signins["total"],
            "sessions": len(sessions["user"]),
            "staff": len(staff),
            "patients": len(hospital.patients),
            "encounters": len(simulation.encounters),
            "care_team_memberships": len(simulation.care_team["staff"]),
            "relations": len(hospital.relations),
            "relations_recorded": int(hospital.relations.recorded.sum()),
            "vip_patients": int(hospital.patients.vip.sum()),
            "staff_who_are_patients": int((staff.patient >= 0).sum()),
            "context_resources": context,
        },
        "legitimate": {
            "events": legit_total,
            "without_care_team_link": without_link,
            "without_care_team_link_share": round(without_link / max(legit_total, 1), 4),
            "unusual_events": int(
                np.isin(reason, [REASONS.index(n) for n in UNUSUAL_REASONS]).sum()
            ),
            "by_reason": by_reason,
        },
        "misuse": {
            "events": int(misuse.sum()),
            "with_care_team_link": int((misuse & link).sum()),
            "during_sessions_at_hospital_workstations": int(
                (
                    misuse
                    & (
                        simulation.workstations.department[sessions["workstation"][events.session]]
                        >= 0
                    )
                ).sum()
            ),
            "by_scenario": by_scenario,
        },
        "by_role": {
            code: {
                "staff": int(staff_by_role[i]),
                "events": int(legit_by_role[i] + misuse_by_role[i]),
                "misuse_events": int(misuse_by_role[i]),
            }
            for i, code in enumerate(ROLE_CODES)
        },
        "by_department": {
            department_id: {
                "staff": int(staff_by_department[i]),
                "events": int(legit_by_department[i] + misuse_by_department[i]),
                "misuse_events": int(misuse_by_department[i]),
            }
            for i, department_id in enumerate(hospital.departments.ids)
        },
        "events_by_hour": np.bincount(hours, minlength=24).tolist(),
        "sessions_by_kind": {name: int((sessions["kind"] == k).sum()) for name, k in KIND.items()},
        "signins": signins,
    }


def run_preset(
    preset: str,
    seed: int,
    out_dir: Path,
    *,
    staff: int | None = None,
    patients: int | None = None,
    days: int | None = None,
    rates: Mapping[str, float] | None = None,
) -> Summary:
    """``config_for`` then ``simulate``: what ``custodes simulate`` calls."""
    return simulate(config_for(preset, seed, staff, patients, days, rates), out_dir)
