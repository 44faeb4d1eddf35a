"""Access events, sign-ins and labels, written in bulk with Polars string expressions.

Every access event is written as an IHE BALP FHIR AuditEvent, byte for byte in the shape
``custodes.ingest.fhir_audit.audit_event_resource`` makes (key order included; a test
holds the two together), as a row of the canonical access CSV, and as a row of the
labels file. Lines are assembled per chunk from pieces: what depends only on the
session (user, workstation, address) or the action or the purpose is formatted once and
gathered, so each line costs a handful of string copies.

Sign-ins are DICOM 110114 User Authentication AuditEvents in the shape of
``signin_audit_event_resource``, with two additions the reader takes or ignores: the
device, as a workstation agent (read as ``device``), and how the user authenticated, as
a second ``subtype`` coding of system ``urn:custodes:authentication`` on logins
(``badge`` at a hospital workstation, ``mfa-push`` from outside, ``password`` for a
remote attempt that failed at the password; not read by the current reader).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np
import polars as pl

from custodes.ingest.csv_access import CANONICAL_HEADER
from custodes.simulate.accesses import (
    ACTIONS,
    APPLICATIONS,
    MISUSE,
    PURPOSES,
    RESOURCE_TYPES,
    EventColumns,
)

_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ACTION_LETTER = {"read": "R", "search": "E", "create": "C", "update": "U"}
_OUTCOMES = ("0", "4", "8")
_OUTCOME_WORDS = ("success", "minor_failure", "serious_failure")
AUTHENTICATION_SYSTEM = "urn:custodes:authentication"
LABEL_HEADER = ("event_id", "label", "scenario", "case_id")


def epoch_ms(start: datetime) -> int:
    """Milliseconds since the Unix epoch of the simulation start."""
    return int(start.replace(tzinfo=UTC).timestamp() * 1000)


def _instant(ms: pl.Expr) -> pl.Expr:
    """UTC instants with milliseconds and a Z: ``2026-03-02T08:15:30.123Z``."""
    return pl.from_epoch(ms, time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")


def _gather(strings: list[str] | pl.Series, index: np.ndarray) -> pl.Series:
    series = strings if isinstance(strings, pl.Series) else pl.Series(strings, dtype=pl.String)
    return series.gather(pl.Series(index, dtype=pl.Int64))


def _workstation_agent(device: str) -> str:
    return (
        f',{{"type":{{"coding":[{{"system":"{_DCM}","code":"110153"}}]}},'
        f'"who":{{"identifier":{{"value":"{device}"}}}},"requestor":false,'
        f'"network":{{"address":"{device}","type":"1"}}}}'
    )


def _user_agent(staff_id: str, ip: str) -> str:
    return (
        f'{{"who":{{"reference":"Practitioner/{staff_id}"}},"requestor":true,'
        f'"network":{{"address":"{ip}","type":"2"}}}}'
    )


class SessionStrings:
    """What each session contributes to a line, formatted once per session."""

    def __init__(
        self,
        staff_ids: list[str],
        session_user: np.ndarray,
        session_workstation: np.ndarray,
        workstation_names: list[str],
        workstation_ips: list[str],
        seed: int,
    ) -> None:
        users = [staff_ids[u] for u in session_user.tolist()]
        devices = [workstation_names[w] for w in session_workstation.tolist()]
        ips = [workstation_ips[w] for w in session_workstation.tolist()]
        self.user = pl.Series(users, dtype=pl.String)
        self.device = pl.Series(devices, dtype=pl.String)
        self.ip = pl.Series(ips, dtype=pl.String)
        self.session_id = pl.Series([f"ses-{seed}-{k}" for k in range(len(users))], dtype=pl.String)
        self.agents = pl.Series(
            [
                f'"agent":[{_user_agent(u, ip)}{_workstation_agent(d)}]'
                for u, ip, d in zip(users, ips, devices, strict=True)
            ],
            dtype=pl.String,
        )


# --- access events ------------------------------------------------------------------------


def _action_pieces() -> list[str]:
    return [
        f'"subtype":[{{"system":"{_INTERACTION}","code":"{a}"}}],'
        f'"action":"{_ACTION_LETTER.get(a, "E")}"'
        for a in ACTIONS
    ]


def _purpose_pieces() -> list[str]:
    return [
        ',"purposeOfEvent":[{"coding":[{"system":'
        f'"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"{p}"}}]}}]'
        for p in PURPOSES
    ]


_EVENT_HEAD = '{"resourceType":"AuditEvent","id":"'
_EVENT_TYPE = (
    '","type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},'
)
_PATIENT_ENTITY = '"entity":[{"what":{"reference":"Patient/'
_PATIENT_ROLE = (
    '"},"role":{"system":"http://terminology.hl7.org/CodeSystem/object-role","code":"1"}}'
)


class EventWriter:
    """Writes events.ndjson, events.csv and labels.csv, chunk by chunk, in time order."""

    def __init__(
        self,
        folder: Path,
        *,
        seed: int,
        start: datetime,
        sessions: SessionStrings,
        patient_ids: list[str],
        scenario_names: tuple[str, ...],
        application: str,
    ) -> None:
        self.folder = folder
        self.prefix = f"sim-{seed}-"
        self.epoch = epoch_ms(start)
        self.sessions = sessions
        self.patients = pl.Series(patient_ids, dtype=pl.String)
        self.scenarios = pl.Series([None, *scenario_names], dtype=pl.String)
        self.applications = pl.Series([application, *APPLICATIONS[1:]], dtype=pl.String)
        self.actions = pl.Series(_action_pieces(), dtype=pl.String)
        self.purposes = pl.Series(_purpose_pieces(), dtype=pl.String)
        self.written = 0
        self._ndjson: BinaryIO = open(folder / "events.ndjson", "wb")  # noqa: SIM115
        self._csv: BinaryIO = open(folder / "events.csv", "wb")  # noqa: SIM115
        self._labels: BinaryIO = open(folder / "labels.csv", "wb")  # noqa: SIM115
        self._csv.write((",".join(CANONICAL_HEADER) + "\n").encode())
        self._labels.write((",".join(LABEL_HEADER) + "\n").encode())

    def close(self) -> None:
        for handle in (self._ndjson, self._csv, self._labels):
            handle.close()

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frame(self, events: EventColumns) -> pl.DataFrame:
        """The string columns of a chunk of events (numbered from ``self.written``)."""
        n = len(events)
        session = events.session
        resource_type = _gather(list(RESOURCE_TYPES), events.resource)
        patient = _gather(self.patients, events.patient)
        frame = pl.DataFrame(
            {
                "number": np.arange(self.written, self.written + n, dtype=np.int64),
                "ms": events.time + self.epoch,
                "user_id": _gather(self.sessions.user, session),
                "patient_id": patient,
                "action": _gather(list(ACTIONS), events.action),
                "resource_type": resource_type,
                "resource_number": events.resource_number,
                "application": _gather(self.applications, events.application),
                "workstation": _gather(self.sessions.device, session),
                "source_ip": _gather(self.sessions.ip, session),
                "outcome_code": _gather(list(_OUTCOMES), events.outcome),
                "outcome": _gather(list(_OUTCOME_WORDS), events.outcome),
                "purpose_of_use": _gather(list(PURPOSES), events.purpose),
                "session_id": _gather(self.sessions.session_id, session),
                "agents": _gather(self.sessions.agents, session),
                "action_piece": _gather(self.actions, events.action),
                "purpose_piece": _gather(self.purposes, events.purpose),
                "misuse": events.reason == MISUSE,
                "scenario": _gather(self.scenarios, events.scenario),
                "case": events.case,
            }
        )
        is_patient = pl.col("resource_type") == "Patient"
        return frame.with_columns(
            event_id=pl.lit(self.prefix) + pl.col("number").cast(pl.String),
            time=_instant(pl.col("ms")),
            resource_id=pl.when(is_patient)
            .then(pl.col("patient_id"))
            .otherwise(pl.col("patient_id") + "-" + pl.col("resource_number").cast(pl.String)),
        )

    def write(self, events: EventColumns) -> None:
        if len(events) == 0:
            return
        frame = self.frame(events)
        self._write_ndjson(frame)
        frame.select(CANONICAL_HEADER).write_csv(self._csv, include_header=False)
        frame.select(
            "event_id",
            label=pl.col("misuse").cast(pl.Int8),
            scenario="scenario",
            case_id=pl.when(pl.col("misuse")).then(
                pl.lit("case-") + pl.col("case").cast(pl.String).str.zfill(5)
            ),
        ).write_csv(self._labels, include_header=False)
        self.written += len(events)

    def _write_ndjson(self, frame: pl.DataFrame) -> None:
        resource_entity = (
            pl.when(pl.col("resource_type") == "Patient")
            .then(pl.lit(""))
            .otherwise(
                pl.lit(',{"what":{"reference":"')
                + pl.col("resource_type")
                + "/"
                + pl.col("resource_id")
                + '"}}'
            )
        )
        line = pl.concat_str(
            [
                pl.lit(_EVENT_HEAD),
                pl.col("event_id"),
                pl.lit(_EVENT_TYPE),
                pl.col("action_piece"),
                pl.lit(',"recorded":"'),
                pl.col("time"),
                pl.lit('","outcome":"'),
                pl.col("outcome_code"),
                pl.lit('",'),
                pl.col("agents"),
                pl.lit(',"source":{"observer":{"display":"'),
                pl.col("application"),
                pl.lit('"}},'),
                pl.lit(_PATIENT_ENTITY),
                pl.col("patient_id"),
                pl.lit(_PATIENT_ROLE),
                resource_entity,
                pl.lit("]"),
                pl.col("purpose_piece"),
                pl.lit("}"),
            ]  # fmt: skip
        )
        frame.select(line.alias("line")).write_csv(
            self._ndjson, include_header=False, quote_style="never"
        )


# --- sign-ins ------------------------------------------------------------------------------


def write_signins(
    path: Path,
    *,
    seed: int,
    start: datetime,
    sessions: SessionStrings,
    session_start: np.ndarray,
    session_end: np.ndarray,
    session_failures: np.ndarray,
    session_remote: np.ndarray,
    session_new_device: np.ndarray,
    application: str,
    window_end: int,
    rng: np.random.Generator,
) -> dict[str, int]:
    """One login per session (after any failed attempts), and a logout for most.

    On-site sessions authenticate with a badge tap; remote ones with a password and a
    push to the phone (``mfa-push``). Three sessions in a hundred begin with a mistyped
    password. An intruder's failures are refused second factors (outcome 8). Returns
    counts by kind and outcome.
    """
    n = len(session_start)
    typos = (rng.random(n) < 0.03).astype(np.int64)
    failures = np.where(session_failures > 0, session_failures, typos)
    login = session_start - rng.integers(5_000, 60_000, size=n)
    method = np.where(session_remote, 2, 0)  # index into the method words below
    # Failed attempts just before the login, 10-40 seconds apart.
    failed_session = np.repeat(np.arange(n), failures)
    back = np.arange(len(failed_session)) - np.repeat(np.cumsum(failures) - failures, failures)
    failed_time = login[failed_session] - (back + 1) * rng.integers(10_000, 40_000, size=len(back))
    refused = session_new_device[failed_session]
    logs_out = (rng.random(n) < 0.85) & (session_end < window_end)
    logout_session = np.flatnonzero(logs_out)
    logout_time = session_end[logout_session] + rng.integers(0, 60_000, size=len(logout_session))
    session = np.concatenate([failed_session, np.arange(n), logout_session])
    time = np.concatenate([failed_time, login, logout_time])
    kind = np.concatenate(
        [np.zeros(len(failed_session)), np.zeros(n), np.ones(len(logout_session))]
    ).astype(np.int64)
    outcome = np.concatenate(
        [np.where(refused, 2, 1), np.zeros(n), np.zeros(len(logout_session))]
    ).astype(np.int64)
    how = np.concatenate(
        [np.where(refused, 2, np.where(session_remote[failed_session], 1, 0)), method,
         np.full(len(logout_session), -1)]
    )  # fmt: skip
    keep = (time >= 0) & (time < window_end)
    order = np.flatnonzero(keep)[np.argsort(time[keep], kind="stable")]
    session, time, kind, outcome, how = (a[order] for a in (session, time, kind, outcome, how))
    methods = ["badge", "password", "mfa-push"]
    method_pieces = pl.Series(
        [f',{{"system":"{AUTHENTICATION_SYSTEM}","code":"{m}"}}' for m in methods] + [""],
        dtype=pl.String,
    )
    frame = pl.DataFrame(
        {
            "number": np.arange(len(order), dtype=np.int64),
            "ms": time + epoch_ms(start),
            "code": _gather(["110122", "110123"], kind),
            "method": _gather(method_pieces, np.where(how < 0, len(methods), how)),
            "outcome": _gather(list(_OUTCOMES), outcome),
            "user": _gather(sessions.user, session),
            "ip": _gather(sessions.ip, session),
            "device": _gather(sessions.device, session),
        }
    )
    line = pl.concat_str(
        [
            pl.lit('{"resourceType":"AuditEvent","id":"'),
            pl.lit(f"sim-{seed}-signin-") + pl.col("number").cast(pl.String),
            pl.lit(
                f'","type":{{"system":"{_DCM}","code":"110114","display":"User Authentication"}},'
                f'"subtype":[{{"system":"{_DCM}","code":"'
            ),
            pl.col("code"),
            pl.lit('"}'),
            pl.col("method"),
            pl.lit('],"action":"E","recorded":"'),
            _instant(pl.col("ms")),
            pl.lit('","outcome":"'),
            pl.col("outcome"),
            pl.lit('","agent":[{"who":{"reference":"Practitioner/'),
            pl.col("user"),
            pl.lit('"},"requestor":true,"network":{"address":"'),
            pl.col("ip"),
            pl.lit('","type":"2"}}'),
            pl.lit(
                ',{"type":{"coding":[{"system":"' + _DCM + '","code":"110153"}]},'
                '"who":{"identifier":{"value":"'
            ),
            pl.col("device"),
            pl.lit('"}},"requestor":false,"network":{"address":"'),
            pl.col("device"),
            pl.lit('","type":"1"}}],"source":{"observer":{"display":"' + application + '"}}}'),
        ]  # fmt: skip
    )
    frame.select(line.alias("line")).write_csv(path, include_header=False, quote_style="never")
    counts = {
        "logins": int(((kind == 0) & (outcome == 0)).sum()),
        "failed_logins": int(((kind == 0) & (outcome > 0)).sum()),
        "refused_second_factor": int(((kind == 0) & (outcome == 2)).sum()),
        "logins_with_mfa": int(((kind == 0) & (how == 2) & (outcome == 0)).sum()),
        "logouts": int((kind == 1).sum()),
    }
    counts["total"] = len(order)
    return counts
