"""Detection quality: Custodes against off-the-shelf anomaly detectors on the same features.

For each seed, simulates a hospital (or reuses ``--sim-dir``), fits the detection engine
unsupervised on the whole log and scores it, then scores the same log with, on the SAME
feature matrix (the numeric and boolean columns of ``custodes.detect.columns.FEATURES``
plus ``rule_weight``, nulls filled with neutral values, booleans as 0/1):

- ``custodes``: ``DetectionEngine.score`` (features, rules, evidence, repeat discount);
- ``pyod-iforest``: PyOD ``IForest`` (100 trees, fixed ``random_state``);
- ``pyod-ecod``: PyOD ``ECOD``;
- ``river-hst``: River ``anomaly.HalfSpaceTrees`` as a stream, ``learn_one`` then
  ``score_one`` per event in time order, features min-max scaled to [0, 1] with bounds
  from the data (fixed ``seed``);
- ``sigma-rules``: the Sigma rules alone (score = ``rule_weight``).

Baseline scores are rank-normalised to percentiles x 100 (ties share their average rank);
``explained`` is the engine's for every method, so the explained share is reported for
Custodes only. Every method is measured with ``custodes.detect.evaluate.evaluate``: ROC
AUC, average precision, precision and incident recall at 10 alerts per 10,000 accesses,
the lowest per-scenario incident recall at that budget, and the explained share of
legitimate accesses. Fit and score seconds are printed per method; everything goes to
``--out-json``.

Run: ``.venv/bin/python benchmarks/detect_quality.py --preset small --seeds 101 202
--out-json benchmarks/out/detect_quality.json``
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from custodes.detect.columns import FEATURES
from custodes.detect.engine import DetectionEngine
from custodes.detect.evaluate import Evaluation, evaluate, read_labels
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files

METHODS = ("custodes", "pyod-iforest", "pyod-ecod", "river-hst", "sigma-rules")
HEADLINE_BUDGET = 10.0
BUDGETS = (1, 5, 10, 20, 50)

#: What a missing value means for a feature: nothing unusual.
_NEUTRAL = {
    "off_shift": 0.0,
    "volume_vs_user": 1.0,
    "volume_vs_peers": 1.0,
    "volume_vs_user_hour": 1.0,
    "collaborative_expectedness": 1.0,
    "rule_weight": 0.0,
}


# -- data ------------------------------------------------------------------------------


def simulate(preset: str, seed: int, out_dir: Path) -> float:
    """Simulate one hospital into ``out_dir``; the seconds it took."""
    from custodes.simulate.run import run_preset  # what ``custodes simulate`` runs

    started = time.perf_counter()
    run_preset(preset, seed, out_dir)
    return time.perf_counter() - started


def feature_names(frame: pl.DataFrame) -> list[str]:
    """The numeric and boolean columns of ``FEATURES``, then ``rule_weight``."""
    names = [
        name
        for name in FEATURES
        if name in frame.columns
        and (frame.schema[name].is_numeric() or frame.schema[name] == pl.Boolean)
    ]
    return [*names, "rule_weight"]


def feature_matrix(features: pl.DataFrame, names: list[str]) -> np.ndarray:
    """float64 matrix, booleans as 0/1, nulls (and NaN) as the neutral value."""
    exprs = []
    for name in names:
        column = pl.col(name)
        if features.schema[name] == pl.Boolean:
            exprs.append(column.fill_null(False).cast(pl.Float64))
        else:
            neutral = _NEUTRAL.get(name, 0.0)
            exprs.append(column.cast(pl.Float64).fill_nan(None).fill_null(neutral))
    return features.select(exprs).to_numpy().astype(np.float64, copy=False)


def percentile_scores(raw: np.ndarray) -> np.ndarray:
    """Higher raw = more suspicious, as 0..100 percentiles; ties keep their average rank."""
    from scipy.stats import rankdata

    n = len(raw)
    if n < 2:
        return np.zeros(n)
    ranks = rankdata(raw, method="average")
    return (ranks - 1.0) / (n - 1.0) * 100.0


# -- baselines -------------------------------------------------------------------------


def run_iforest(x: np.ndarray, seed: int) -> tuple[np.ndarray, float, float]:
    from pyod.models.iforest import IForest

    started = time.perf_counter()
    model = IForest(n_estimators=100, random_state=seed, n_jobs=1).fit(x)
    fitted = time.perf_counter()
    raw = model.decision_function(x)
    return raw, fitted - started, time.perf_counter() - fitted


def run_ecod(x: np.ndarray, seed: int) -> tuple[np.ndarray, float, float]:
    from pyod.models.ecod import ECOD

    started = time.perf_counter()
    model = ECOD(n_jobs=1).fit(x)
    fitted = time.perf_counter()
    # The training scores: ``decision_function(x)`` would pool x with the training
    # copy of x and give the same order at twice the cost.
    raw = model.decision_scores_
    return np.asarray(raw), fitted - started, time.perf_counter() - fitted


def run_hst(x: np.ndarray, names: list[str], seed: int) -> tuple[np.ndarray, float, float]:
    """Stream: for each event in time order, learn_one then score_one.

    The fit and score seconds are the summed learn_one and score_one times.
    """
    from river import anomaly

    low, high = x.min(axis=0), x.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    scaled = np.clip((x - low) / span, 0.0, 1.0)
    model = anomaly.HalfSpaceTrees(n_trees=10, height=8, window_size=250, seed=seed)
    raw = np.empty(len(scaled))
    learn = score = 0.0
    clock = time.perf_counter
    for i, row in enumerate(scaled.tolist()):
        event = dict(zip(names, row, strict=True))
        t0 = clock()
        model.learn_one(event)
        t1 = clock()
        raw[i] = model.score_one(event)
        score += clock() - t1
        learn += t1 - t0
    return raw, learn, score


# -- one simulated hospital ------------------------------------------------------------


def evaluate_method(
    labels: pl.DataFrame, event_ids: pl.Series, score: np.ndarray, explained: pl.Series
) -> Evaluation:
    scores = pl.DataFrame(
        {
            "event_id": event_ids,
            "score": np.clip(score, 0.0, 100.0),
            "explained": explained,
            "reasons": pl.Series("reasons", [""] * len(event_ids), dtype=pl.String),
        }
    )
    return evaluate(labels, scores, budgets=BUDGETS)


def run_one(sim_dir: Path, seed: int, methods: list[str], river_max: int | None) -> dict[str, Any]:
    """Every method on one simulated hospital."""
    out: dict[str, Any] = {"sim_dir": str(sim_dir)}
    started = time.perf_counter()
    context, _ = read_context_folder(sim_dir / "context")
    log = read_event_files([sim_dir / "events.csv"])
    labels = read_labels(sim_dir / "labels.csv")
    out["read_seconds"] = time.perf_counter() - started
    events = log.access
    out["events"] = events.height
    print(f"  read {events.height:,} events in {out['read_seconds']:.1f} s", flush=True)

    results: dict[str, Any] = {}
    started = time.perf_counter()
    engine = DetectionEngine(context, seed=seed).fit(events)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scored, _ = engine.score(events)
    score_seconds = time.perf_counter() - started
    started = time.perf_counter()
    features, _ = engine.features(events)
    out["feature_seconds"] = time.perf_counter() - started
    print(
        f"  custodes: fit {fit_seconds:.1f} s, score {score_seconds:.1f} s; "
        f"feature frame {out['feature_seconds']:.1f} s",
        flush=True,
    )

    # Everything in the feature frame's order (time, then event_id): River needs it.
    engine_scores = features.select("event_id").join(
        scored.select("event_id", "score", "explained"),
        on="event_id",
        how="left",
        maintain_order="left",
    )
    if engine_scores["score"].null_count():
        raise SystemExit("the engine did not score every event of the feature frame")
    event_ids = engine_scores["event_id"]
    explained = engine_scores["explained"]
    names = feature_names(features)
    x = feature_matrix(features, names)
    out["features"] = names
    del features

    runs: dict[str, Callable[[], tuple[np.ndarray, float, float]]] = {
        "pyod-iforest": lambda: run_iforest(x, seed),
        "pyod-ecod": lambda: run_ecod(x, seed),
        "river-hst": lambda: run_hst(x, names, seed),
        "sigma-rules": lambda: (x[:, names.index("rule_weight")], 0.0, 0.0),
    }
    for method in methods:
        if method == "custodes":
            evaluation = evaluate_method(
                labels, event_ids, engine_scores["score"].to_numpy(), explained
            )
            results[method] = summarise(evaluation, fit_seconds, score_seconds, True)
            continue
        if method == "river-hst" and river_max is not None and len(x) > river_max:
            print(f"  river-hst skipped: {len(x):,} events > --river-max {river_max:,}")
            continue
        raw, fit_s, score_s = runs[method]()
        evaluation = evaluate_method(labels, event_ids, percentile_scores(raw), explained)
        results[method] = summarise(evaluation, fit_s, score_s, False)
        print(f"  {method}: fit {fit_s:.1f} s, score {score_s:.1f} s", flush=True)
    out["methods"] = results
    return out


def summarise(
    evaluation: Evaluation, fit_seconds: float, score_seconds: float, explains: bool
) -> dict[str, Any]:
    at = evaluation.at_budget(HEADLINE_BUDGET)
    assert at is not None
    worst = min(at.scenarios, key=lambda s: (s.incident_recall, s.scenario), default=None)
    return {
        "roc_auc": evaluation.roc_auc,
        "average_precision": evaluation.average_precision,
        "precision_at_10": at.precision,
        "incident_recall_at_10": at.incident_recall,
        "min_scenario_incident_recall_at_10": worst.incident_recall if worst else None,
        "worst_scenarios_at_10": sorted(
            s.scenario for s in at.scenarios if worst and s.incident_recall == worst.incident_recall
        ),
        "scenario_incident_recall_at_10": {s.scenario: s.incident_recall for s in at.scenarios},
        "scenario_incidents": {s.scenario: s.incidents for s in at.scenarios},
        "scenario_caught_at_10": {s.scenario: s.incidents_caught for s in at.scenarios},
        "legitimate_explained": evaluation.legitimate_explained if explains else None,
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
        "evaluation": evaluation.as_json(),
    }


# -- printing --------------------------------------------------------------------------

_COLUMNS = (
    ("ROC AUC", "roc_auc", "{:.4f}"),
    ("AP", "average_precision", "{:.4f}"),
    ("prec@10", "precision_at_10", "{:.3f}"),
    ("inc.rec@10", "incident_recall_at_10", "{:.3f}"),
    ("min scen.rec@10", "min_scenario_incident_recall_at_10", "{:.3f}"),
    ("legit explained", "legitimate_explained", "{:.3f}"),
    ("fit s", "fit_seconds", "{:.2f}"),
    ("score s", "score_seconds", "{:.2f}"),
)


def table(rows: dict[str, dict[str, Any]]) -> str:
    header = ["method", *(c[0] for c in _COLUMNS)]
    lines = [header]
    for method, row in rows.items():
        cells = [method]
        for _, key, fmt in _COLUMNS:
            value = row.get(key)
            cells.append("-" if value is None else fmt.format(value))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = []
    for n, line in enumerate(lines):
        rendered.append(
            "| "
            + " | ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            )
            + " |"
        )
        if n == 0:
            rendered.append(
                "|"
                + "|".join(
                    "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(rendered)


def mean_rows(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, the mean of each figure over the seeds (scenarios pooled for recall)."""
    rows: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        present = [run["methods"][method] for run in runs if method in run["methods"]]
        if not present:
            continue
        row: dict[str, Any] = {}
        for _, key, _ in _COLUMNS:
            values = [p[key] for p in present if p[key] is not None]
            row[key] = float(np.mean(values)) if values else None
        rows[method] = row
    return rows


def scenario_table(runs: list[dict[str, Any]]) -> str:
    """Incidents caught at 10 per 10,000, pooled over the seeds, per scenario and method."""
    methods = [m for m in METHODS if any(m in run["methods"] for run in runs)]
    scenarios = sorted(
        {s for run in runs for m in run["methods"].values() for s in m["scenario_incidents"]}
    )
    header = ["scenario (incidents)", *methods]
    lines = [header]
    for scenario in scenarios:
        total = sum(
            run["methods"][methods[0]]["scenario_incidents"].get(scenario, 0) for run in runs
        )
        cells = [f"{scenario} ({total})"]
        for method in methods:
            caught = sum(
                run["methods"][method]["scenario_caught_at_10"].get(scenario, 0)
                for run in runs
                if method in run["methods"]
            )
            cells.append(f"{caught}/{total}")
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        out.append(
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
            + " |"
        )
        if n == 0:
            out.append(
                "|"
                + "|".join(
                    "-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)
                )
                + "|"
            )
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Custodes detection quality against PyOD, River and the Sigma rules "
        "alone, on the same features of simulated hospitals.",
        epilog="Budgets are alerts per 10,000 accesses; the headline budget is 10.",
    )
    parser.add_argument("--preset", default="small", help="simulator preset (default: small)")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[101, 202],
        help="simulator seeds, one hospital each (default: 101 202)",
    )
    parser.add_argument(
        "--sim-dir",
        type=Path,
        nargs="+",
        help="reuse simulated folder(s) instead of simulating; their "
        "summary.json gives preset and seed",
    )
    parser.add_argument(
        "--engine-seed",
        type=int,
        default=0,
        help="seed of the engine and the baselines (default: 0)",
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument(
        "--river-max",
        type=int,
        default=2_000_000,
        help="skip River above this many events (default: 2,000,000; it is a "
        "per-event Python loop, about 25 microseconds per event)",
    )
    parser.add_argument("--out-json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    if args.sim_dir:
        # The folders say what they hold; --preset and --seeds are ignored.
        args.seeds, presets = [], set()
        for folder in args.sim_dir:
            try:
                simulator = json.loads((folder / "summary.json").read_text())["simulator"]
            except (OSError, KeyError, ValueError):
                parser.error(f"{folder} holds no simulator summary.json")
            args.seeds.append(int(simulator["seed"]))
            presets.add(str(simulator["preset"]))
        args.preset = "/".join(sorted(presets))
    methods = [m for m in METHODS if m in args.methods]

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="custodes-quality-", dir="/tmp") as scratch:
        for n, seed in enumerate(args.seeds):
            engine_seed = args.engine_seed
            random.seed(engine_seed)
            np.random.seed(engine_seed)
            if args.sim_dir:
                sim_dir = args.sim_dir[n]
                sim_seconds = None
                print(f"{sim_dir}: reusing the simulated hospital", flush=True)
            else:
                sim_dir = Path(scratch) / f"{args.preset}-{seed}"
                sim_seconds = simulate(args.preset, seed, sim_dir)
                print(f"{args.preset}, seed {seed}: simulated in {sim_seconds:.1f} s", flush=True)
            run = run_one(sim_dir, engine_seed, methods, args.river_max)
            run.update(
                preset=args.preset, seed=seed, engine_seed=engine_seed, simulate_seconds=sim_seconds
            )
            if not args.sim_dir:
                run["sim_dir"] = None  # a temporary folder, gone
            runs.append(run)
            ev = next(iter(run["methods"].values()))["evaluation"]
            print(
                f"\n{args.preset}, seed {seed}: {run['events']:,} events, "
                f"{ev['misuse_events']:,} misuse events, {ev['incidents']} incidents"
            )
            print(table(run["methods"]))
            print(flush=True)

    if len(runs) > 1:
        print(f"Mean over seeds {', '.join(str(r['seed']) for r in runs)}:")
        print(table(mean_rows(runs)))
        print()
    print(
        "Incidents caught at 10 alerts per 10,000 accesses, per scenario "
        f"(seeds {', '.join(str(r['seed']) for r in runs)} pooled):"
    )
    print(scenario_table(runs))
    print(
        "\nColumns: prec@10 = precision at 10 alerts per 10,000 accesses; inc.rec@10 = share "
        "of incidents (case_id) with an alerted event; min scen.rec@10 = lowest incident "
        "recall of any scenario; legit explained = explained share of legitimate accesses "
        "(Custodes only: the baselines do not explain). River's fit/score s are the summed "
        "learn_one/score_one times; ECOD scores the training data while fitting, so its "
        "score s is ~0; the Sigma rules cost nothing beyond the engine's feature frame."
    )

    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "preset": args.preset,
            "seeds": args.seeds,
            "budgets": list(BUDGETS),
            "headline_budget": HEADLINE_BUDGET,
            "machine": {
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                "processor": platform.processor(),
            },
            "runs": runs,
            "mean": mean_rows(runs) if len(runs) > 1 else None,
        }
        args.out_json.write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwritten to {args.out_json}")


if __name__ == "__main__":
    main()
