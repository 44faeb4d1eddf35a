"""Unusual sign-ins: a login from a device or network its user has never used, after
failed attempts, is the first step of most account takeovers.

``UnusualSignIns`` learns each user's devices and networks (the address's first three
octets) from a history of sign-ins, then scores successful logins from 0 to 100 with
their reasons, remembering what each scored batch taught, so the stream and the batch
give the same scores for the same sign-ins in the same order.

>>> from datetime import UTC, datetime
>>> history = pl.DataFrame({"event_id": ["h1"], "time": [datetime(2026, 3, 1, 8, tzinfo=UTC)],
...     "user_id": ["u1"], "kind": ["login"], "outcome": ["success"],
...     "source_ip": ["10.1.0.7"], "device": ["WS-1"]})
>>> judge = UnusualSignIns().fit(history)
>>> later = history.with_columns(event_id=pl.lit("n1"), device=pl.lit("LAPTOP-9"),
...     source_ip=pl.lit("203.0.113.5"))
>>> judge.score(later).row(0)
('n1', 75.0, 'first sign-in from device LAPTOP-9; first sign-in from network 203.0.113')
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import polars as pl

#: The columns ``score`` returns.
SIGNIN_SCORE_SCHEMA = {"event_id": pl.String, "score": pl.Float64, "reasons": pl.String}


def network_of(address: str | None) -> str | None:
    """The network an address belongs to: an IPv4 address's first three octets, an IPv6
    address's first four groups.

    >>> network_of("10.32.0.22"), network_of("2001:db8:1:2::5"), network_of(None)
    ('10.32.0', '2001:db8:1:2', None)
    """
    if not address:
        return None
    if ":" in address:
        return ":".join(address.split(":")[:4])
    return ".".join(address.split(".")[:3])


@dataclass
class UnusualSignIns:
    """Scores successful logins by how unusual they are for their user.

    Parameters
    ----------
    new_device: points for a device the user never signed in from.
    new_network: points for a network the user never signed in from.
    per_failure: points per failed login of the user within ``failure_window`` before.
    max_failures: failures counted at most.
    failure_window: how far back failures count.
    """

    new_device: float = 45.0
    new_network: float = 30.0
    per_failure: float = 8.0
    max_failures: int = 4
    failure_window: timedelta = timedelta(hours=1)
    devices_: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set), init=False)
    networks_: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set), init=False)
    failures_: dict[str, deque[datetime]] = field(
        default_factory=lambda: defaultdict(deque), init=False
    )

    def fit(self, history: pl.DataFrame) -> UnusualSignIns:
        """Learn every user's devices and networks from earlier sign-ins."""
        self.devices_ = defaultdict(set)
        self.networks_ = defaultdict(set)
        self.failures_ = defaultdict(deque)
        self.score(history)
        return self

    def score(self, signins: pl.DataFrame) -> pl.DataFrame:
        """``event_id, score, reasons`` of every sign-in (time-ordered), learning from them.

        Only successful logins score above 0: the failures before one count toward it.
        """
        rows = []
        columns = ("event_id", "time", "user_id", "kind", "outcome", "source_ip", "device")
        for event_id, time, user, kind, outcome, address, device in signins.select(
            columns
        ).iter_rows():
            rows.append((event_id, *self._judge(time, user, kind, outcome, address, device)))
        return pl.DataFrame(rows, schema=SIGNIN_SCORE_SCHEMA, orient="row")

    def _judge(
        self,
        time: datetime,
        user: str,
        kind: str,
        outcome: str,
        address: str | None,
        device: str | None,
    ) -> tuple[float, str]:
        if kind != "login":
            return 0.0, ""
        failures = self.failures_[user]
        while failures and time - failures[0] > self.failure_window:
            failures.popleft()
        if outcome != "success":
            failures.append(time)
            return 0.0, ""
        score, reasons = 0.0, []
        network = network_of(address)
        known_devices, known_networks = self.devices_[user], self.networks_[user]
        if device and device not in known_devices:
            score += self.new_device
            reasons.append(f"first sign-in from device {device}")
        if network and network not in known_networks:
            score += self.new_network
            reasons.append(f"first sign-in from network {network}")
        if failures:
            counted = min(len(failures), self.max_failures)
            score += self.per_failure * counted
            reasons.append(f"{len(failures)} failed attempt(s) before")
            failures.clear()
        if device:
            known_devices.add(device)
        if network:
            known_networks.add(network)
        return min(score, 100.0), "; ".join(reasons)
