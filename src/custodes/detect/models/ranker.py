"""The supervised ranker: LightGBM on the feature columns, trained on analyst verdicts.

Used only when verdicts exist (both classes); the feedback loop that collects them
belongs to case handling. Deterministic: one thread, a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from custodes.detect.columns import FEATURES
from custodes.detect.models.base import Detector

#: Model inputs: every numeric or boolean feature, the explanation verdict, rule weight.
RANKER_INPUTS: tuple[str, ...] = (*FEATURES, "explained", "break_the_glass", "rule_weight")


def ranker_matrix(features: pl.DataFrame) -> np.ndarray:
    """The float matrix the ranker reads, nulls as NaN (LightGBM handles them)."""
    return features.select(pl.col(name).cast(pl.Float64) for name in RANKER_INPUTS).to_numpy()


@dataclass
class SupervisedRanker(Detector):
    """Gradient-boosted trees that learn which accesses analysts confirm as misuse.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves: LightGBM's, kept small: verdicts are few.
    seed: LightGBM's seed.
    """

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 15
    seed: int = 0
    model_: Any = field(default=None, init=False, repr=False)

    inputs = RANKER_INPUTS

    def fit(self, features: pl.DataFrame, labels: np.ndarray | None = None) -> SupervisedRanker:
        if labels is None or len(np.unique(labels)) < 2:
            raise ValueError("the supervised ranker needs verdicts of both kinds")
        from lightgbm import LGBMClassifier  # heavy import, only when verdicts exist

        self.model_ = LGBMClassifier(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=5,
            class_weight="balanced",
            random_state=self.seed,
            n_jobs=1,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        self.model_.fit(ranker_matrix(features), np.asarray(labels, dtype=np.int8))
        return self

    def decision_function(self, features: pl.DataFrame) -> np.ndarray:
        """Probability of misuse, 0..1."""
        if self.model_ is None:
            raise RuntimeError("fit the ranker first")
        return self.model_.predict_proba(ranker_matrix(features))[:, 1]
