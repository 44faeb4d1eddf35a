"""Passwords: a length-first policy after NIST SP 800-63B, hashed with Argon2id.

The policy asks for length and refuses passwords that are known to be common or that
contain the account name; it has no composition rules (no "one digit and one symbol"),
no hints and no periodic expiry, as SP 800-63B section 5.1.1.2 advises. Every printable
Unicode character and the space are allowed; the text is NFKC-normalised first, so the
same password typed on two keyboards hashes the same.

>>> policy = PasswordPolicy()
>>> policy.problem("correct horse battery staple", "alice") is None
True
>>> policy.problem("password1234", "alice")
'this password is on the list of common passwords; choose another'
>>> policy.problem("short", "alice")
'a password needs at least 12 characters'
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from custodes.identity.errors import PasswordRejected

_RUNS_OF_SPACES = re.compile(r" {2,}")


@cache
def common_passwords() -> frozenset[str]:
    """The bundled list of common passwords, lower-cased."""
    text = resources.files("custodes.identity").joinpath("common-passwords.txt").read_text()
    return frozenset(
        line.strip().lower()
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    )


def normalise(password: str) -> str:
    """NFKC, as SP 800-63B asks before hashing."""
    return unicodedata.normalize("NFKC", password)


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """Length first: at least ``min_length`` characters, at most ``max_length``."""

    min_length: int = 12
    max_length: int = 128

    def problem(self, password: str, account_name: str = "") -> str | None:
        """What is wrong with ``password``, or None when it is acceptable."""
        text = normalise(password)
        if len(_RUNS_OF_SPACES.sub(" ", text)) < self.min_length:  # "a    b" is not long
            return f"a password needs at least {self.min_length} characters"
        if len(text) > self.max_length:
            return f"a password may have at most {self.max_length} characters"
        if not text.isprintable():
            return "a password may not contain control characters"
        folded = text.lower()
        if folded in common_passwords() or folded.strip("0123456789!. ") in common_passwords():
            return "this password is on the list of common passwords; choose another"
        if len(set(folded)) < 4:
            return "this password repeats too few characters; choose another"
        if account_name and len(account_name) >= 3 and account_name.lower() in folded:
            return "a password may not contain the account name"
        return None

    def check(self, password: str, account_name: str = "") -> None:
        """Raise ``PasswordRejected`` with the reason when the password is refused."""
        reason = self.problem(password, account_name)
        if reason:
            raise PasswordRejected(reason)


@dataclass(frozen=True, slots=True)
class Argon2Parameters:
    """Argon2id cost. The defaults are argon2-cffi's (RFC 9106 "low memory"): 3 passes
    over 64 MiB with 4 lanes. Tests inject cheaper ones; they are configuration."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4
    #: Hashes computed at once; the rest wait. Bounds the memory a flood of sign-ins
    #: can take (4 x 64 MiB by default) instead of one hash per server thread.
    max_concurrent: int = 4


class PasswordHasher:
    """Hash and verify with Argon2id; say when a stored hash needs its parameters renewed."""

    def __init__(self, parameters: Argon2Parameters | None = None) -> None:
        self.parameters = parameters or Argon2Parameters()
        self._argon2 = _Argon2(
            time_cost=self.parameters.time_cost,
            memory_cost=self.parameters.memory_cost_kib,
            parallelism=self.parameters.parallelism,
            type=Type.ID,
        )
        self._slots = threading.BoundedSemaphore(self.parameters.max_concurrent)
        # Verified when no account matches, so an unknown name costs the same time.
        self.dummy_hash = self._argon2.hash("no account has this password")

    def hash(self, password: str) -> str:
        with self._slots:
            return self._argon2.hash(normalise(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches; always does one full Argon2id computation."""
        try:
            with self._slots:
                matched = self._argon2.verify(stored or self.dummy_hash, normalise(password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return self._argon2.check_needs_rehash(stored)
