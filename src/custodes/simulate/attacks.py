"""One attack, on demand, as the events a bus would carry: for the streaming tests and
the response benchmark, which need to say when the attack starts and whose it is.

The shape is the simulator's compromised-credentials scenario (``scenarios.py``): failed
logins from a device and network the account never used, a success, a sweep of
records with searches and reads, then exports, all from that device.

>>> from datetime import UTC, datetime
>>> attack = compromised_credentials_attack(
...     "s00042", [f"p{i:06d}" for i in range(100)], datetime(2026, 3, 6, 2, tzinfo=UTC),
...     seed=3, patients=5, exports=2)
>>> attack.signins["outcome"].to_list()
['serious_failure', 'serious_failure', 'serious_failure', 'success']
>>> attack.accesses["action"].to_list()[-3:], attack.accesses.height
(['read', 'export', 'export'], 12)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import polars as pl

from custodes.core.events import ACCESS_EVENT_SCHEMA, SIGNIN_EVENT_SCHEMA


@dataclass(frozen=True)
class Attack:
    """The attack's sign-ins and accesses (``SIGNIN_EVENT_SCHEMA``,
    ``ACCESS_EVENT_SCHEMA``), each in time order."""

    user_id: str
    signins: pl.DataFrame
    accesses: pl.DataFrame


def compromised_credentials_attack(
    user_id: str,
    patient_ids: Sequence[str],
    start: datetime,
    *,
    seed: int,
    patients: int = 150,
    exports: int = 40,
    failures: int = 3,
    tag: str = "attack",
) -> Attack:
    """Stolen credentials used at ``start``: ``failures`` failed logins, a success, a
    search and a read of ``patients`` records chosen among ``patient_ids``, then
    ``exports`` exports, within about half an hour. Event ids start with ``tag``."""
    rng = np.random.default_rng(seed)
    device = f"DESKTOP-{int(rng.integers(0, 16**7)):07X}"
    address = f"203.0.113.{int(rng.integers(2, 254))}"
    session = f"{tag}-session"
    signin_rows = [
        {
            "event_id": f"{tag}-signin-{i}",
            "time": start + timedelta(seconds=10 * i),
            "user_id": user_id,
            "kind": "login",
            "outcome": "success" if i == failures else "serious_failure",
            "source_ip": address,
            "device": device,
            "application": "EHR",
            "session_id": session if i == failures else None,
        }
        for i in range(failures + 1)
    ]
    signed_in = start + timedelta(seconds=10 * failures)
    chosen = rng.choice(len(patient_ids), size=min(patients, len(patient_ids)), replace=False)
    steps: list[tuple[str, str]] = []
    for index in chosen.tolist():
        steps += [(patient_ids[index], "search"), (patient_ids[index], "read")]
    steps += [(patient_ids[i], "export") for i in chosen[:exports].tolist()]
    # Sorted offsets keep the steps' order: the sweep first, the exports last.
    offsets = np.sort(rng.uniform(60, 60 + 25 * 60, size=len(steps)))
    access_rows = [
        {
            "event_id": f"{tag}-access-{i}",
            "time": signed_in + timedelta(seconds=float(offsets[i])),
            "user_id": user_id,
            "patient_id": patient,
            "action": action,
            "resource_type": "DocumentReference" if action == "export" else "Patient",
            "resource_id": f"{patient}-{i}" if action == "export" else patient,
            "application": "EHR",
            "workstation": device,
            "source_ip": address,
            "outcome": "success",
            "purpose_of_use": "TREAT",
            "break_the_glass": False,
            "session_id": session,
        }
        for i, (patient, action) in enumerate(steps)
    ]
    return Attack(
        user_id,
        pl.DataFrame(signin_rows, schema=SIGNIN_EVENT_SCHEMA),
        pl.DataFrame(access_rows, schema=ACCESS_EVENT_SCHEMA).sort("time", maintain_order=True),
    )
