"""The same API through `AsyncCloudflare`: concurrent producers and pullers."""

from __future__ import annotations

import asyncio

import cloudflare
import pytest

from conftest import async_client, unique_name
from helpers import api_error


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
