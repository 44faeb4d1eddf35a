"""Response actions: one class per action, the same two methods, ``perform`` and ``undo``.

Notifications carry the case's story and ids, never a name or a record's content.
Webhooks are signed: ``X-Custodes-Signature: sha256=<hex>``, an HMAC-SHA256 over
``<X-Custodes-Timestamp>.<body>``, so a receiver can reject forged and replayed posts.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import socket
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import httpx
import orjson

from custodes.core.cases import Case, Severity
from custodes.core.ports import AccountControl
from custodes.respond.plan import ACCOUNT_ACTIONS, PlannedAction

SIGNATURE_HEADER = "X-Custodes-Signature"
TIMESTAMP_HEADER = "X-Custodes-Timestamp"

_CEF_SEVERITY = {Severity.LOW: 3, Severity.MEDIUM: 5, Severity.HIGH: 8, Severity.CRITICAL: 10}


class ActionFailedError(Exception):
    """An action could not be performed; the message is safe to record.

    ``retryable`` is False when trying again cannot help (an unknown account).
    """

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def sign(key: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value.

    >>> sign(b"k", "1700000000", b"{}")[:7]
    'sha256='
    """
    mac = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(key: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """A receiver's check, in constant time."""
    return hmac.compare_digest(sign(key, timestamp, body), signature)


class ResponseAction(Protocol):
    type: str
    undoable: bool

    def perform(self, step: PlannedAction, case: Case, at: datetime) -> str: ...

    def undo(self, step: PlannedAction, case: Case, at: datetime) -> str: ...


class _NotUndoable:
    undoable = False

    def undo(self, step: PlannedAction, case: Case, at: datetime) -> str:
        raise ActionFailedError(f"{step.type} cannot be undone")


@dataclass
class WebhookAction(_NotUndoable):
    """POST the case as JSON, signed with HMAC-SHA256 (also the ticket action)."""

    url: str
    key: bytes
    type: str = "webhook"
    timeout: float = 5.0
    transport: httpx.BaseTransport | None = None

    def perform(self, step: PlannedAction, case: Case, at: datetime) -> str:
        body = orjson.dumps(
            {
                "event": step.type,
                "step_id": step.step_id,
                "playbook": step.playbook,
                "case": case.summary(),
            }
        )
        timestamp = str(int(at.timestamp()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.key, timestamp, body),
            "Idempotency-Key": step.step_id,
        }
        try:
            with httpx.Client(timeout=self.timeout, transport=self.transport) as client:
                response = client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            raise ActionFailedError(f"{self.type}: {type(err).__name__}") from err
        if response.status_code >= 300:
            raise ActionFailedError(f"{self.type}: the receiver answered {response.status_code}")
        return f"{self.type} delivered ({response.status_code})"


@dataclass
class EmailAction(_NotUndoable):
    """A plain-text e-mail over SMTP (STARTTLS when asked)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0
    type: str = "email"

    def perform(self, step: PlannedAction, case: Case, at: datetime) -> str:
        if not self.recipients:
            raise ActionFailedError("email: no recipients configured")
        message = EmailMessage()
        message["Subject"] = f"[Custodes] {case.severity} case {case.case_id}: {case.kind}"
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Message-ID"] = f"<{step.step_id}@custodes>"
        lines = [*case.story, "", "ATT&CK: " + ", ".join(case.tactics) if case.tactics else ""]
        message.set_content("\n".join(lines).strip() + "\n")
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username and self.password:
                    smtp.login(self.username, self.password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as err:
            raise ActionFailedError(f"email: {type(err).__name__}") from err
        return f"email sent to {len(self.recipients)} recipient(s)"


def _cef_header(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cef_value(text: str) -> str:
    return text.replace("\\", "\\\\").replace("=", "\\=").replace("\n", "\\n").replace("\r", "\\r")


def cef_message(case: Case, step: PlannedAction, version: str = "0") -> str:
    """The case as one ArcSight CEF line.

    >>> from datetime import UTC, datetime
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> c = Case("c1", "mass_access", "u|1", Severity.HIGH, 91, t, t, ("a",), 12)
    >>> s = PlannedAction("r1", "c1", "p", "syslog", "u|1", "auto")
    >>> cef_message(c, s)[:52]
    'CEF:0|Custodes|Custodes|0|mass_access|Custodes case '
    """
    extension = {
        "suser": case.user_id,
        "cs1Label": "caseId",
        "cs1": case.case_id,
        "cnt": str(case.alert_count),
        "cn1Label": "patients",
        "cn1": str(case.patient_count),
        "start": str(int(case.first_time.timestamp() * 1000)),
        "end": str(int(case.last_time.timestamp() * 1000)),
        "msg": " | ".join(case.story[:2]),
        "cs2Label": "tactics",
        "cs2": ", ".join(case.tactics),
    }
    return "CEF:0|Custodes|Custodes|{}|{}|{}|{}|{}".format(
        _cef_header(version),
        _cef_header(case.kind),
        _cef_header(f"Custodes case {case.severity}"),
        _CEF_SEVERITY[case.severity],
        " ".join(f"{k}={_cef_value(v)}" for k, v in extension.items()),
    )


@dataclass
class SyslogAction(_NotUndoable):
    """The case in CEF over syslog (RFC 5424 header), by UDP or TCP."""

    host: str
    port: int
    protocol: str = "udp"
    hostname: str = "custodes"
    timeout: float = 5.0
    type: str = "syslog"

    def perform(self, step: PlannedAction, case: Case, at: datetime) -> str:
        priority = 8 * 13 + 2  # facility log audit (13), severity critical (2)
        line = (
            f"<{priority}>1 {at.strftime('%Y-%m-%dT%H:%M:%S.%fZ')} {self.hostname} custodes - "
            f"case - {cef_message(case, step)}"
        ).encode()
        try:
            if self.protocol == "tcp":
                with socket.create_connection((self.host, self.port), self.timeout) as sock:
                    sock.sendall(line + b"\n")  # non-transparent framing (RFC 6587)
            else:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.sendto(line, (self.host, self.port))
        except OSError as err:
            raise ActionFailedError(f"syslog: {type(err).__name__}") from err
        return f"syslog sent over {self.protocol}"


@dataclass
class AccountAction:
    """What a response does to an account, through ``AccountControl``: lock it, revoke
    its sessions or API tokens, demand a step-up before its next sensitive operation,
    or reset its second factors so that it enrols again at its next sign-in.

    Each is idempotent (done twice, the account ends the same). A lock and a step-up
    demand can be undone; revocations and a reset cannot (what was ended stays ended).
    """

    accounts: AccountControl
    type: str

    @property
    def undoable(self) -> bool:
        return self.type in _UNDO

    def perform(self, step: PlannedAction, case: Case, at: datetime) -> str:
        user = step.target_user
        try:
            if self.type == "lock_account":
                self.accounts.lock(user)
                return "account locked; its sessions and tokens revoked"
            if self.type == "revoke_sessions":
                return f"{self.accounts.revoke_sessions(user)} session(s) revoked"
            if self.type == "require_step_up":
                self.accounts.require_step_up(user)
                return "the next sensitive operation needs a new second factor"
            if self.type == "require_mfa_reenrolment":
                removed = self.accounts.require_mfa_reenrolment(user)
                return f"{removed} second factor(s) reset; enrols again at the next sign-in"
            return f"{self.accounts.revoke_tokens(user)} token(s) revoked"
        except LookupError as err:
            raise ActionFailedError(f"{self.type}: no such account", retryable=False) from err

    def undo(self, step: PlannedAction, case: Case, at: datetime) -> str:
        if self.type not in _UNDO:
            raise ActionFailedError(f"{self.type} cannot be undone")
        try:
            if self.type == "lock_account":
                self.accounts.unlock(step.target_user)
            else:
                self.accounts.withdraw_step_up(step.target_user)
        except LookupError as err:
            raise ActionFailedError(f"{self.type}: no such account") from err
        return _UNDO[self.type]


#: The account actions that can be undone, and what undoing them says.
_UNDO = {"lock_account": "account unlocked", "require_step_up": "step-up demand withdrawn"}



@dataclass
class ActionRegistry:
    """The actions an executor may perform, by type; registering checks the contract."""

    actions: dict[str, ResponseAction] = field(default_factory=dict)

    def register(self, action: ResponseAction) -> ActionRegistry:
        for name in ("type", "undoable", "perform", "undo"):
            if not hasattr(action, name):
                raise TypeError(f"{type(action).__name__} is not a response action ({name})")
        self.actions[action.type] = action
        return self

    def get(self, kind: str) -> ResponseAction | None:
        return self.actions.get(kind)

    @classmethod
    def of(cls, *actions: ResponseAction) -> ActionRegistry:
        registry = cls()
        for action in actions:
            registry.register(action)
        return registry


def account_actions(accounts: AccountControl) -> list[AccountAction]:
    return [AccountAction(accounts, kind) for kind in ACCOUNT_ACTIONS]
