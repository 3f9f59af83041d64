"""The audit index on SQLite and PostgreSQL, fed with the blocks of a real alliance ledger."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from fabric_protos.common import common_pb2

from medalliance.app.audit_index import AuditIndex
from medalliance.audit.facts import Fact, facts_of_block
from medalliance.database_url import parse_database_url
from medalliance.errors import Conflict, PreconditionFailed


def expected_facts(blocks: list[common_pb2.Block]) -> list[Fact]:
    return [fact for block in blocks for fact in facts_of_block(block, "alliance")]


def open_index(url: str) -> AuditIndex:
    return AuditIndex(parse_database_url(url), "alliance")


def test_catch_up_from_genesis_indexes_every_fact_once(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    with open_index(database_url) as index:
        done = index.catch_up(ledger_blocks)
        assert done.blocks == len(ledger_blocks)
        assert done.next_block == len(ledger_blocks)
        assert index.facts() == expected_facts(ledger_blocks)
        assert done.facts == len(expected_facts(ledger_blocks))


def test_a_replay_of_indexed_blocks_changes_nothing(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    with open_index(database_url) as index:
        index.catch_up(ledger_blocks[:10])
        again = index.catch_up(ledger_blocks)  # from genesis again: 0-9 are skipped
        assert again.blocks == len(ledger_blocks) - 10
        assert index.facts() == expected_facts(ledger_blocks)
        assert index.catch_up(ledger_blocks).facts == 0


def test_a_block_after_a_gap_is_refused_and_nothing_is_written(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    with open_index(database_url) as index:
        index.catch_up(ledger_blocks[:5])
        before = index.facts()
        with pytest.raises(PreconditionFailed, match="before block 5"):
            index.add_block(ledger_blocks[7])
        assert (index.next_block(), index.facts()) == (5, before)


def test_a_block_of_another_ledger_is_refused_and_nothing_is_written(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    forged = common_pb2.Block()
    forged.CopyFrom(ledger_blocks[20])
    forged.header.previous_hash = b"\x01" * 32
    with open_index(database_url) as index:
        index.catch_up(ledger_blocks[:20])
        before = index.facts()
        with pytest.raises(Conflict, match="--rebuild"):
            index.add_block(forged)
        assert (index.next_block(), index.facts()) == (20, before)


def test_rebuild_reads_again_from_genesis(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    with open_index(database_url) as index:
        index.catch_up(ledger_blocks)
        index.rebuild()
        assert (index.next_block(), index.count()) == (0, 0)
        index.catch_up(ledger_blocks)
        assert index.facts() == expected_facts(ledger_blocks)


def test_the_index_filters_by_kind_month_subject_and_party(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    facts = expected_facts(ledger_blocks)
    created = [f for f in facts if f.kind == "referral.created"]
    with open_index(database_url) as index:
        index.catch_up(ledger_blocks)
        assert index.facts(["referral.created"]) == created
        assert index.facts(["referral.created"], period=created[0].timestamp[:7]) == created
        assert index.facts(["referral.created"], period="1999-01") == []
        assert index.facts(subjects=[created[0].subject])[0] == created[0]
        tertiary = created[0].attribute("to_hospital")
        assert index.facts(["referral.created"], party=tertiary) == created


_INDEXER = """
import sys
from fabric_protos.common import common_pb2
from medalliance.app.audit_index import AuditIndex
from medalliance.database_url import parse_database_url

index = AuditIndex(parse_database_url(sys.argv[1]), "alliance")
for path in sys.argv[3:]:
    block = common_pb2.Block()
    block.ParseFromString(open(path, "rb").read())
    index.add_block(block)
    if block.header.number == int(sys.argv[2]):
        print("indexed", block.header.number, flush=True)
        sys.stdin.read()  # stays here, between blocks, until killed
"""


def test_an_indexer_killed_between_blocks_resumes_without_a_gap_or_a_double(
    database_url: str, ledger_blocks: list[common_pb2.Block], tmp_path: Path
) -> None:
    files = []
    for block in ledger_blocks:
        files.append(tmp_path / f"{block.header.number}.block")
        files[-1].write_bytes(block.SerializeToString())
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_INDEXER), database_url, "12", *map(str, files)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "indexed 12"
        child.kill()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    with open_index(database_url) as index:
        assert index.next_block() == 13  # block 12 was committed before the kill
        index.catch_up(ledger_blocks[13:])
        assert index.facts() == expected_facts(ledger_blocks)


def test_two_indexers_on_one_index_never_double_a_block(
    database_url: str, ledger_blocks: list[common_pb2.Block]
) -> None:
    errors: list[BaseException] = []

    def index_everything() -> None:
        try:
            with open_index(database_url) as index:
                for _ in range(3):  # a race on the very first block is refused: retry
                    try:
                        index.catch_up(ledger_blocks)
                        return
                    except Conflict:
                        continue
                raise AssertionError("the indexer never got through")
        except BaseException as exc:  # reported by the test thread below
            errors.append(exc)

    workers = [threading.Thread(target=index_everything) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert errors == []
    with open_index(database_url) as index:
        assert index.facts() == expected_facts(ledger_blocks)
