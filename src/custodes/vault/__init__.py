"""The encrypted FHIR record store: sensitivity classification, tiered encryption, rotation.

It may import ``core``, ``keys``, ``access`` and ``audit`` (an import-linter contract
holds it there). See docs/sensitivity.md for how a record's tier is chosen.
"""
