"""Collaborative expectedness: would this user's usual collaborators touch this patient?

After Menon et al. (2014), who audit accesses with collaborative filtering, and Chen and
Malin's social-network view (SNAD): users who treat the same patients form teams, and an
access that the user-patient matrix's low-rank structure does not predict is unexpected.
The model factorises the binary user x patient access matrix (truncated SVD) and reads
the reconstruction of each (user, patient) cell as the expectedness, clipped to 0..1.
Unknown users or patients (not in the training log) get a null: no evidence either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import svds

_BLOCK = 262_144


@dataclass
class CollaborativeModel:
    """Truncated-SVD reconstruction of the user x patient access matrix.

    Parameters
    ----------
    rank: number of latent dimensions (teams, services).
    seed: seeds the solver's start vector, so a refit gives the same model.
    """

    rank: int = 24
    seed: int = 0
    users_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    patients_: pl.DataFrame | None = field(default=None, init=False, repr=False)
    user_factors_: np.ndarray | None = field(default=None, init=False, repr=False)
    patient_factors_: np.ndarray | None = field(default=None, init=False, repr=False)

    def fit(self, pairs: pl.DataFrame) -> CollaborativeModel:
        """Learn from (user_id, patient_id) rows; repeats count once."""
        pairs = pairs.select("user_id", "patient_id").unique()
        users = pairs.select("user_id").unique().sort("user_id").with_row_index("u")
        patients = pairs.select("patient_id").unique().sort("patient_id").with_row_index("p")
        indexed = pairs.join(users, on="user_id").join(patients, on="patient_id")
        shape = (users.height, patients.height)
        rank = min(self.rank, min(shape) - 1)
        self.users_, self.patients_ = users, patients
        if rank < 1:
            self.user_factors_ = np.zeros((users.height, 1))
            self.patient_factors_ = np.zeros((patients.height, 1))
            return self
        matrix = csr_matrix(
            (np.ones(indexed.height), (indexed["u"].to_numpy(), indexed["p"].to_numpy())),
            shape=shape,
        )
        start = np.random.default_rng(self.seed).uniform(-1, 1, min(shape))
        left, sigma, right = svds(matrix, k=rank, v0=start)
        self.user_factors_ = left * sigma
        self.patient_factors_ = right.T
        return self

    def expectedness(self, user_ids: pl.Series, patient_ids: pl.Series) -> pl.Series:
        """0..1 per (user, patient) row; null where either is unknown."""
        if self.users_ is None or self.patients_ is None:
            raise RuntimeError("fit the collaborative model first")
        assert self.user_factors_ is not None and self.patient_factors_ is not None
        rows = pl.DataFrame({"user_id": user_ids, "patient_id": patient_ids})
        unique = (
            rows.unique()
            .join(self.users_, on="user_id", how="left")
            .join(self.patients_, on="patient_id", how="left")
        )
        known = unique.filter(pl.col("u").is_not_null() & pl.col("p").is_not_null())
        u = known["u"].to_numpy()
        p = known["p"].to_numpy()
        values = np.empty(known.height)
        for start in range(0, known.height, _BLOCK):
            stop = start + _BLOCK
            values[start:stop] = np.einsum(
                "ij,ij->i", self.user_factors_[u[start:stop]], self.patient_factors_[p[start:stop]]
            )
        scored = known.select("user_id", "patient_id").with_columns(
            expectedness=pl.Series(np.clip(values, 0.0, 1.0))
        )
        return rows.join(scored, on=["user_id", "patient_id"], how="left", maintain_order="left")[
            "expectedness"
        ]
