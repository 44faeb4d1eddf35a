"""The record vault: an encrypted FHIR store with sensitivity-tiered envelope encryption,
an access policy on every request and every act in the tamper-evident audit log."""
