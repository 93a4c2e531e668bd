"""Merkle tree hashes and proofs of RFC 9162 (Certificate Transparency 2.0).

Leaves are given as their leaf hashes (SHA-256 over ``0x00`` and the leaf
data, see :mod:`license_store.eventlog`); an inner node is SHA-256 over
``0x01``, the left and the right child. The tree over ``n`` leaves splits at
``k``, the largest power of two below ``n``. Functions take the whole list of
leaf hashes, so building a proof reads every leaf once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(size: int) -> int:
    """Return the largest power of two smaller than ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash (MTH) of the leaf hashes."""
    if not leaves:
        return EMPTY_ROOT
    level = list(leaves)
    while len(level) > 1:
        # Pairing left to right gives the RFC 9162 shape: a lone last node
        # moves up unchanged, as in the split at the largest power of two.
        paired = [node_hash(a, b) for a, b in zip(level[::2], level[1::2])]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the audit path of leaf ``index`` in the tree over ``leaves``."""
    if not 0 <= index < len(leaves):
        raise ValueError(f"leaf index {index} outside a tree of {len(leaves)}")
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return inclusion_proof(index, leaves[:k]) + [root_hash(leaves[k:])]
    return inclusion_proof(index - k, leaves[k:]) + [root_hash(leaves[:k])]


def consistency_proof(old_size: int, leaves: Sequence[bytes]) -> list[bytes]:
    """Return the proof that the first ``old_size`` leaves are a prefix."""
    if not 0 < old_size <= len(leaves):
        raise ValueError(f"old size {old_size} outside 1..{len(leaves)}")
    return _subproof(old_size, leaves, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return _subproof(m, leaves[:k], complete) + [root_hash(leaves[k:])]
    return _subproof(m - k, leaves[k:], False) + [root_hash(leaves[:k])]


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an audit path as in RFC 9162, section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Check a consistency proof as in RFC 9162, section 2.1.4.2."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if not 0 < old_size < new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root starts
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


class RootAccumulator:
    """Merkle tree hash of a growing list of leaves, one leaf at a time.

    Keeps the roots of the perfect subtrees (at most log2 n of them), so
    the roots at many sizes come out of one pass over the leaves.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (height, subtree root)
        self.size = 0

    def append(self, leaf: bytes) -> None:
        node, height = leaf, 0
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            node = node_hash(left, node)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node
