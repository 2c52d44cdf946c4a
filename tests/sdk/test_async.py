"""The same API through `AsyncCloudflare`: queues #1–#6 and consumers #7–#11
operation by operation (as the sync suite does), concurrent producers and
pullers, and errors raised from the async client."""

from __future__ import annotations

import asyncio

import cloudflare
import pytest

from async_helpers import AsyncScenario, run_scenario
from conftest import async_client, unique_name
from helpers import HEX32, api_error

DEFAULT_RETENTION = 345_600


def test_async_queue_update_edit_delete(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue = await s.new_queue("a-crud")
        fetched = await s.sdk.queues.get(queue.queue_id, account_id=s.account_id)
        assert fetched.to_dict() == queue.to_dict()

        updated = await s.sdk.queues.update(
            queue.queue_id,
            account_id=s.account_id,
            queue_name=queue.queue_name,
            settings={"delivery_delay": 5, "message_retention_period": 3600},
        )
        assert (updated.settings.delivery_delay, updated.settings.message_retention_period) == (5, 3600)
        # PUT replaces: settings left out go back to their defaults.
        replaced = await s.sdk.queues.update(queue.queue_id, account_id=s.account_id, queue_name=queue.queue_name)
        assert replaced.settings.delivery_delay == 0
        assert replaced.settings.message_retention_period == DEFAULT_RETENTION

        # PATCH merges: the delay survives a pause, and a rename keeps the id.
        await s.sdk.queues.edit(queue.queue_id, account_id=s.account_id, settings={"delivery_delay": 7})
        paused = await s.sdk.queues.edit(queue.queue_id, account_id=s.account_id, settings={"delivery_paused": True})
        assert paused.settings.delivery_paused is True and paused.settings.delivery_delay == 7
        new_name = unique_name("a-renamed")
        renamed = await s.sdk.queues.edit(queue.queue_id, account_id=s.account_id, queue_name=new_name)
        assert renamed.queue_name == new_name and renamed.queue_id == queue.queue_id
        assert renamed.settings.delivery_paused is True

        deleted = await s.sdk.queues.delete(queue.queue_id, account_id=s.account_id)
        assert deleted.success is True and deleted.errors == []
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.get(queue.queue_id, account_id=s.account_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.delete(queue.queue_id, account_id=s.account_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 10104)

    run_scenario(base_url, api_token, account_id, body)


def test_async_queue_list_filters_and_pages(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        created = [await s.new_queue("a-page") for _ in range(5)]
        created_ids = {queue.queue_id for queue in created}

        # The SDK's async pager (a SinglePage) must stop after its one page.
        listed = []
        async for queue in s.sdk.queues.list(account_id=s.account_id):
            listed.append(queue.queue_id)
            assert len(listed) < 10_000, "pagination did not terminate"
        assert created_ids <= set(listed) and len(listed) == len(set(listed))

        first, second = created[0], created[1]
        by_name = s.sdk.queues.list(account_id=s.account_id, extra_query={"name": [first.queue_name, second.queue_name]})
        assert sorted([q.queue_id async for q in by_name]) == sorted([first.queue_id, second.queue_id])
        missing = s.sdk.queues.list(account_id=s.account_id, extra_query={"name": unique_name("absent")})
        assert [q async for q in missing] == []

        # page / per_page: every queue exactly once, then an empty page.
        path = f"/accounts/{s.account_id}/queues"
        seen: list[str] = []
        total = None
        for page in range(1, 1000):
            envelope = await s.envelope_get(path, {"page": page, "per_page": 2})
            info = envelope["result_info"]
            assert info["page"] == page and info["per_page"] == 2
            assert info["count"] == len(envelope["result"]) <= 2
            total = info["total_count"] if total is None else total
            assert info["total_count"] == total and info["total_pages"] == (total + 1) // 2
            seen.extend(queue["queue_id"] for queue in envelope["result"])
            if page * 2 >= total:
                break
        assert len(seen) == total == len(set(seen))
        assert created_ids <= set(seen)
        beyond = await s.envelope_get(path, {"page": total // 2 + 2, "per_page": 2})
        assert beyond["result"] == [] and beyond["result_info"]["count"] == 0

    run_scenario(base_url, api_token, account_id, body)


def test_async_consumer_list_get_update_delete(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, consumer = await s.pull_queue("a-cons", settings={"batch_size": 10, "max_retries": 3})
        assert HEX32.match(consumer.consumer_id) and consumer.type == "http_pull"
        listed = [c.consumer_id async for c in s.sdk.queues.consumers.list(queue.queue_id, account_id=s.account_id)]
        assert listed == [consumer.consumer_id]
        fetched = await s.sdk.queues.consumers.get(
            consumer.consumer_id, account_id=s.account_id, queue_id=queue.queue_id
        )
        assert fetched.to_dict() == consumer.to_dict()

        updated = await s.sdk.queues.consumers.update(
            consumer.consumer_id,
            account_id=s.account_id,
            queue_id=queue.queue_id,
            type="http_pull",
            settings={"batch_size": 7, "max_retries": 4},
        )
        assert updated.consumer_id == consumer.consumer_id
        assert (updated.settings.batch_size, updated.settings.max_retries) == (7, 4)
        again = await s.sdk.queues.consumers.get(consumer.consumer_id, account_id=s.account_id, queue_id=queue.queue_id)
        assert again.settings.to_dict() == updated.settings.to_dict()

        # One consumer per queue, from the async client too.
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.consumers.create(
                queue.queue_id, account_id=s.account_id, type="worker", script_name="w"
            )
        api_error(excinfo, cloudflare.ConflictError, 409, 11004)

        deleted = await s.sdk.queues.consumers.delete(
            consumer.consumer_id, account_id=s.account_id, queue_id=queue.queue_id
        )
        assert deleted.success is True
        assert [c async for c in s.sdk.queues.consumers.list(queue.queue_id, account_id=s.account_id)] == []
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.consumers.get(consumer.consumer_id, account_id=s.account_id, queue_id=queue.queue_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 11006)

        # PUT creates a missing consumer with the id it names (wrangler deploy).
        wanted_id = "c0ffee" + "1" * 26
        worker = await s.sdk.queues.consumers.update(
            wanted_id, account_id=s.account_id, queue_id=queue.queue_id, type="worker", script_name="deployer"
        )
        assert worker.consumer_id == wanted_id and worker.script_name == "deployer"

    run_scenario(base_url, api_token, account_id, body)


async def concurrent_flow(base_url: str, api_token: str, account_id: str) -> None:
    async with async_client(base_url, api_token) as sdk:
        queue = await sdk.queues.create(account_id=account_id, queue_name=unique_name("async"))
        qid = queue.queue_id
        try:
            await sdk.queues.consumers.create(qid, account_id=account_id, type="http_pull")
            # 4 producers × 25 messages, at once.
            await asyncio.gather(
                *(
                    sdk.queues.messages.bulk_push(
                        qid,
                        account_id=account_id,
                        messages=[{"body": f"p{p}-m{i}", "content_type": "text"} for i in range(25)],
                    )
                    for p in range(4)
                )
            )
            metrics = await sdk.queues.get_metrics(qid, account_id=account_id)
            assert metrics.backlog_count == 100

            # 10 concurrent pulls of 10: every message handed out exactly once.
            pulls = await asyncio.gather(
                *(sdk.queues.messages.pull(qid, account_id=account_id, batch_size=10) for _ in range(10))
            )
            messages = [m for pulled in pulls for m in pulled.messages]
            assert len(messages) == 100
            assert len({m.id for m in messages}) == 100
            assert sorted(m.body for m in messages) == sorted(f"p{p}-m{i}" for p in range(4) for i in range(25))

            acks = await asyncio.gather(
                *(
                    sdk.queues.messages.ack(
                        qid, account_id=account_id, acks=[{"lease_id": m.lease_id} for m in pulled.messages]
                    )
                    for pulled in pulls
                )
            )
            assert sum(outcome.ack_count for outcome in acks) == 100
            metrics = await sdk.queues.get_metrics(qid, account_id=account_id)
            assert (metrics.backlog_count, metrics.backlog_bytes, metrics.oldest_message_timestamp_ms) == (0, 0, 0)
        finally:
            await sdk.queues.delete(qid, account_id=account_id)


def test_async_concurrent_push_pull_ack(base_url, api_token, account_id):
    asyncio.run(concurrent_flow(base_url, api_token, account_id))


async def async_errors(base_url: str, api_token: str, account_id: str) -> None:
    async with async_client(base_url, api_token) as sdk:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await sdk.queues.get("0" * 32, account_id=account_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await sdk.queues.create(account_id=account_id, queue_name="Not_Valid")
        api_error(excinfo, cloudflare.BadRequestError, 400, 11003)
        queues = [queue async for queue in sdk.queues.list(account_id=account_id)]
        assert all(queue.queue_id for queue in queues)


def test_async_errors_and_list(base_url, api_token, account_id):
    asyncio.run(async_errors(base_url, api_token, account_id))
