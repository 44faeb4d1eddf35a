"""Sensitivity classification rate over the Synthea R4 sample bundles.

Reads every bundle in ../shared/data/synthea-r4 (or the folder given) into memory,
then classifies each resource with free text on and with codes and labels only. The
sample has little free text (narratives on Patients and CarePlans), so a third pass
gives every resource a short clinical note, a third of them with numbers in it: the
worst case a Bundle of notes brings. Prints resources per second and the tiers found.

    .venv/bin/python benchmarks/classify_rate.py [FOLDER] [--repeat N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from collections import Counter
from pathlib import Path

from custodes.vault.classify import SensitivityClassifier

NOTES = (
    "Seen for follow-up, BP 120/80, continue lisinopril 10 mg daily.",
    "No complaints today. Reviewed the plan with the patient.",
    "Wound healing well, dressing changed, return to clinic as needed.",
)
DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "synthea-r4"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    resources = []
    for path in sorted(args.folder.glob("*.json.gz")):
        with gzip.open(path) as f:
            resources += [entry["resource"] for entry in json.load(f)["entry"]]
    print(f"{len(resources):,} resources from {args.folder}")

    noted = [{**resource, "note": [{"text": NOTES[i % len(NOTES)]}]}
             for i, resource in enumerate(resources)]  # fmt: skip
    runs = (("codes, labels and free text", True, resources),
            ("codes and labels only", False, resources),
            ("a note on every resource", True, noted))  # fmt: skip
    for label, free_text, corpus in runs:
        started = time.perf_counter()
        classifier = SensitivityClassifier(free_text=free_text)
        built = time.perf_counter() - started
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            tiers = Counter(classifier.classify(resource).tier.value for resource in corpus)
            best = min(best, time.perf_counter() - started)
        print(f"{label}: {len(corpus) / best:,.0f} resources/s "
              f"(best of {args.repeat}; engine built in {built:.2f} s) {dict(tiers)}")


if __name__ == "__main__":
    main()
