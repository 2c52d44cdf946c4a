"""Messages #12–#15, #18, #19, purge #21–#22 and metrics #23 through
`AsyncCloudflare`, mirroring test_messages.py and test_semantics.py."""

from __future__ import annotations

import json

import cloudflare
import pytest

from async_helpers import AsyncScenario, run_scenario
from helpers import HEX32, api_error, json_body, now_ms


def test_async_single_push_and_pull_bodies(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-push")
        qid = queue.queue_id
        before = now_ms()
        pushed = await s.sdk.queues.messages.push(qid, account_id=s.account_id, body="hello wörld", content_type="text")
        text_bytes = len("hello wörld".encode())
        assert (pushed.metadata.metrics.backlog_count, pushed.metadata.metrics.backlog_bytes) == (1, text_bytes)
        document = {"k": [1, 2], "s": "ünï"}
        pushed = await s.sdk.queues.messages.push(qid, account_id=s.account_id, body=document)
        assert pushed.metadata.metrics.backlog_count == 2

        pulled = await s.sdk.queues.messages.pull(
            qid, account_id=s.account_id, batch_size=10, visibility_timeout_ms=30_000
        )
        after = now_ms()
        assert len(pulled.messages) == 2 and pulled.message_backlog_count == 2
        by_type = {m.metadata["CF-Content-Type"]: m for m in pulled.messages}
        assert by_type["text"].body == "hello wörld"
        assert json_body(by_type["json"]) == document
        for message in pulled.messages:
            assert HEX32.match(message.id) and message.lease_id and message.attempts == 1
            assert before <= message.timestamp_ms <= after
        # Leased messages are not handed out again.
        assert (await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=10)).messages == []

    run_scenario(base_url, api_token, account_id, body)


def test_async_bulk_push_delays_and_pull_batch_size(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-bulk", settings={"batch_size": 3})
        qid = queue.queue_id
        result = await s.sdk.queues.messages.bulk_push(
            qid,
            account_id=s.account_id,
            delay_seconds=3600,
            messages=[
                {"body": "t1", "content_type": "text"},
                {"body": {"n": 2}, "content_type": "json", "delay_seconds": 0},
                {"body": "t3", "content_type": "text", "delay_seconds": 0},
            ],
        )
        assert result.metadata.metrics.backlog_count == 3
        assert result.metadata.metrics.backlog_bytes == 2 + len(b'{"n":2}') + 2
        # The batch delay holds t1 back; a per-message delay of 0 wins.
        pulled = await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=10)
        bodies = sorted(
            m.body if m.metadata["CF-Content-Type"] == "text" else json.dumps(json_body(m)) for m in pulled.messages
        )
        assert bodies == sorted(['{"n": 2}', "t3"])

        await s.sdk.queues.messages.bulk_push(
            qid, account_id=s.account_id, messages=[{"body": f"m{i}", "content_type": "text"} for i in range(10)]
        )
        assert len((await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=4)).messages) == 4
        # Without batch_size the consumer's batch_size (3) applies.
        assert len((await s.sdk.queues.messages.pull(qid, account_id=s.account_id)).messages) == 3
        assert len(await s.pull_all(qid)) == 3
        assert (await s.metrics(qid))[0] == 13

    run_scenario(base_url, api_token, account_id, body)


def test_async_ack_with_retries_and_redelivery(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-ack")
        qid = queue.queue_id
        await s.sdk.queues.messages.bulk_push(
            qid, account_id=s.account_id, messages=[{"body": f"m{i}", "content_type": "text"} for i in range(5)]
        )
        pulled = (await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=5)).messages
        assert len(pulled) == 5
        acked, retried, untouched = pulled[:2], pulled[2:4], pulled[4]
        outcome = await s.sdk.queues.messages.ack(
            qid,
            account_id=s.account_id,
            acks=[{"lease_id": m.lease_id} for m in acked],
            retries=[{"lease_id": m.lease_id, "delay_seconds": 0} for m in retried],
        )
        assert (outcome.ack_count, outcome.retry_count) == (2, 2) and not outcome.warnings
        count, size, _ = await s.metrics(qid)
        assert (count, size) == (3, 3 * 2)
        again = (await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=5)).messages
        assert sorted(m.id for m in again) == sorted(m.id for m in retried)
        assert all(m.attempts == 2 for m in again)

        final = await s.sdk.queues.messages.ack(
            qid,
            account_id=s.account_id,
            acks=[{"lease_id": m.lease_id} for m in [*again, untouched]] + [{"lease_id": "garbage-lease"}],
        )
        assert final.ack_count == 3 and set(final.warnings) == {"garbage-lease"}
        assert await s.metrics(qid) == (0, 0, 0)

    run_scenario(base_url, api_token, account_id, body)


def test_async_peek_and_purge_by_ref(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-peek")
        qid = queue.queue_id
        await s.sdk.queues.messages.bulk_push(
            qid,
            account_id=s.account_id,
            messages=[{"body": "p1", "content_type": "text"}, {"body": {"p": 2}}, {"body": "p3", "content_type": "text"}],
        )
        peeked = (await s.sdk.queues.messages.peek(qid, account_id=s.account_id, batch_size=2)).messages
        assert len(peeked) == 2 and all(m.ref and HEX32.match(m.id) for m in peeked)
        assert len((await s.sdk.queues.messages.peek(qid, account_id=s.account_id, batch_size=10)).messages) == 3
        target = peeked[0]
        purged = await s.sdk.queues.messages.purge(
            qid, account_id=s.account_id, refs=[{"ref": target.ref}, {"ref": "bogus"}]
        )
        assert not purged.errors and set(purged.warnings or {}) == {"bogus"}
        assert (await s.metrics(qid))[0] == 2
        remaining = await s.pull_all(qid)
        assert len(remaining) == 2 and target.id not in {m.id for m in remaining}
        # Peeking is not a delivery: the first pull is attempt 1.
        assert all(m.attempts == 1 for m in remaining)

    run_scenario(base_url, api_token, account_id, body)


def test_async_purge_start_and_status(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-purge")
        qid = queue.queue_id
        await s.sdk.queues.messages.bulk_push(
            qid, account_id=s.account_id, messages=[{"body": f"x{i}", "content_type": "text"} for i in range(4)]
        )
        await s.sdk.queues.messages.push(
            qid, account_id=s.account_id, body="delayed", content_type="text", delay_seconds=600
        )
        await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=1)
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.purge.start(qid, account_id=s.account_id)
        api_error(excinfo, cloudflare.BadRequestError, 400, 10210)
        assert (await s.metrics(qid))[0] == 5
        purged = await s.sdk.queues.purge.start(qid, account_id=s.account_id, delete_messages_permanently=True)
        assert purged.queue_id == qid and purged.queue_name == queue.queue_name
        assert await s.metrics(qid) == (0, 0, 0)
        assert await s.pull_all(qid) == []
        status = await s.sdk.queues.purge.status(qid, account_id=s.account_id)
        assert status.completed == "true" and status.started_at

    run_scenario(base_url, api_token, account_id, body)


def test_async_metrics_count_bytes_and_oldest(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue, _ = await s.pull_queue("a-metrics")
        qid = queue.queue_id
        assert await s.metrics(qid) == (0, 0, 0)
        await s.sdk.queues.messages.push(qid, account_id=s.account_id, body="a" * 100, content_type="text")
        await s.sdk.queues.messages.push(qid, account_id=s.account_id, body="b" * 50, content_type="text")
        peeked = (await s.sdk.queues.messages.peek(qid, account_id=s.account_id, batch_size=10)).messages
        count, size, oldest = await s.metrics(qid)
        assert (count, size) == (2, 150)
        assert oldest == min(m.timestamp_ms for m in peeked)
        # Leased messages still count until they are acked.
        pulled = (await s.sdk.queues.messages.pull(qid, account_id=s.account_id, batch_size=10)).messages
        assert (await s.metrics(qid))[:2] == (2, 150)
        await s.sdk.queues.messages.ack(qid, account_id=s.account_id, acks=[{"lease_id": m.lease_id} for m in pulled])
        assert await s.metrics(qid) == (0, 0, 0)

    run_scenario(base_url, api_token, account_id, body)
