"""The event log as a Merkle tree: signed checkpoints, proofs, full check.

Every event row is one leaf, at position ``log_index``; the tree follows
RFC 9162 (:mod:`license_store.merkle`). A checkpoint signs the tree size and
root in the text form of a transparency-log checkpoint::

    <origin>
    <tree size>
    <base64 root hash>

Whoever keeps a copy of a signed checkpoint can later ask for an inclusion
proof of any version and a consistency proof to any newer checkpoint, and
so detect a register that rewrote its history.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.errors import ConflictError, InputError, NotFoundError, StorageError
from license_store import merkle
from license_store.eventlog import leaf_hash_of
from license_store.models import LicenseEvent, LogCheckpoint
from license_store.repository import Repository

log = logging.getLogger(__name__)

DEFAULT_ORIGIN = "elicense register"


class CheckpointSigner(Protocol):
    """Key that signs checkpoints; ``key_id`` names it in each checkpoint."""

    key_id: str

    def sign(self, data: bytes) -> bytes: ...

    def verify(self, data: bytes, signature: bytes) -> bool: ...


def checkpoint_note(origin: str, tree_size: int, root: bytes) -> str:
    """Return the signed text of a checkpoint."""
    return f"{origin}\\n{tree_size}\\n{base64.b64encode(root).decode('ascii')}\\n"


@dataclass(frozen=True)
class InclusionProof:
    """Proof that one event (the issue of a version) is in a checkpoint's tree."""

    license_id: int
    version: int
    log_index: int
    leaf_hash: str
    tree_size: int
    proof: list[str]
    checkpoint: LogCheckpoint

    def to_json(self) -> dict[str, Any]:
        return {
            "license_id": self.license_id,
            "version": self.version,
            "log_index": self.log_index,
            "leaf_hash": self.leaf_hash,
            "tree_size": self.tree_size,
            "proof": self.proof,
            "checkpoint": checkpoint_json(self.checkpoint),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    """Proof that an older checkpoint's tree is a prefix of a newer one."""

    old: LogCheckpoint
    new: LogCheckpoint
    proof: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "old": checkpoint_json(self.old),
            "new": checkpoint_json(self.new),
            "proof": self.proof,
        }


@dataclass(frozen=True)
class LogProblem:
    """One entry or checkpoint that does not match, with a readable reason."""

    log_index: int | None
    problem: str


@dataclass
class LogReport:
    entries_checked: int = 0
    checkpoints_checked: int = 0
    problems: list[LogProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_problem(self) -> LogProblem | None:
        return self.problems[0] if self.problems else None


def checkpoint_json(row: LogCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "note": row.note,
        "key_id": row.key_id,
        "signature": row.signature,
        "created_at": row.created_at.isoformat(),
    }


class EventLog:
    """Checkpoints and proofs over the events of one register.

    Without a signer the log can be checked and proofs served from stored
    checkpoints, but no new checkpoint can be made.
    """

    def __init__(
        self,
        repository: Repository,
        signer: CheckpointSigner | None = None,
        origin: str = DEFAULT_ORIGIN,
    ) -> None:
        self.repository = repository
        self.signer = signer
        self.origin = origin

    def leaves(self, size: int | None = None) -> list[bytes]:
        """Return the stored leaf hashes in log order."""
        return [bytes.fromhex(h) for h in self.repository.iter_leaf_hashes(size)]

    # --- checkpoints ----------------------------------------------------

    def checkpoint(self) -> LogCheckpoint:
        """Return a signed checkpoint of the whole log, signing one if it grew."""
        latest = self.repository.latest_checkpoint()
        size = self.repository.log_size()
        if latest is not None and latest.tree_size >= size:
            return latest
        if self.signer is None:
            raise StorageError(
                "没有签署检查点的密钥，无法为事件日志生成新的检查点",
                fix="请在能加载签发密钥的环境中运行（elicense log checkpoint）",
            )
        leaves = self.leaves(size)
        root = merkle.root_hash(leaves)
        note = checkpoint_note(self.origin, len(leaves), root)
        signature = self.signer.sign(note.encode("utf-8"))
        row = LogCheckpoint(
            tree_size=len(leaves),
            root_hash=root.hex(),
            note=note,
            key_id=self.signer.key_id,
            signature=base64.b64encode(signature).decode("ascii"),
        )
        return self.repository.add_checkpoint(row)

    def _checkpoint_covering(self, log_index: int) -> LogCheckpoint:
        latest = self.repository.latest_checkpoint()
        if latest is not None and latest.tree_size > log_index:
            return latest
        return self.checkpoint()

    # --- proofs ---------------------------------------------------------

    def inclusion_proof(self, license_id: int, version: int) -> InclusionProof:
        """Prove that the issue of a version is in the latest checkpoint."""
        event = self.repository.version_event(license_id, version)
        checkpoint = self._checkpoint_covering(event.log_index)
        leaves = self.leaves(checkpoint.tree_size)
        path = merkle.inclusion_proof(event.log_index, leaves)
        return InclusionProof(
            license_id=license_id,
            version=version,
            log_index=event.log_index,
            leaf_hash=event.leaf_hash,
            tree_size=checkpoint.tree_size,
            proof=[node.hex() for node in path],
            checkpoint=checkpoint,
        )

    def consistency_proof(self, old_size: int, new_size: int) -> ConsistencyProof:
        """Prove that the checkpoint at ``old_size`` is a prefix of ``new_size``."""
        if not 0 < old_size <= new_size:
            raise InputError(
                f"检查点大小应满足 0 < 旧 ≤ 新，收到 {old_size} 和 {new_size}",
                field="old_size",
                value=old_size,
                fix="请传入两个已签署检查点的树大小，旧的在前",
            )
        old = self._stored_checkpoint(old_size)
        new = self._stored_checkpoint(new_size)
        path = merkle.consistency_proof(old_size, self.leaves(new_size))
        return ConsistencyProof(old, new, [node.hex() for node in path])

    def _stored_checkpoint(self, tree_size: int) -> LogCheckpoint:
        row = self.repository.checkpoint_at(tree_size)
        if row is None:
            raise NotFoundError(
                f"没有树大小为 {tree_size} 的检查点",
                fix="请先查询检查点列表（elicense log checkpoints）",
            )
        return row

    # --- full check -----------------------------------------------------

    def verify(self) -> LogReport:
        """Recompute every leaf and every checkpoint root and signature.

        Reports, in log order, entries whose position or leaf hash does not
        match their fields, and checkpoints whose root or signature does not
        match. A changed leaf hash that still fits its fields shows as the
        first checkpoint that covers it, naming the entries since the last
        checkpoint that matched.
        """
        report = LogReport()
        checkpoints = iter(self.repository.checkpoints())
        pending = next(checkpoints, None)
        accumulator = merkle.RootAccumulator()
        verified_size = 0
        while pending is not None and pending.tree_size == 0:
            self._check_checkpoint(pending, accumulator, verified_size, report)
            pending = next(checkpoints, None)
        for event in self.repository.iter_log():
            self._check_entry(event, accumulator.size, report)
            accumulator.append(bytes.fromhex(event.leaf_hash))
            report.entries_checked += 1
            while pending is not None and pending.tree_size == accumulator.size:
                if self._check_checkpoint(pending, accumulator, verified_size, report):
                    verified_size = pending.tree_size
                pending = next(checkpoints, None)
        for row in _remaining(pending, checkpoints):
            report.checkpoints_checked += 1
            report.problems.append(
                LogProblem(
                    None,
                    f"检查点的树大小 {row.tree_size} 超过日志条目数 "
                    f"{accumulator.size}，日志条目被删除",
                )
            )
        return report

    def _check_entry(
        self, event: LicenseEvent, position: int, report: LogReport
    ) -> None:
        if event.log_index != position:
            report.problems.append(
                LogProblem(
                    position,
                    f"第 {position} 条应在此位置，实为序号 {event.log_index}"
                    f"（事件 {event.id}），日志条目缺失或重排",
                )
            )
        if leaf_hash_of(event) != event.leaf_hash:
            report.problems.append(
                LogProblem(
                    event.log_index,
                    f"第 {event.log_index} 条（事件 {event.id}，证照 "
                    f"{event.license_id} 版本 {event.version}）的内容与其叶哈希不符",
                )
            )

    def _check_checkpoint(
        self,
        row: LogCheckpoint,
        accumulator: merkle.RootAccumulator,
        verified_size: int,
        report: LogReport,
    ) -> bool:
        report.checkpoints_checked += 1
        root = accumulator.root()
        problems = []
        if root.hex() != row.root_hash:
            problems.append(
                f"根哈希与第 {verified_size} 至 {row.tree_size - 1} 条重新计算的"
                "结果不符，其中有条目被改动"
            )
        expected_note = checkpoint_note(
            self.origin, row.tree_size, bytes.fromhex(row.root_hash)
        )
        if row.note != expected_note:
            problems.append("签署文本与树大小或根哈希不符")
        if self.signer is None or self.signer.key_id != row.key_id:
            current = self.signer.key_id if self.signer else "无"
            problems.append(f"签名无法核验：密钥 {row.key_id} 不是当前密钥 {current}")
        elif not self._signature_valid(row):
            problems.append(f"签名无效（密钥 {row.key_id}）")
        for problem in problems:
            report.problems.append(
                LogProblem(
                    verified_size, f"检查点（树大小 {row.tree_size}）：{problem}"
                )
            )
        return not problems

    def _signature_valid(self, row: LogCheckpoint) -> bool:
        assert self.signer is not None
        try:
            signature = base64.b64decode(row.signature, validate=True)
        except ValueError:
            return False
        return self.signer.verify(row.note.encode("utf-8"), signature)


def _remaining(
    pending: LogCheckpoint | None, rest: Iterator[LogCheckpoint]
) -> Iterator[LogCheckpoint]:
    if pending is not None:
        yield pending
    yield from rest


def require_proof_valid(proof: InclusionProof) -> None:
    """Raise ConflictError unless the inclusion proof fits its checkpoint root."""
    valid = merkle.verify_inclusion(
        proof.log_index,
        proof.tree_size,
        bytes.fromhex(proof.leaf_hash),
        [bytes.fromhex(node) for node in proof.proof],
        bytes.fromhex(proof.checkpoint.root_hash),
    )
    if not valid:
        raise ConflictError(
            f"证照 {proof.license_id} 版本 {proof.version} 的包含证明与检查点不符",
            fix="请运行 elicense log verify 检查事件日志",
        )
