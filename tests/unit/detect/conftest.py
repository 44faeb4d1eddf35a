"""A small simulated hospital, scored once per test session (seeded, never tuned on)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from custodes.context import HospitalContext
from custodes.detect.engine import DetectionEngine
from custodes.ingest.context_service import read_context_folder
from custodes.ingest.service import read_event_files
from custodes.simulate import config_for, simulate

SEED = 4242


@dataclass(frozen=True)
class Scored:
    folder: Path
    context: HospitalContext
    events: pl.DataFrame
    labels: pl.DataFrame
    engine: DetectionEngine
    scores: pl.DataFrame


@pytest.fixture(scope="session")
def scored_hospital(tmp_path_factory: pytest.TempPathFactory) -> Scored:
    folder = tmp_path_factory.mktemp("hospital")
    simulate(config_for("small", SEED, days=4), folder)
    context, _ = read_context_folder(folder / "context")
    events = read_event_files([folder / "events.csv"]).access
    engine = DetectionEngine(context, seed=0).fit(events)
    scores, _ = engine.score(events)
    labels = pl.read_csv(folder / "labels.csv", schema_overrides={"case_id": pl.String})
    return Scored(folder, context, events, labels, engine, scores)
