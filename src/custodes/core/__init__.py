"""The domain model: events, context entities, errors, clock and ports.

Nothing here imports anything else of Custodes, nor storage, HTTP or a bus.
"""
