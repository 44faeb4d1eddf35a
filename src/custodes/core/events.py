"""Events: every access to a patient record, every sign-in, every network flow.

A single event is an immutable dataclass. Large numbers of events travel as Polars
data frames whose columns are exactly the dataclass fields (``ACCESS_EVENT_SCHEMA``
and friends); ``AccessEvent.from_row`` and ``AccessEvent.to_row`` convert between the
two, and a test holds the schema and the dataclass to the same fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import polars as pl


class Action(StrEnum):
    """What the user did to the record (the FHIR RESTful interaction, widened)."""

    READ = "read"
    VREAD = "vread"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    PRINT = "print"
    EXPORT = "export"
    EXECUTE = "execute"


class Outcome(StrEnum):
    """Whether the action succeeded (FHIR R4 ``AuditEvent.outcome``: 0, 4, 8, 12)."""

    SUCCESS = "success"
    MINOR_FAILURE = "minor_failure"
    SERIOUS_FAILURE = "serious_failure"
    MAJOR_FAILURE = "major_failure"


#: Purposes of use that mean "emergency access outside the usual rules".
BREAK_THE_GLASS_PURPOSES = frozenset({"ETREAT", "BTG", "ERTREAT"})


class SignInKind(StrEnum):
    """What happened at the front door."""

    LOGIN = "login"
    LOGOUT = "logout"
    MFA = "mfa"
    LOCKOUT = "lockout"
    STEP_UP = "step_up"


@dataclass(frozen=True, slots=True)
class AccessEvent:
    """One access by one user to one patient's record.

    Attributes
    ----------
    event_id: the source's id for the event, or a content hash when it has none.
    time: when it happened, timezone-aware, in UTC.
    user_id: the staff member (or service account) who acted.
    patient_id: whose record was touched.
    action: read, search, create, update, delete, print, export, ...
    resource_type: the FHIR type or EHR screen that was touched (``Observation``).
    resource_id: its id, when the source gives one.
    application: the software the user worked in (EHR, portal, reporting tool).
    workstation: the device or terminal id.
    source_ip: the network address the request came from.
    outcome: whether the action succeeded.
    purpose_of_use: the declared purpose (HL7 v3 PurposeOfUse code: TREAT, HPAYMT, ...).
    break_the_glass: True when the purpose declares emergency access (ETREAT, BTG).
    session_id: the sign-in session the access belongs to.
    source_format: the reader that produced the event (``fhir-auditevent``, ``csv``).
    source_file: the file (base name) it came from.
    source_line: its line number in that file (1-based; entry number in a Bundle).
    """

    event_id: str
    time: datetime
    user_id: str
    patient_id: str
    action: Action
    resource_type: str | None = None
    resource_id: str | None = None
    application: str | None = None
    workstation: str | None = None
    source_ip: str | None = None
    outcome: Outcome = Outcome.SUCCESS
    purpose_of_use: str | None = None
    break_the_glass: bool = False
    session_id: str | None = None
    source_format: str | None = None
    source_file: str | None = None
    source_line: int | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("AccessEvent.time must be timezone-aware")
        if self.time.utcoffset() != UTC.utcoffset(None):
            object.__setattr__(self, "time", self.time.astimezone(UTC))

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["action"] = str(self.action)
        row["outcome"] = str(self.outcome)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AccessEvent:
        values = {f.name: row.get(f.name) for f in fields(cls)}
        values["action"] = Action(values["action"])
        values["outcome"] = Outcome(values["outcome"] or Outcome.SUCCESS)
        values["break_the_glass"] = bool(values["break_the_glass"])
        time = values["time"]
        if time.tzinfo is None:  # Polars hands back naive datetimes for UTC columns
            values["time"] = time.replace(tzinfo=UTC)
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SignInEvent:
    """One event at the front door: a login, logout, MFA challenge, lockout or step-up.

    Attributes
    ----------
    event_id: the source's id, or a content hash.
    time: when, timezone-aware UTC.
    user_id: who signed in (or tried to); the name typed when no account matched.
    kind: login, logout, mfa, lockout, step_up.
    outcome: success or a failure grade.
    source_ip: where the attempt came from.
    device: the workstation or device id.
    application: the system signed in to.
    session_id: the session created or ended.
    mfa_method: ``totp``, ``webauthn``, ... when a second factor was used.
    source_format, source_file, source_line: provenance, as for ``AccessEvent``.
    """

    event_id: str
    time: datetime
    user_id: str
    kind: SignInKind
    outcome: Outcome = Outcome.SUCCESS
    source_ip: str | None = None
    device: str | None = None
    application: str | None = None
    session_id: str | None = None
    mfa_method: str | None = None
    source_format: str | None = None
    source_file: str | None = None
    source_line: int | None = None

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row["kind"] = str(self.kind)
        row["outcome"] = str(self.outcome)
        return row


@dataclass(frozen=True, slots=True)
class NetworkFlowEvent:
    """One network flow (NetFlow/IPFIX or firewall log record), for exfiltration checks.

    Attributes
    ----------
    event_id: the source's id, or a content hash.
    time: flow start, timezone-aware UTC.
    source_ip, source_port, destination_ip, destination_port: the endpoints.
    protocol: ``tcp``, ``udp``, ...
    bytes_out: bytes sent from source to destination.
    bytes_in: bytes received.
    duration_seconds: flow length.
    device: the host the flow was seen on.
    """

    event_id: str
    time: datetime
    source_ip: str
    destination_ip: str
    protocol: str
    source_port: int | None = None
    destination_port: int | None = None
    bytes_out: int = 0
    bytes_in: int = 0
    duration_seconds: float = 0.0
    device: str | None = None


_UTC_TIME = pl.Datetime("us", "UTC")

#: The columns of a batch of access events, in order, with their types.
ACCESS_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "time": _UTC_TIME,
    "user_id": pl.String(),
    "patient_id": pl.String(),
    "action": pl.String(),
    "resource_type": pl.String(),
    "resource_id": pl.String(),
    "application": pl.String(),
    "workstation": pl.String(),
    "source_ip": pl.String(),
    "outcome": pl.String(),
    "purpose_of_use": pl.String(),
    "break_the_glass": pl.Boolean(),
    "session_id": pl.String(),
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
}

#: The columns of a batch of sign-in events.
SIGNIN_EVENT_SCHEMA: dict[str, pl.DataType] = {
    "event_id": pl.String(),
    "time": _UTC_TIME,
    "user_id": pl.String(),
    "kind": pl.String(),
    "outcome": pl.String(),
    "source_ip": pl.String(),
    "device": pl.String(),
    "application": pl.String(),
    "session_id": pl.String(),
    "mfa_method": pl.String(),
    "source_format": pl.String(),
    "source_file": pl.String(),
    "source_line": pl.Int64(),
}


def empty_access_events() -> pl.DataFrame:
    """A batch with the access-event columns and no rows."""
    return pl.DataFrame(schema=ACCESS_EVENT_SCHEMA)


def empty_signin_events() -> pl.DataFrame:
    """A batch with the sign-in columns and no rows."""
    return pl.DataFrame(schema=SIGNIN_EVENT_SCHEMA)
