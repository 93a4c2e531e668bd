"""Merkle event log: checkpoints, proofs and tamper detection, on both backends."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from common.errors import NotFoundError
from license_store import merkle
from license_store.issuance import IssuanceService
from license_store.lifecycle import Act, LifecycleService
from license_store.models import Operation
from license_store.repository import Repository
from license_store.translog import EventLog, require_proof_valid

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SAMPLE = [json.loads(line) for line in (EXAMPLES / "licenses-sample.jsonl").open()]
ACT = Act("王科员", SAMPLE[0]["authority_code"], "补发遗失证照")


def _issue(service: IssuanceService, count: int) -> list[int]:
    return [service.issue(r, operator="测试员").license_id for r in SAMPLE[:count]]


def _leaves(count: int) -> list[bytes]:
    return [hashlib.sha256(b"\x00" + bytes([i])).digest() for i in range(count)]


def _reference_root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return merkle.node_hash(_reference_root(leaves[:k]), _reference_root(leaves[k:]))


def test_merkle_root_matches_definition() -> None:
    for size in range(1, 20):
        leaves = _leaves(size)
        assert merkle.root_hash(leaves) == _reference_root(leaves)


def test_merkle_empty_root() -> None:
    assert merkle.root_hash([]) == hashlib.sha256(b"").digest()


def test_merkle_proofs_verify() -> None:
    for size in range(1, 18):
        leaves = _leaves(size)
        root = merkle.root_hash(leaves)
        for index in range(size):
            proof = merkle.inclusion_proof(index, leaves)
            assert merkle.verify_inclusion(index, size, leaves[index], proof, root)
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(old, leaves)
            old_root = merkle.root_hash(leaves[:old])
            assert merkle.verify_consistency(old, size, old_root, root, proof)


def test_merkle_wrong_leaf_fails() -> None:
    leaves = _leaves(7)
    proof = merkle.inclusion_proof(3, leaves)

    assert not merkle.verify_inclusion(3, 7, leaves[4], proof, merkle.root_hash(leaves))


def test_merkle_rewritten_prefix_fails() -> None:
    leaves = _leaves(9)
    forged = [leaves[0], b"\x42" * 32, *leaves[2:]]
    proof = merkle.consistency_proof(4, forged)

    assert not merkle.verify_consistency(
        4, 9, merkle.root_hash(leaves[:4]), merkle.root_hash(forged), proof
    )


def test_merkle_accumulator_matches() -> None:
    leaves = _leaves(33)
    accumulator = merkle.RootAccumulator()
    for size, leaf in enumerate(leaves, start=1):
        accumulator.append(leaf)
        assert accumulator.root() == merkle.root_hash(leaves[:size])


def test_events_numbered_in_order(
    service: IssuanceService, repository: Repository
) -> None:
    _issue(service, 3)

    assert [e.log_index for e in repository.iter_log()] == [0, 1, 2]


def test_inclusion_proof_for_version(
    service: IssuanceService, lifecycle: LifecycleService, event_log: EventLog
) -> None:
    ids = _issue(service, 3)
    lifecycle.new_version(ids[0], Operation.REPLACE, ACT, expected_version=1)

    for license_id, version in [(ids[0], 1), (ids[0], 2), (ids[2], 1)]:
        proof = event_log.inclusion_proof(license_id, version)
        require_proof_valid(proof)
        assert proof.tree_size == 4


def test_inclusion_proof_unknown_version(
    service: IssuanceService, event_log: EventLog
) -> None:
    ids = _issue(service, 1)

    with pytest.raises(NotFoundError):
        event_log.inclusion_proof(ids[0], 5)


def test_consistency_between_checkpoints(
    service: IssuanceService, event_log: EventLog
) -> None:
    ids = _issue(service, 2)
    old = event_log.checkpoint()
    service.issue(SAMPLE[5], operator="测试员")
    new = event_log.checkpoint()

    proof = event_log.consistency_proof(old.tree_size, new.tree_size)

    assert ids
    assert merkle.verify_consistency(
        old.tree_size,
        new.tree_size,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
        [bytes.fromhex(node) for node in proof.proof],
    )


def test_checkpoint_not_repeated(
    service: IssuanceService, event_log: EventLog, repository: Repository
) -> None:
    _issue(service, 2)

    first = event_log.checkpoint()
    second = event_log.checkpoint()

    assert first.id == second.id
    assert len(repository.checkpoints()) == 1


def test_untouched_log_verifies(
    service: IssuanceService, lifecycle: LifecycleService, event_log: EventLog
) -> None:
    ids = _issue(service, 3)
    lifecycle.change_status(
        ids[0],
        Operation.SUSPEND,
        Act("王科员", SAMPLE[0]["authority_code"], "暂扣", "依法"),
    )

    report = event_log.verify()

    assert report.ok, report.problems
    assert report.entries_checked == 4
    assert report.checkpoints_checked == 1


def _drop_triggers(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for action in ("update", "delete"):
            name = f"license_events_reject_{action}"
            suffix = " ON license_events" if engine.dialect.name == "postgresql" else ""
            connection.exec_driver_sql(f"DROP TRIGGER {name}{suffix}")


def test_edited_row_named(
    service: IssuanceService,
    event_log: EventLog,
    repository: Repository,
) -> None:
    _issue(service, 4)
    event_log.checkpoint()
    _drop_triggers(repository.engine)
    with repository.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE license_events SET operator = :name WHERE log_index = 2"),
            {"name": "伪造者"},
        )

    report = event_log.verify()

    assert not report.ok
    assert report.first_problem is not None
    assert report.first_problem.log_index == 2
    assert "第 2 条" in report.first_problem.problem


def test_rehashed_row_caught_by_checkpoint(
    service: IssuanceService,
    event_log: EventLog,
    repository: Repository,
) -> None:
    _issue(service, 4)
    event_log.checkpoint()
    _drop_triggers(repository.engine)
    row = next(e for e in repository.iter_log() if e.log_index == 1)
    forged = row.model_copy(update={"operator": "伪造者"})
    from license_store.eventlog import leaf_hash_of

    with repository.engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE license_events SET operator = :name, leaf_hash = :hash "
                "WHERE log_index = 1"
            ),
            {"name": "伪造者", "hash": leaf_hash_of(forged)},
        )

    report = event_log.verify()

    assert not report.ok
    assert report.first_problem is not None
    assert "根哈希" in report.first_problem.problem


def test_deleted_row_detected(
    service: IssuanceService, event_log: EventLog, repository: Repository
) -> None:
    _issue(service, 3)
    event_log.checkpoint()
    _drop_triggers(repository.engine)
    with repository.engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM license_events WHERE log_index = 2"))

    report = event_log.verify()

    assert not report.ok
    assert "超过日志条目数" in report.problems[-1].problem


def test_forged_signature_detected(
    service: IssuanceService, event_log: EventLog, repository: Repository
) -> None:
    from standins import StandInCheckpointSigner

    _issue(service, 2)
    EventLog(repository, StandInCheckpointSigner()).checkpoint()

    report = event_log.verify()

    assert not report.ok
    assert "签名无效" in report.first_problem.problem
