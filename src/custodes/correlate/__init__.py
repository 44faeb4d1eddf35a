"""Alerts to cases: thresholds, deduplication, suppressions, correlation rules.

Everything here is pure: it takes frames and records and returns new ones; the
storage adapters and the edges do the I/O.
"""
