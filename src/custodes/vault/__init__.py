"""The record vault: an encrypted FHIR store with sensitivity-tiered envelope encryption,
an access policy on every request and every act in the tamper-evident audit log.

It may import ``core``, ``keys``, ``access`` and ``audit`` (an import-linter contract
holds it there). See docs/sensitivity.md for how a record's tier is chosen and
docs/vault.md for the store.
"""
