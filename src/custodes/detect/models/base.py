"""The detector contract: batch ``fit``/``decision_function``, stream ``learn_one``/``score_one``.

Detectors see feature columns only (``custodes.detect.columns``), never names or free
text. Higher scores are more suspicious, in every detector. Constructors hold
configuration only; what a detector learns ends in ``_``; clones and pickles work.
"""

from __future__ import annotations

import copy
import dataclasses
from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import polars as pl

from custodes.detect.columns import EXPLANATION_COLUMNS, FEATURES

_INPUT_TYPES: dict[str, pl.DataType] = {
    **{name: dtype for name, (dtype, _) in FEATURES.items()},
    **{name: dtype for name, (dtype, _) in EXPLANATION_COLUMNS.items()},
    "break_the_glass": pl.Boolean(),
    "rule_weight": pl.Float64(),
    "time": pl.Datetime("us", "UTC"),
}


class Detector(ABC):
    """Base class of every access detector (after river's and PyOD's contracts)."""

    #: The feature columns the detector reads.
    inputs: tuple[str, ...] = ()

    @abstractmethod
    def fit(self, features: pl.DataFrame, labels: np.ndarray | None = None) -> Detector:
        """Learn from a feature frame (and analyst labels, for supervised detectors)."""

    @abstractmethod
    def decision_function(self, features: pl.DataFrame) -> np.ndarray:
        """One score per row; a high score is indicative of misuse."""

    def learn_one(self, x: dict[str, Any], y: int | None = None) -> None:  # noqa: B027
        """Update from one access. Detectors whose learned state is a fitted baseline
        keep it fixed in the stream (the default); override to learn online."""

    def score_one(self, x: dict[str, Any]) -> float:
        """The score of one access, equal to ``decision_function`` on a one-row frame."""
        frame = pl.DataFrame([{name: x.get(name) for name in self.inputs}])
        # A lone None infers the Null type; give every known column its declared type.
        frame = frame.with_columns(
            pl.col(name).cast(_INPUT_TYPES[name]) for name in frame.columns if name in _INPUT_TYPES
        )
        return float(self.decision_function(frame)[0])

    def clone(self) -> Detector:
        """An unfitted copy with the same configuration."""
        if dataclasses.is_dataclass(self):
            config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}
            return type(self)(**config)
        fresh = copy.copy(self)
        for name in list(vars(fresh)):
            if name.endswith("_") and not name.startswith("_"):
                delattr(fresh, name)
        return fresh
