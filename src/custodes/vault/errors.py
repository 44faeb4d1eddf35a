"""What the vault refuses, each as one line a FHIR client gets in an OperationOutcome.

``code`` is the FHIR issue type (http://hl7.org/fhir/issue-type). No message holds a
value from a resource: they name elements, types and ids only.
"""

from __future__ import annotations

from custodes.core.errors import CustodesError


class VaultError(CustodesError):
    code = "processing"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class InvalidResource(VaultError):
    """The request body is not a resource the vault can store (HTTP 400/422)."""

    code = "invalid"


class RecordNotFound(VaultError):
    code = "not-found"


class RecordGone(VaultError):
    """The record was deleted, or its patient erased (HTTP 410)."""

    code = "deleted"


class AccessDenied(VaultError):
    """The access policy said no (HTTP 403). The reason is the policy's, never a value."""

    code = "forbidden"

    def __init__(self, message: str, *, step_up: bool = False) -> None:
        super().__init__(message)
        self.step_up = step_up


class VersionMismatch(VaultError):
    """An If-Match or a concurrent writer disagreed about the current version (HTTP 409/412)."""

    code = "conflict"
