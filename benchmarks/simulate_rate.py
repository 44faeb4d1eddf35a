"""Simulator speed: events generated per second and peak memory, per preset.

Each preset runs in a fresh process (so peak memory is its own) writing into
``benchmarks/out/sim-<preset>``, which is removed afterwards.

Run: ``.venv/bin/python benchmarks/simulate_rate.py --presets small hospital``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).parent / "out"

_RUN = """
import json, resource, sys, time
from pathlib import Path
from custodes.simulate.run import run_preset
if __name__ == "__main__":
    t = time.perf_counter()
    summary = run_preset(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "events": summary.access_events, "signins": summary.signin_events,
                      "rss_mb": rss}))
"""


def run(preset: str, seed: int) -> dict:
    OUT.mkdir(exist_ok=True)
    target = OUT / f"sim-{preset}"
    shutil.rmtree(target, ignore_errors=True)
    script = OUT / "_simulate.py"
    script.write_text(_RUN)
    done = subprocess.run(
        [sys.executable, str(script), preset, str(seed), str(target)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{preset} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["bytes"] = sum(p.stat().st_size for p in target.rglob("*") if p.is_file())
    shutil.rmtree(target, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "hospital"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per preset; the median is shown"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for preset in args.presets:
        runs = sorted(
            (run(preset, args.seed) for _ in range(args.repeat)), key=lambda r: r["seconds"]
        )
        result = runs[len(runs) // 2]
        rates = sorted(r["events"] / r["seconds"] for r in runs)
        print(
            f"{preset:14s} {result['events']:>11,} events {result['seconds']:7.1f} s "
            f"{result['events'] / result['seconds']:>10,.0f} events/s (median of {len(runs)}: "
            f"{rates[0]:,.0f}-{rates[-1]:,.0f})  peak RSS {result['rss_mb']:,.0f} MB  "
            f"written {result['bytes'] / 1e9:.1f} GB"
        )


if __name__ == "__main__":
    main()
