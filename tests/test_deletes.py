"""Deletions against the fake API on loopback: scope, one at a time, 404 = done, 403, batches."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from vccasync import (
    DeleteFailure,
    DeleteOutcome,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    VccClient,
)
from vccasync.fake import Dataset, DatasetSpec, FakeConfig, FakeVccServer, generate
from vccasync.fake._deletes import DeleteConfig

from .conftest import client_for

START = datetime(2025, 3, 1, tzinfo=UTC)
END = START + timedelta(days=2)
READ, DELETE = "interaction-content:read", "interaction-content:delete"


@pytest.fixture
def dataset() -> Dataset:
    """A fresh dataset per test: deletions change it."""
    return generate(DatasetSpec(seed=11, start=START, days=2, per_day=40, content_scale=0.001))


@pytest.fixture
async def fake(dataset: Dataset) -> AsyncIterator[FakeVccServer]:
    config = FakeConfig(deletes=DeleteConfig(latency=0.02))
    async with FakeVccServer(dataset, config) as server:
        yield server


def deleter(fake: FakeVccServer, **options: Any) -> VccClient:
    return client_for(fake, **{"deletes_per_minute": None, **options})


async def guids(vcc: VccClient) -> list[str]:
    return [it.guid async for it in vcc.interactions(START, END)]


async def test_delete_scope_is_asked_for_at_the_first_deletion_only(
    fake: FakeVccServer, dataset: Dataset
) -> None:
    async with deleter(fake) as vcc:
        found = await guids(vcc)
        assert vcc.session.tokens.scopes == [READ] and fake.stats.token_requests == 1
        assert await vcc.delete_interaction(found[0]) is DeleteOutcome.DELETED
        assert vcc.session.tokens.scopes == [READ, DELETE] and fake.stats.token_requests == 2
        assert await guids(vcc) == found[1:]  # reads keep the read token: no new token
        assert await vcc.delete_interaction(found[1]) is DeleteOutcome.DELETED
        assert fake.stats.token_requests == 2
    reads = [r for r in fake.stats.records if r.path.endswith("/interactions")]
    assert all(r.status == 200 for r in reads)


async def test_deleted_data_disappears_everywhere(fake: FakeVccServer, dataset: Dataset) -> None:
    async with deleter(fake) as vcc:
        items = [it async for it in vcc.interactions(START, END)]
        gone, trimmed = items[0], next(it for it in items[1:] if len(it.content) >= 2)
        key, kept = trimmed.content[0].content_key, trimmed.content[1].content_key
        assert await vcc.delete_interaction(gone.guid) is DeleteOutcome.DELETED
        assert await vcc.delete_content(trimmed.guid, key) is DeleteOutcome.DELETED
        with pytest.raises(NotFoundError):
            await vcc.interaction(gone.guid)
        with pytest.raises(NotFoundError):
            await vcc.download(gone.guid, gone.content[0].content_key, io.BytesIO())
        with pytest.raises(NotFoundError):
            await vcc.download(trimmed.guid, key, io.BytesIO())
        await vcc.download(trimmed.guid, kept, io.BytesIO())
        after = {it.guid: it async for it in vcc.interactions(START, END)}
        assert [c.content_key for c in (await vcc.interaction(trimmed.guid)).content] == [
            c.content_key for c in trimmed.content[1:]
        ]
    assert gone.guid not in after and len(after) == len(items) - 1
    assert [c.content_key for c in after[trimmed.guid].content] == [
        c.content_key for c in trimmed.content[1:]
    ]
    assert fake.stats.deletes.interactions_deleted == 1
    assert fake.stats.deletes.content_deleted == 1


async def test_deletions_go_one_at_a_time(fake: FakeVccServer) -> None:
    async with deleter(fake) as vcc:
        found = await guids(vcc)
        outcomes = await asyncio.gather(*(vcc.delete_interaction(g) for g in found[:8]))
        assert outcomes == [DeleteOutcome.DELETED] * 8
    stats = fake.stats.deletes
    assert stats.requests == 8 and stats.interactions_deleted == 8
    assert stats.max_in_flight == 1 and stats.concurrent_refused == 0


async def test_the_fake_refuses_overlapping_deletions(dataset: Dataset) -> None:
    """What the lock prevents: two clients deleting at once draw a 429 (then retry)."""
    slow = FakeConfig(deletes=DeleteConfig(latency=0.3))  # a deletion holds the server a while
    patient = {"backoff_initial": 0.5, "backoff_max": 2.0}  # retries outlast that deletion
    async with (
        FakeVccServer(dataset, slow) as fake,
        deleter(fake, **patient) as one,
        deleter(fake, **patient) as two,
    ):
        found = await guids(one)
        for vcc in (one, two):  # tokens first, so that both deletions leave together
            await vcc.session.tokens.token(DELETE)
        await asyncio.gather(one.delete_interaction(found[0]), two.delete_interaction(found[1]))
        assert one.stats.rate_limited + two.stats.rate_limited >= 1
    assert fake.stats.deletes.concurrent_refused >= 1
    assert fake.stats.deletes.interactions_deleted == 2


async def test_404_means_already_gone(fake: FakeVccServer) -> None:
    async with deleter(fake) as vcc:
        found = await guids(vcc)
        assert await vcc.delete_interaction(found[0]) is DeleteOutcome.DELETED
        assert await vcc.delete_interaction(found[0]) is DeleteOutcome.ALREADY_GONE
        assert await vcc.delete_content(found[0], "any") is DeleteOutcome.ALREADY_GONE
        assert vcc.stats.retries == 0


async def test_403_is_one_clear_error(dataset: Dataset) -> None:
    config = FakeConfig(scopes=(READ,))  # this client id may not delete
    async with FakeVccServer(dataset, config) as fake, deleter(fake) as vcc:
        found = await guids(vcc)
        with pytest.raises(PermissionDeniedError, match=DELETE) as info:
            await vcc.delete_interaction(found[0])
        assert info.value.status == 403 and vcc.stats.retries == 0
        assert await guids(vcc) == found  # nothing deleted, reading still works
    assert fake.stats.delete_requests == 1


async def test_batches_of_at_most_1000(fake: FakeVccServer, dataset: Dataset) -> None:
    async with deleter(fake) as vcc:
        real = await guids(vcc)
        unknown = [f"00000000-0000-4000-8000-{n:012x}" for n in range(2500 - len(real) - 1)]
        batch = real + unknown + ["not-a-guid"]
        assert len(batch) == 2500
        failures = await vcc.delete_interactions(batch)
        assert await guids(vcc) == []
    assert failures == [DeleteFailure("not-a-guid", "Invalid guid.", 400)]  # 404s are done
    stats = fake.stats.deletes
    assert stats.batch_sizes == [1000, 1000, 500] and stats.max_in_flight == 1
    assert stats.interactions_deleted == len(real)


async def test_the_deletion_budget_keeps_under_the_servers_limit(dataset: Dataset) -> None:
    # 4 a second: twice what the client sends, so a busy machine's jitter cannot draw a 429
    config = FakeConfig(deletes=DeleteConfig(per_minute=4, window=1.0))
    async with (
        FakeVccServer(dataset, config) as strict,
        deleter(strict, deletes_per_minute=120) as vcc,  # 2 a second
    ):
        found = await guids(vcc)
        for guid in found[:5]:
            assert await vcc.delete_interaction(guid) is DeleteOutcome.DELETED
        assert vcc.stats.rate_limited == 0
    assert strict.stats.deletes.rate_limited == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda vcc: vcc.delete_interaction(""), "guid"),
        (lambda vcc: vcc.delete_interaction(42), "guid"),
        (lambda vcc: vcc.delete_content("g", ""), "content_key"),
        (lambda vcc: vcc.delete_interactions("one-guid"), "collection"),
        (lambda vcc: vcc.delete_interactions(["ok", None]), "guid"),
    ],
)
async def test_bad_arguments_send_nothing(fake: FakeVccServer, call: Any, message: str) -> None:
    async with deleter(fake) as vcc:
        with pytest.raises(InvalidRequestError, match=message):
            await call(vcc)
    assert fake.stats.requests == 0


class TooOld(Exception):
    """A guard's refusal."""


class Budget:
    """A deletion budget that records its waits (and lets every one through at once)."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.per_minute = None

    async def acquire(self) -> None:
        self.events.append("budget")


async def test_a_reserved_slot_and_a_guard_put_the_check_right_before_the_send(
    fake: FakeVccServer,
) -> None:
    events: list[str] = []

    def guard() -> None:
        events.append("guard")

    def refuse() -> None:
        events.append("refused")
        raise TooOld

    async with deleter(fake) as vcc:
        found = await guids(vcc)
        vcc._deletes.budget = Budget(events)  # type: ignore[assignment]
        await vcc.reserve_deletion()  # the budget's wait, before the check
        await vcc.reserve_deletion()  # a slot already held: no second wait
        events.append("check")  # GET /interactions/{guid} would go here
        assert await vcc.delete_interaction(found[0], guard=guard) is DeleteOutcome.DELETED
        assert events == ["budget", "check", "guard"]  # the slot was not waited for again
        events.clear()
        with pytest.raises(TooOld):  # refused after the waits: nothing is sent
            await vcc.delete_content(found[1], "any", guard=refuse)
        assert events == ["budget", "refused"]
        assert fake.stats.deletes.requests == 1
