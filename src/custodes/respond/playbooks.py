"""Playbooks in YAML: which cases trigger which actions.

A playbook's trigger names case kinds, a least severity and ATT&CK tactics (any of
them); its actions each say whether they run at once (``auto``) or wait for a privacy
officer's approval, and after how long they are undone (``undo_after``), if ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from custodes.core.cases import Case, Severity
from custodes.core.errors import InputFormatError

ACTION_TYPES = (
    "webhook",
    "email",
    "syslog",
    "lock_account",
    "revoke_sessions",
    "revoke_tokens",
    "require_step_up",
    "require_mfa_reenrolment",
    "ticket",
)
MODES = ("auto", "approval")


@dataclass(frozen=True)
class ActionSpec:
    type: str
    mode: str = "auto"
    params: dict[str, Any] = field(default_factory=dict)
    undo_after: timedelta | None = None


@dataclass(frozen=True)
class Trigger:
    kinds: tuple[str, ...] = ()
    min_severity: Severity = Severity.LOW
    tactics: tuple[str, ...] = ()

    def matches(self, case: Case) -> bool:
        """Every named condition must hold; an empty one holds for every case."""
        if self.kinds and case.kind not in self.kinds:
            return False
        if case.severity.rank < self.min_severity.rank:
            return False
        return not self.tactics or bool(set(self.tactics) & set(case.tactics))


@dataclass(frozen=True)
class Playbook:
    name: str
    trigger: Trigger
    actions: tuple[ActionSpec, ...]


def _duration(text: str | None, where: str) -> timedelta | None:
    if text is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = str(text).strip()
    if raw[-1:] in units and raw[:-1].isdigit():
        return timedelta(seconds=int(raw[:-1]) * units[raw[-1]])
    raise InputFormatError(f"{where}: duration {raw!r} is not like 30s, 15m, 1h or 1d")


def parse_playbooks(text: str, source: str = "playbooks") -> tuple[Playbook, ...]:
    """Playbooks from YAML text; every mistake is one line naming the playbook."""
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise InputFormatError(f"{source} is not valid YAML: {err}") from err
    books = []
    for number, raw in enumerate(document.get("playbooks", []), start=1):
        where = f"{source}: playbook {raw.get('name', number) if isinstance(raw, dict) else number}"
        if not isinstance(raw, dict) or "name" not in raw or not raw.get("actions"):
            raise InputFormatError(f"{where} needs a name and actions")
        when = raw.get("when") or {}
        try:
            trigger = Trigger(
                kinds=tuple(when.get("kinds", ())),
                min_severity=Severity(when.get("min_severity", "low")),
                tactics=tuple(when.get("tactics", ())),
            )
        except ValueError as err:
            raise InputFormatError(f"{where}: {err}") from err
        actions = []
        for spec in raw["actions"]:
            spec = dict(spec)
            kind = spec.pop("type", None)
            mode = spec.pop("mode", "auto")
            if kind not in ACTION_TYPES:
                raise InputFormatError(
                    f"{where}: action type {kind!r} is not one of {', '.join(ACTION_TYPES)}"
                )
            if mode not in MODES:
                raise InputFormatError(f"{where}: mode {mode!r} is not auto or approval")
            undo = _duration(spec.pop("undo_after", None), where)
            actions.append(ActionSpec(kind, mode, spec, undo))
        books.append(Playbook(raw["name"], trigger, tuple(actions)))
    return tuple(books)


def load_playbooks(path: Path | None = None) -> tuple[Playbook, ...]:
    """The playbooks in ``path`` (default: the shipped ``default_playbooks.yml``)."""
    path = path or Path(__file__).with_name("default_playbooks.yml")
    try:
        text = path.read_text()
    except OSError as err:
        raise InputFormatError(f"cannot read playbooks {path}: {err.strerror}") from err
    return parse_playbooks(text, path.name)
