"""The one error every failure to decrypt raises."""

from __future__ import annotations

from custodes.core.errors import CustodesError


class Undecryptable(CustodesError):
    """A record or key does not open: wrong key, moved, tampered, shredded or retired.

    Deliberately opaque (like ``cryptography.fernet.InvalidToken``): the message is the
    same whatever the cause, so a caller learns nothing from it.
    """

    def __init__(self) -> None:
        super().__init__("the record cannot be decrypted")
