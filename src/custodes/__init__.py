"""Custodes: who watches the people who are allowed to look?

Custodes guards patient health information: it ingests every access to a patient
record and every security event, detects misuse, explains it, responds, and proves
HIPAA compliance.
"""

__version__ = "0.1.0"
