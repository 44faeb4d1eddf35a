"""How precision at the alert budget grows with privacy officers' verdicts.

On the simulator's ``small`` preset (a week, 150 staff): the engine fits on the first
four days, unsupervised, and its alerts on those days form the queue. A privacy
officer closes the top N alerts of the queue with verdicts (the simulator's labels
stand in for the officer's judgement: confirmed misuse or not); the engine refits with
those N verdicts (the LightGBM ranker trains once both classes are present) and scores
the last three days, never seen. N = 0 is the unsupervised score.

Two ways to choose the N: ``top`` (the officer works the queue most severe first) and
``uncertain`` (least sure first, as ``custodes cases list --order uncertain``: in
rounds of 50, the alerts of the queue the current model is least sure of, the model
refitted after each round). Both draw from the same queue: the top ``--pool`` accesses
of the four days by the unsupervised score.

    .venv/bin/python benchmarks/verdict_curve.py [--seed 1] [--verdicts 0 50 100 200 500]
        [--order top uncertain]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from custodes.correlate.service import uncertainty_of
from custodes.detect.engine import DetectionEngine
from custodes.detect.evaluate import evaluate
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate.run import run_preset

BUDGETS = (10.0, 50.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verdicts", type=int, nargs="+", default=[0, 50, 100, 200, 500])
    parser.add_argument("--train-days", type=int, default=4)
    parser.add_argument("--order", nargs="+", choices=("top", "uncertain"), default=["top"])
    parser.add_argument("--pool", type=int, default=1000,
                        help="The queue verdicts are chosen from: the top accesses by score.")
    parser.add_argument("--round", type=int, default=50,
                        help="Verdicts per round of least-sure-first choosing.")
    parser.add_argument(
        "--background", type=int, default=5000,
        help="Unalerted accesses presumed legitimate, added as negatives (0: verdicts only).",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "hospital"
        run_preset("small", args.seed, out)
        hospital, _ = read_context_folder(out / "context")
        events = read_event_files([out / "events.ndjson"]).access
        labels = pl.read_csv(out / "labels.csv", schema_overrides={"case_id": pl.String,
                                                                   "scenario": pl.String})
    start = events["time"].min()
    cut = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
        days=args.train_days
    )
    train = events.filter(pl.col("time") < cut)
    test = events.filter(pl.col("time") >= cut)
    test_labels = labels.join(test.select("event_id"), on="event_id")

    unsupervised = DetectionEngine(hospital, seed=args.seed).fit(train)
    queue = (
        unsupervised.score_log(train)
        .sort(["score", "event_id"], descending=[True, False])
        .select("event_id")
        .join(labels.select("event_id", "label"), on="event_id", maintain_order="left")
    )
    # Accesses that never reached the queue are presumed legitimate: a seeded sample of
    # them joins the verdicts as negatives, so the ranker does not learn from the top of
    # the queue alone (where nearly every verdict is misuse).
    pool_size = max(args.pool, max(args.verdicts))
    background = queue.tail(queue.height - pool_size).sample(
        n=args.background, seed=args.seed
    ).with_columns(label=pl.lit(0, pl.Int64))
    pool = queue.head(pool_size)
    rows = []
    for order in args.order:
        chosen = _choose_uncertain(hospital, train, pool, background, args) if order == "uncertain" else pool
        for n in args.verdicts:
            verdicts = chosen.head(n)
            if n and args.background:
                verdicts = pl.concat([verdicts, background])
            started = time.perf_counter()
            engine = DetectionEngine(hospital, seed=args.seed).fit(train, verdicts if n else None)
            scores = engine.score_log(test)
            seconds = time.perf_counter() - started
            result = evaluate(test_labels, scores, BUDGETS)
            rows.append(
                {
                    "order": order,
                    "verdicts": n,
                    "confirmed_misuse": int(verdicts.head(n)["label"].sum()) if n else 0,
                    "ranker": engine.ranker_ is not None,
                    **{f"precision_at_{b:g}": round(r.precision, 4)
                       for b, r in zip(BUDGETS, result.budgets, strict=True)},
                    **{f"incident_recall_at_{b:g}": r.incident_recall
                       for b, r in zip(BUDGETS, result.budgets, strict=True)},
                    "roc_auc": round(result.roc_auc, 4) if result.roc_auc is not None else None,
                    "fit_and_score_seconds": round(seconds, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"train {train.height:,} events, test {test.height:,} events "
          f"({int(test_labels['label'].sum()):,} misuse)")
    print("| order | verdicts | of which misuse | precision @10/10k | precision @50/10k | incident recall @50/10k | ROC AUC |")  # noqa: E501
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['order']} | {r['verdicts']} | {r['confirmed_misuse']} | "
              f"{r['precision_at_10']:.3f} | {r['precision_at_50']:.3f} | "
              f"{r['incident_recall_at_50']:.3f} | {r['roc_auc']} |")


def _choose_uncertain(hospital, train, pool, background, args) -> pl.DataFrame:
    """The pool in the order a least-sure-first officer closes it: each round, the
    ``args.round`` alerts whose uncertainty (as the case queue computes it) is highest
    under the model fitted on the verdicts so far."""
    chosen = pool.clear()
    engine = DetectionEngine(hospital, seed=args.seed).fit(train)
    while chosen.height < max(args.verdicts):
        left = pool.join(chosen.select("event_id"), on="event_id", how="anti")
        if left.is_empty():
            break
        scored = engine.score_log(train.join(left.select("event_id"), on="event_id"))
        unsure = scored.with_columns(
            uncertainty=pl.struct("score", "probability").map_elements(
                lambda v: uncertainty_of(v["score"], v["probability"]), return_dtype=pl.Float64
            )
        ).sort(["uncertainty", "event_id"], descending=[True, False])
        picked = unsure.head(args.round).select("event_id").join(
            left, on="event_id", maintain_order="left"
        )
        chosen = pl.concat([chosen, picked])
        engine = DetectionEngine(hospital, seed=args.seed).fit(
            train, pl.concat([chosen, background]) if args.background else chosen
        )
    return chosen


if __name__ == "__main__":
    main()
