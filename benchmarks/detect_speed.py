"""Detection speed: batch scoring rate and streaming latency on a simulated hospital month.

Simulates the ``hospital`` preset (a month, about 5.7 million access events) in a child
process (or reuses ``--sim-dir``), then in this process:

1. reads the context folder and ``events.csv`` (timed apart from detection);
2. fits the detection engine, unsupervised, on every event;
3. times ``DetectionEngine.score_log`` on every event end to end (features, Sigma rules,
   evidence, repeat discount, a million events at a time, as ``custodes detect`` runs):
   the median of ``--repeats`` runs, as events per second;
4. replays the first ``--stream-seconds`` of a stream arriving at ``--rate`` events per
   second (events in time order, ``time`` then ``event_id``) as micro-batches of
   ``--window`` seconds' worth, each through ``engine.score(batch, state)`` carrying the
   state. Batch processing is measured for real; arrivals and waiting follow a virtual
   clock: event i arrives at ``i / rate``, batch b closes at ``(b + 1) * window`` and
   starts at the later of its close and the end of batch b - 1. An event's latency is
   from its arrival to the end of its batch's processing (its wait in the window, any
   queueing behind a slow batch, and the processing). The stream keeps up when batches
   take less than the window. The replay stops early after ``--stream-budget`` seconds
   of processing (reported). Its scores are checked against the batch scores of the
   same events (the engine promises they are equal).

Reports peak RSS (``ru_maxrss``) after each phase and the machine.

Run: ``.venv/bin/python benchmarks/detect_speed.py --out-json benchmarks/out/detect_speed.json``
(``--sim-dir DIR`` to reuse a simulated hospital; ``--limit N`` for the first N events).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from custodes.detect.engine import DetectionEngine, EngineState
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files

_SIMULATE = (
    "import sys; from pathlib import Path; from custodes.simulate.run import run_preset; "
    "s = run_preset(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])); print(s.access_events)"
)


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    total = None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")),
                cpu,
            )
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gib": round(total, 1) if total else None,
        "python": sys.version.split()[0],
        "polars": pl.__version__,
        "polars_threads": pl.thread_pool_size(),
    }


def simulate(preset: str, seed: int, out_dir: Path) -> float:
    """Simulate in a child process, so its memory is not counted as detection's."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _SIMULATE, preset, str(seed), str(out_dir)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"simulating {preset} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def percentile(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def stream(
    engine: DetectionEngine,
    events: pl.DataFrame,
    rate: float,
    window: float,
    seconds: float,
    budget: float,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Replay ``seconds`` of a ``rate``-per-second stream in ``window``-second micro-batches."""
    per_batch = max(1, round(rate * window))
    wanted = min(events.height, round(rate * seconds))
    state: EngineState | None = None
    processing: list[float] = []
    sizes: list[int] = []
    scored: list[pl.DataFrame] = []
    spent = 0.0
    offset = 0
    while offset < wanted and spent < budget:
        batch = events.slice(offset, min(per_batch, wanted - offset))
        started = time.perf_counter()
        result, state = engine.score(batch, state)
        elapsed = time.perf_counter() - started
        spent += elapsed
        processing.append(elapsed)
        sizes.append(batch.height)
        scored.append(result.select("event_id", "score"))
        offset += batch.height
    proc = np.asarray(processing)
    counts = np.asarray(sizes)
    # The virtual clock: arrivals at i / rate, batch b closes at (b + 1) * window.
    closes = (np.arange(len(proc)) + 1) * window
    finish = np.empty(len(proc))
    previous = 0.0
    for b in range(len(proc)):
        previous = max(closes[b], previous) + proc[b]
        finish[b] = previous
    arrivals = np.arange(offset) / rate
    latency = np.repeat(finish, counts) - arrivals
    tail = max(1, len(proc) // 10)
    summary = {
        "rate_target": rate,
        "window_seconds": window,
        "events_per_batch": per_batch,
        "events_wanted": wanted,
        "events_streamed": int(offset),
        "batches": len(proc),
        "stream_seconds_covered": offset / rate,
        "stopped_early": bool(offset < wanted),
        "processing_seconds_total": float(proc.sum()),
        "processing_rate": float(offset / proc.sum()) if proc.sum() else None,
        "batch_seconds_p50": percentile(proc, 50),
        "batch_seconds_p99": percentile(proc, 99),
        "batch_seconds_max": float(proc.max()) if len(proc) else None,
        "batch_seconds_first_10pct_mean": float(proc[:tail].mean()) if len(proc) else None,
        "batch_seconds_last_10pct_mean": float(proc[-tail:].mean()) if len(proc) else None,
        "batches_within_window": float((proc < window).mean()) if len(proc) else None,
        "keeps_up": bool(len(proc) and (proc < window).all()),
        "backlog_at_end_seconds": float(finish[-1] - closes[-1]) if len(proc) else None,
        "latency_seconds_p50": percentile(latency, 50),
        "latency_seconds_p99": percentile(latency, 99),
        "latency_seconds_max": float(latency.max()) if len(latency) else None,
    }
    return summary, pl.concat(scored) if scored else pl.DataFrame()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Custodes detection speed on a simulated hospital month: read, fit, "
        "batch scoring rate (median of 3) and streaming micro-batch latency.",
    )
    parser.add_argument("--preset", default="hospital", help="simulator preset (default: hospital)")
    parser.add_argument("--seed", type=int, default=101, help="simulator seed (default: 101)")
    parser.add_argument("--engine-seed", type=int, default=0, help="engine seed (default: 0)")
    parser.add_argument("--sim-dir", type=Path, help="reuse this simulated hospital folder")
    parser.add_argument("--keep-sim", action="store_true", help="keep the simulated folder")
    parser.add_argument(
        "--read-workers",
        type=int,
        default=2,
        help="CSV parser processes for reading events (default: 2; `custodes detect` reads with 1)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N events in time order (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="batch scoring runs (default: 3)")
    parser.add_argument(
        "--rate",
        type=float,
        default=20_000.0,
        help="stream arrival rate, events/s (default: 20,000)",
    )
    parser.add_argument(
        "--window",
        type=float,
        default=0.1,
        help="micro-batch window, seconds (default: 0.1, ~2,000 events)",
    )
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=60.0,
        help="seconds of stream to replay (default: 60, ~1.2M events)",
    )
    parser.add_argument(
        "--stream-budget",
        type=float,
        default=240.0,
        help="stop the replay after this much processing time (default: 240 s)",
    )
    parser.add_argument("--skip-batch", action="store_true", help="skip the batch scoring runs")
    parser.add_argument("--skip-stream", action="store_true", help="skip the streaming replay")
    parser.add_argument("--out-json", type=Path, default=None, help="write every figure here")
    args = parser.parse_args(argv)
    random.seed(args.engine_seed)
    np.random.seed(args.engine_seed)

    out: dict[str, Any] = {
        "machine": machine(),
        "preset": args.preset,
        "seed": args.seed,
        "engine_seed": args.engine_seed,
    }
    scratch = None
    if args.sim_dir:
        sim_dir = args.sim_dir
        out["simulate_seconds"] = None
        # The folder says what it holds; --preset and --seed are ignored.
        simulator = json.loads((sim_dir / "summary.json").read_text())["simulator"]
        out["preset"], out["seed"] = simulator["preset"], simulator["seed"]
    else:
        scratch = Path(tempfile.mkdtemp(prefix="custodes-speed-", dir="/tmp"))
        sim_dir = scratch / f"{args.preset}-{args.seed}"
        print(f"simulating {args.preset}, seed {args.seed} into {sim_dir} ...", flush=True)
        out["simulate_seconds"] = simulate(args.preset, args.seed, sim_dir)
        print(f"  simulated in {out['simulate_seconds']:.1f} s", flush=True)
    out["sim_dir"] = str(sim_dir)
    try:
        run(args, sim_dir, out)
    finally:
        if scratch is not None and not args.keep_sim:
            shutil.rmtree(scratch, ignore_errors=True)
    print_summary(out)
    if args.out_json:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(out, indent=2, default=str))
        print(f"\nwritten to {args.out_json}")


def run(args: argparse.Namespace, sim_dir: Path, out: dict[str, Any]) -> None:
    started = time.perf_counter()
    context, _ = read_context_folder(sim_dir / "context")
    out["read_context_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    log = read_event_files([sim_dir / "events.csv"], workers=args.read_workers)
    out["read_events_seconds"] = time.perf_counter() - started
    events = log.access.sort("time", "event_id", maintain_order=True)
    del log
    if args.limit:
        events = events.head(args.limit)
    n = events.height
    out["events"] = n
    out["span"] = [str(events["time"].min()), str(events["time"].max())]
    out["rss_after_read_mb"] = peak_rss_mb()
    print(
        f"read context in {out['read_context_seconds']:.1f} s, {n:,} events in "
        f"{out['read_events_seconds']:.1f} s ({n / out['read_events_seconds']:,.0f}/s); "
        f"peak RSS {out['rss_after_read_mb']:,.0f} MB",
        flush=True,
    )

    started = time.perf_counter()
    engine = DetectionEngine(context, seed=args.engine_seed).fit(events)
    out["fit_seconds"] = time.perf_counter() - started
    out["rss_after_fit_mb"] = peak_rss_mb()
    print(
        f"fitted in {out['fit_seconds']:.1f} s ({n / out['fit_seconds']:,.0f} events/s); "
        f"peak RSS {out['rss_after_fit_mb']:,.0f} MB",
        flush=True,
    )
    gc.collect()

    batch_scores = None
    if not args.skip_batch:
        runs = []
        for i in range(args.repeats):
            gc.collect()
            started = time.perf_counter()
            scores = engine.score_log(events)  # what `custodes detect` runs
            runs.append(time.perf_counter() - started)
            print(
                f"score run {i + 1}: {runs[-1]:.1f} s ({n / runs[-1]:,.0f} events/s); "
                f"peak RSS {peak_rss_mb():,.0f} MB",
                flush=True,
            )
            if i == args.repeats - 1:
                batch_scores = scores.select("event_id", "score")
            del scores
        median = statistics.median(runs)
        out["score_seconds_runs"] = runs
        out["score_seconds_median"] = median
        out["score_events_per_second"] = n / median
        out["rss_after_score_mb"] = peak_rss_mb()
        gc.collect()

    if not args.skip_stream:
        print(
            f"streaming: {args.rate:,.0f} events/s in {args.window * 1000:.0f} ms batches, "
            f"{args.stream_seconds:g} s of stream ...",
            flush=True,
        )
        summary, streamed = stream(
            engine, events, args.rate, args.window, args.stream_seconds, args.stream_budget
        )
        if batch_scores is not None and streamed.height:
            joined = streamed.join(batch_scores, on="event_id", how="left", suffix="_batch")
            diff = (joined["score"] - joined["score_batch"]).abs()
            summary["max_abs_diff_vs_batch"] = float(diff.max()) if diff.len() else None
            summary["events_differing_vs_batch"] = int((diff > 1e-6).sum())
        out["stream"] = summary
        out["rss_after_stream_mb"] = peak_rss_mb()
    out["peak_rss_mb"] = peak_rss_mb()


def print_summary(out: dict[str, Any]) -> None:
    m = out["machine"]
    print("\n== Detection speed ==")
    print(
        f"machine: {m['platform']}; {m['cpu']}; {m['cpu_count']} CPUs "
        f"({m['cpus_usable']} usable); {m['memory_gib']} GiB; Python {m['python']}, "
        f"Polars {m['polars']} ({m['polars_threads']} threads)"
    )
    n = out.get("events", 0)
    print(
        f"data: {out['preset']} preset, seed {out['seed']}: {n:,} access events, "
        f"{out.get('span', ['?', '?'])[0]} .. {out.get('span', ['?', '?'])[1]}"
    )
    rows = []
    if out.get("simulate_seconds") is not None:
        rows.append(("simulate (child process)", f"{out['simulate_seconds']:.1f}", "", ""))
    rows.append(("read context", f"{out['read_context_seconds']:.1f}", "", ""))
    rows.append(
        (
            "read events.csv",
            f"{out['read_events_seconds']:.1f}",
            f"{n / out['read_events_seconds']:,.0f}",
            f"{out['rss_after_read_mb']:,.0f}",
        )
    )
    rows.append(
        (
            "fit (unsupervised, all events)",
            f"{out['fit_seconds']:.1f}",
            f"{n / out['fit_seconds']:,.0f}",
            f"{out['rss_after_fit_mb']:,.0f}",
        )
    )
    if "score_seconds_median" in out:
        runs = ", ".join(f"{s:.1f}" for s in out["score_seconds_runs"])
        rows.append(
            (
                f"score all events (median of {len(out['score_seconds_runs'])}: {runs})",
                f"{out['score_seconds_median']:.1f}",
                f"{out['score_events_per_second']:,.0f}",
                f"{out['rss_after_score_mb']:,.0f}",
            )
        )
    s = out.get("stream")
    if s:
        rows.append(
            (
                f"stream {s['events_streamed']:,} events in {s['batches']} batches",
                f"{s['processing_seconds_total']:.1f}",
                f"{s['processing_rate']:,.0f}",
                f"{out['rss_after_stream_mb']:,.0f}",
            )
        )
    header = ("phase", "seconds", "events/s", "peak RSS MB (so far)")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print(
        "|"
        + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    for r in rows:
        print(
            "| "
            + " | ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
            + " |"
        )
    if s:
        print(
            f"\nstreaming at {s['rate_target']:,.0f} events/s, {s['window_seconds'] * 1000:.0f} ms "
            f"windows ({s['events_per_batch']:,} events/batch): replayed "
            f"{s['stream_seconds_covered']:.1f} s of stream ({s['events_streamed']:,} of "
            f"{s['events_wanted']:,} events)"
            + (" - stopped early at the processing budget" if s["stopped_early"] else "")
        )
        print(
            f"  batch processing: p50 {s['batch_seconds_p50'] * 1000:.0f} ms, p99 "
            f"{s['batch_seconds_p99'] * 1000:.0f} ms, max {s['batch_seconds_max'] * 1000:.0f} ms; "
            f"first 10% of batches {s['batch_seconds_first_10pct_mean'] * 1000:.0f} ms, last 10% "
            f"{s['batch_seconds_last_10pct_mean'] * 1000:.0f} ms (mean)"
        )
        print(
            f"  batches within the {s['window_seconds'] * 1000:.0f} ms window: "
            f"{s['batches_within_window']:.1%}; keeps up: {'yes' if s['keeps_up'] else 'NO'}; "
            f"backlog at the end {s['backlog_at_end_seconds']:.1f} s"
        )
        print(
            f"  per-event latency (arrival -> end of its batch's processing): p50 "
            f"{s['latency_seconds_p50'] * 1000:,.0f} ms, p99 {s['latency_seconds_p99'] * 1000:,.0f} ms, "
            f"max {s['latency_seconds_max'] * 1000:,.0f} ms"
        )
        if "max_abs_diff_vs_batch" in s:
            print(
                f"  stream scores vs batch scores of the same events: max |diff| "
                f"{s['max_abs_diff_vs_batch']:.6f}, {s['events_differing_vs_batch']:,} differ"
            )
    print(f"\npeak RSS: {out['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
