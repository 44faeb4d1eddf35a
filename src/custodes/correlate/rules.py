"""Correlation rules in the vocabulary of Sigma correlations (pySigma ``correlations.py``).

``event_count``: at least ``gte`` alerts of one group within the timespan;
``value_count``: at least ``gte`` distinct values of ``field`` (patients opened);
``temporal``: every stage of ``stages`` seen within the timespan, in any order;
``temporal_ordered``: the stages seen in that order (unusual sign-in, then mass access,
then export). Each rule names the ATT&CK tactics its story maps to and the least
severity of the case it makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Literal

import yaml

from custodes.core.cases import Severity
from custodes.core.errors import InputFormatError

CORRELATION_TYPES = ("event_count", "value_count", "temporal", "temporal_ordered")

#: What each stage of a chain means, as an ATT&CK tactic.
STAGE_TACTICS = {
    "unusual_signin": "TA0001 Initial Access",
    "access": "TA0009 Collection",
    "export": "TA0010 Exfiltration",
}

#: What a case is about: one user's alerts, or the alerts on one patient's record.
CorrelationSubject = Literal["user", "patient"]

#: The ``group-by`` of a rule, and the subject of the cases it makes.
GROUP_BY_SUBJECTS: dict[tuple[str, ...], CorrelationSubject] = {
    ("user_id",): "user",
    ("patient_id",): "patient",
}

#: Actions that take data out of the record system: the export stage.
EXPORT_ACTIONS = ("export", "print")


@dataclass(frozen=True)
class CorrelationRule:
    """One Sigma-style correlation over the alerts of one user (``group-by: [user_id]``)
    or of one patient's record (``group-by: [patient_id]``) within its timespan."""

    name: str
    type: str
    timespan: timedelta
    severity: Severity
    gte: int = 1
    field: str | None = None
    stages: tuple[str, ...] = ()
    tactics: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ("user_id",)
    title: str = ""

    def __post_init__(self) -> None:
        if self.type not in CORRELATION_TYPES:
            raise InputFormatError(
                f"correlation rule {self.name!r}: type {self.type!r} is not one of "
                f"{', '.join(CORRELATION_TYPES)}"
            )
        if self.type == "value_count" and not self.field:
            raise InputFormatError(f"correlation rule {self.name!r}: value_count needs a field")
        if self.type.startswith("temporal"):
            unknown = set(self.stages) - set(STAGE_TACTICS)
            if len(self.stages) < 2 or unknown:
                raise InputFormatError(
                    f"correlation rule {self.name!r}: temporal rules need two or more stages "
                    f"among {', '.join(STAGE_TACTICS)}"
                )
        if self.group_by not in GROUP_BY_SUBJECTS:
            raise InputFormatError(
                f"correlation rule {self.name!r}: group-by must be [user_id] or [patient_id]"
            )

    @property
    def subject(self) -> CorrelationSubject:
        """``user`` or ``patient``: what the cases of this rule are about."""
        return GROUP_BY_SUBJECTS[self.group_by]


def _timespan(text: str | int) -> timedelta:
    """Sigma timespans: ``30s``, ``15m``, ``1h``, ``1d``.

    >>> _timespan("15m")
    datetime.timedelta(seconds=900)
    """
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    raw = str(text).strip()
    if raw[-1:] in units and raw[:-1].isdigit():
        return timedelta(seconds=int(raw[:-1]) * units[raw[-1]])
    raise InputFormatError(f"timespan {raw!r} is not like 30s, 15m, 1h or 1d")


def load_rules(path: Path | None = None) -> tuple[CorrelationRule, ...]:
    """The rules in a YAML file (a list of Sigma-like correlation documents)."""
    path = path or Path(__file__).with_name("default_rules.yml")
    try:
        documents = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as err:
        raise InputFormatError(f"cannot read correlation rules {path.name}: {err}") from err
    rules = []
    for order, doc in enumerate(d for d in documents if d):
        try:
            correlation = doc["correlation"]
            condition = correlation.get("condition", {})
            rules.append(
                CorrelationRule(
                    name=doc["name"],
                    title=doc.get("title", doc["name"]),
                    type=correlation["type"],
                    timespan=_timespan(correlation["timespan"]),
                    group_by=tuple(correlation.get("group-by", ["user_id"])),
                    gte=int(condition.get("gte", 1)),
                    field=condition.get("field"),
                    stages=tuple(correlation.get("rules", ())),
                    severity=Severity(doc.get("level", "medium")),
                    tactics=tuple(doc.get("tactics", ())),
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputFormatError(
                f"correlation rule {order + 1} in {path.name} is malformed: {err}"
            ) from err
    return tuple(rules)
