"""The hospital simulator: staff, patients, encounters, workflows, labelled misuse.

``simulate(config_for("small", seed=1), out_dir)`` writes a hospital's context, a month
of access events and sign-ins, and the labels of the misuse hidden in them; see
``docs/simulator.md`` for every assumption it makes.
"""

from __future__ import annotations

from custodes.simulate.config import (
    PRESETS,
    ScenarioRates,
    SimulationConfig,
    config_for,
    parse_rate_overrides,
)
from custodes.simulate.run import Simulation, Summary, generate, run_preset, simulate

__all__ = [
    "PRESETS",
    "ScenarioRates",
    "Simulation",
    "SimulationConfig",
    "Summary",
    "config_for",
    "generate",
    "parse_rate_overrides",
    "run_preset",
    "simulate",
]
