"""Secret files in the data directory: created 0600, refused when others may read them.

The one place Custodes reads and writes key material on disk (the identity key, the
keyring, the audit signing key). A file is created with ``O_EXCL`` so two processes
starting together cannot both make one; it is replaced atomically (write a sibling,
``os.replace``) so a crash never leaves half a keyring.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from custodes.core.errors import ConfigurationError


def check_private(path: Path) -> None:
    """Refuse a key file that the group or the world may read or write.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> p = Path(folder) / "k"; _ = p.write_bytes(b"x"); os.chmod(p, 0o644)
    >>> check_private(p)
    Traceback (most recent call last):
    custodes.core.errors.ConfigurationError: key file k is readable by others (mode 0o644); run: chmod 600 k
    """
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigurationError(
            f"key file {path.name} is readable by others (mode {oct(mode)}); run: chmod 600 {path.name}"
        )


def read_or_create(path: Path, make: Callable[[], bytes]) -> bytes:
    """The file's bytes; on first use, ``make()`` them and write the file 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        check_private(path)
        return path.read_bytes()
    data = make()
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return data


def replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, 0600."""
    scratch = path.with_name(f".{path.name}.new")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)
