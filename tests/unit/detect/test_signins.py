"""Unusual sign-ins: new device, new network, failures before; the stream equals the batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from custodes.detect.signins import UnusualSignIns

T = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def signins(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (event_id, minute, user, kind, outcome, address, device)."""
    return pl.DataFrame(
        [(e, T + timedelta(minutes=m), u, k, o, a, d) for e, m, u, k, o, a, d in rows],
        schema={"event_id": pl.String, "time": pl.Datetime("us", "UTC"), "user_id": pl.String,
                "kind": pl.String, "outcome": pl.String, "source_ip": pl.String,
                "device": pl.String},
        orient="row",
    )


HISTORY = signins([
    ("h1", 0, "alice", "login", "success", "10.1.0.7", "WS-1"),
    ("h2", 60, "alice", "logout", "success", "10.1.0.7", "WS-1"),
    ("h3", 5, "bob", "login", "success", "10.2.0.9", "WS-2"),
])


@pytest.mark.parametrize(
    ("row", "score", "reasons"),
    [
        (("n", 600, "alice", "login", "success", "10.1.0.8", "WS-1"), 0.0, ""),
        (("n", 600, "alice", "login", "success", "10.1.0.8", "WS-9"), 45.0,
         "first sign-in from device WS-9"),
        (("n", 600, "alice", "login", "success", "10.7.0.8", "WS-1"), 30.0,
         "first sign-in from network 10.7.0"),
        # Bob's device is not Alice's: what is usual is per user.
        (("n", 600, "alice", "login", "success", "10.2.0.9", "WS-2"), 75.0,
         "first sign-in from device WS-2; first sign-in from network 10.2.0"),
        (("n", 600, "alice", "logout", "success", "203.0.113.4", "X"), 0.0, ""),
        (("n", 600, "alice", "login", "major_failure", "203.0.113.4", "X"), 0.0, ""),
    ],
)
def test_what_makes_a_sign_in_unusual(row, score, reasons) -> None:
    judged = UnusualSignIns().fit(HISTORY).score(signins([row]))
    assert judged.row(0) == ("n", score, reasons)


def test_failures_within_the_hour_before_count_and_then_are_spent() -> None:
    judge = UnusualSignIns().fit(HISTORY)
    attack = signins([
        ("f0", 500, "alice", "login", "minor_failure", "203.0.113.4", "LAPTOP-X"),  # too early
        ("f1", 590, "alice", "login", "minor_failure", "203.0.113.4", "LAPTOP-X"),
        ("f2", 591, "alice", "login", "minor_failure", "203.0.113.4", "LAPTOP-X"),
        ("f3", 592, "alice", "login", "minor_failure", "203.0.113.4", "LAPTOP-X"),
        ("s1", 593, "alice", "login", "success", "203.0.113.4", "LAPTOP-X"),
        ("s2", 700, "alice", "login", "success", "203.0.113.4", "LAPTOP-X"),
    ])
    scored = dict(judge.score(attack).select("event_id", "score").iter_rows())
    assert scored["s1"] == 45 + 30 + 3 * 8
    # The same device and network again, no failures: learnt, usual now.
    assert scored["s2"] == 0.0


def test_failures_count_up_to_a_cap() -> None:
    judge = UnusualSignIns(max_failures=2).fit(HISTORY)
    rows = [(f"f{i}", 590 + i * 0.1, "bob", "login", "minor_failure", "10.2.0.9", "WS-2")
            for i in range(6)]
    rows.append(("s", 595, "bob", "login", "success", "10.2.0.9", "WS-2"))
    judged = judge.score(signins(rows)).filter(pl.col("event_id") == "s")
    assert judged.row(0) == ("s", 16.0, "6 failed attempt(s) before")


def test_scoring_in_pieces_equals_scoring_at_once() -> None:
    day = signins([
        (f"e{i}", i * 7, ("alice", "bob", "carol")[i % 3], "login",
         "success" if i % 4 else "minor_failure", f"10.{i % 5}.0.1", f"WS-{i % 7}")
        for i in range(60)
    ])
    whole = UnusualSignIns().fit(HISTORY).score(day)
    judge = UnusualSignIns().fit(HISTORY)
    pieces = pl.concat([judge.score(day.slice(start, 11)) for start in range(0, 60, 11)])
    assert_frame_equal(pieces, whole)
    assert whole["score"].max() > 0
