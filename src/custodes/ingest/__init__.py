"""Readers for every input format, to core events and context, with quarantine.

Every reader turns bytes into batches of ``core`` events; whatever it cannot use goes
to the quarantine with its line number and the reason. Nothing is dropped silently.
"""
