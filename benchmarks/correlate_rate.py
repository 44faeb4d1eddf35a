"""Correlation rate: alerts per second grouped into cases (target 100,000/s).

A seeded frame of alerts (users, patients, a week, one in twenty an export, one in
fifty a sign-in) goes through ``correlate`` with the shipped rules (user cases by the
gap between alerts, sliding-window rules, and the patient rule); the median of three
runs is shown twice: the cases as a table (what correlation makes), and then as
``Case`` records too (what the case book stores).

    .venv/bin/python benchmarks/correlate_rate.py [--alerts 1000000]
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from custodes.correlate.cases import ALERT_SCHEMA, conform_alerts, correlate
from custodes.correlate.rules import load_rules


def alerts(n: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    kinds = rng.random(n)
    return pl.DataFrame(
        {
            "alert_id": [f"a{i}" for i in range(n)],
            "event_id": [f"e{i}" for i in range(n)],
            "source": np.where(kinds < 0.02, "signin", "access"),
            "time": pl.Series(
                (int(start.timestamp()) + rng.integers(0, 7 * 86400, n)) * 1_000_000
            ).cast(pl.Datetime("us", "UTC")),
            "user_id": [f"u{u}" for u in rng.integers(0, n // 20 + 1, n)],
            "patient_id": [f"p{p}" for p in rng.integers(0, n, n)],
            "action": np.where(kinds > 0.95, "export", "read"),
            "score": rng.uniform(60, 100, n),
            "reasons": rng.choice(["no treatment relationship", "same surname", ""], n),
            "department": rng.choice(["icu", "cardiology", "er"], n),
        }
    ).pipe(conform_alerts).select(list(ALERT_SCHEMA))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--alerts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    frame = alerts(args.alerts)
    rules = load_rules()
    tables, records = [], []
    for _ in range(args.runs):
        started = time.perf_counter()
        result = correlate(frame, rules)
        tables.append(time.perf_counter() - started)
        cases = result.cases
        records.append(time.perf_counter() - started)
    for label, seconds in (("case table", tables), ("case table + Case records", records)):
        median = statistics.median(seconds)
        print(f"{args.alerts:,} alerts -> {len(cases):,} cases ({label}) in {median:.2f} s "
              f"(median of {args.runs}; runs {', '.join(f'{s:.2f}' for s in seconds)}): "
              f"{args.alerts / median:,.0f} alerts/s")
    kinds = pl.Series([c.kind for c in cases]).value_counts(sort=True)
    print(dict(kinds.iter_rows()))


if __name__ == "__main__":
    main()
