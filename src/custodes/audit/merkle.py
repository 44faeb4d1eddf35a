"""RFC 6962 (Certificate Transparency) Merkle tree hashing over the audit chain.

Leaves are hashed ``SHA-256(0x00 || leaf)`` and interior nodes ``SHA-256(0x01 || left ||
right)``, with the split at the largest power of two below the size, so a root made
here agrees with every other RFC 6962 implementation (the tests hold the published
reference roots).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The tree head of ``leaves`` (raw leaf data, hashed here).

    Computed level by level (the RFC's recursion, without recursing): an odd node at the
    end of a level is carried up unchanged, which is exactly the RFC's unbalanced split.

    >>> merkle_root([]).hex()[:16]
    'e3b0c44298fc1c14'
    """
    if not leaves:
        return EMPTY_ROOT
    sha = hashlib.sha256
    level = [sha(b"\x00" + leaf).digest() for leaf in leaves]
    while len(level) > 1:
        paired = [sha(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class MerkleFrontier:
    """The RFC 6962 tree head kept up to date as leaves are appended, in O(log n) memory.

    It holds the roots of the perfect subtrees the leaves so far decompose into (largest
    first, as the binary digits of the size); the tree head folds them from the right,
    which is exactly the RFC's split at the largest power of two. A checkpoint therefore
    hashes only the entries appended since the last one, not the whole log.

    >>> frontier = MerkleFrontier()
    >>> for leaf in (b"a", b"b", b"c"):
    ...     frontier.add(leaf)
    >>> frontier.root() == merkle_root([b"a", b"b", b"c"])
    True
    """

    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[tuple[int, bytes]] = []

    def add(self, leaf: bytes) -> None:
        width, node = 1, hashlib.sha256(b"\x00" + leaf).digest()
        while self._nodes and self._nodes[-1][0] == width:
            _, left = self._nodes.pop()
            width, node = width * 2, hashlib.sha256(b"\x01" + left + node).digest()
        self._nodes.append((width, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._nodes:
            return EMPTY_ROOT
        root = self._nodes[-1][1]
        for _, node in reversed(self._nodes[:-1]):
            root = hashlib.sha256(b"\x01" + node + root).digest()
        return root
