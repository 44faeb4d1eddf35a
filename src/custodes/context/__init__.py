"""The hospital's context, as tables a detector can join access events with."""

from custodes.context.tables import HospitalContext

__all__ = ["HospitalContext"]
