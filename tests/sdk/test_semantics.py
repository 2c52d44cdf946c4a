"""Delivery semantics seen through the SDK: pause, retries and dead letters,
lease expiry, delays, purge. Real sleeps are short and only where a timer
must pass (the in-process API tests cover the same with a manual clock)."""

from __future__ import annotations

import time

import cloudflare
import pytest

from conftest import unique_name
from helpers import api_error, envelope_post, json_body, metrics, pull_all


def queue_by_name(client, account_id, name):
    found = list(client.queues.list(account_id=account_id, extra_query={"name": name}))
    return found[0] if found else None


def test_paused_queue_accepts_pushes_and_refuses_pulls(client, account_id, pull_queue):
    queue, _ = pull_queue("pause")
    qid = queue.queue_id
    client.queues.edit(qid, account_id=account_id, settings={"delivery_paused": True})
    pushed = client.queues.messages.push(qid, account_id=account_id, body="held", content_type="text")
    assert pushed.metadata.metrics.backlog_count == 1
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.pull(qid, account_id=account_id)
    error = api_error(excinfo, cloudflare.ConflictError, 409, 11008)
    assert "queue_delivery_paused" in error.errors[0].message
    client.queues.edit(qid, account_id=account_id, settings={"delivery_paused": False})
    pulled = client.queues.messages.pull(qid, account_id=account_id).messages
    assert [m.body for m in pulled] == ["held"] and pulled[0].attempts == 1


def test_retries_exhausted_go_to_a_dead_letter_queue_created_on_demand(client, account_id, pull_queue):
    dlq_name = unique_name("dlq")
    queue, _ = pull_queue("retry", dead_letter_queue=dlq_name, settings={"max_retries": 2})
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body={"order": 42})
    # max_retries 2: delivered at most 3 times, then dead-lettered.
    for attempt in (1, 2, 3):
        pulled = client.queues.messages.pull(qid, account_id=account_id).messages
        assert [m.attempts for m in pulled] == [attempt]
        outcome = client.queues.messages.ack(
            qid, account_id=account_id, retries=[{"lease_id": pulled[0].lease_id, "delay_seconds": 0}]
        )
        assert outcome.retry_count == 1
    assert client.queues.messages.pull(qid, account_id=account_id).messages == []
    assert metrics(client, account_id, qid) == (0, 0, 0)

    dlq = queue_by_name(client, account_id, dlq_name)
    assert dlq is not None, "the dead letter queue was not created"
    assert metrics(client, account_id, dlq.queue_id)[:2] == (1, len(b'{"order":42}'))
    client.queues.consumers.create(dlq.queue_id, account_id=account_id, type="http_pull")
    try:
        dead = client.queues.messages.pull(dlq.queue_id, account_id=account_id).messages
        assert len(dead) == 1 and dead[0].metadata["CF-Content-Type"] == "json"
        assert json_body(dead[0]) == {"order": 42}
    finally:
        client.queues.delete(dlq.queue_id, account_id=account_id)


def test_redrive_returns_dead_letters_to_their_queue(client, account_id, pull_queue):
    """The redrive extension, called through the SDK's own transport."""
    dlq_name = unique_name("redrive-dlq")
    queue, _ = pull_queue("redrive", dead_letter_queue=dlq_name, settings={"max_retries": 0})
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body={"order": 7})
    pulled = client.queues.messages.pull(qid, account_id=account_id).messages
    client.queues.messages.ack(qid, account_id=account_id, retries=[{"lease_id": pulled[0].lease_id, "delay_seconds": 0}])
    dlq = queue_by_name(client, account_id, dlq_name)
    assert dlq is not None and metrics(client, account_id, dlq.queue_id)[0] == 1
    try:
        path = f"/accounts/{account_id}/queues/{dlq.queue_id}/messages/redrive"
        result = envelope_post(client, path, {})["result"]
        assert (result["moved"], result["destination_queue_id"]) == (1, qid)
        assert result["metrics"]["backlog_count"] == 0
        again = client.queues.messages.pull(qid, account_id=account_id).messages
        assert [m.attempts for m in again] == [1] and json_body(again[0]) == {"order": 7}
    finally:
        client.queues.delete(dlq.queue_id, account_id=account_id)


def test_retries_exhausted_without_dead_letter_queue_delete(client, account_id, pull_queue):
    queue, _ = pull_queue("nodlq", settings={"max_retries": 0})
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="once", content_type="text")
    lease = client.queues.messages.pull(qid, account_id=account_id).messages[0].lease_id
    client.queues.messages.ack(qid, account_id=account_id, retries=[{"lease_id": lease}])
    assert metrics(client, account_id, qid) == (0, 0, 0)
    assert client.queues.messages.pull(qid, account_id=account_id).messages == []


def test_lease_expiry_is_a_failed_delivery(client, account_id, pull_queue):
    dlq_name = unique_name("exp-dlq")
    queue, _ = pull_queue("expiry", dead_letter_queue=dlq_name, settings={"max_retries": 1})
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="late", content_type="text")
    first = client.queues.messages.pull(qid, account_id=account_id, visibility_timeout_ms=300).messages
    assert [m.attempts for m in first] == [1]
    time.sleep(0.5)
    second = client.queues.messages.pull(qid, account_id=account_id, visibility_timeout_ms=300).messages
    assert [(m.id, m.attempts) for m in second] == [(first[0].id, 2)]
    time.sleep(0.5)
    # Second expiry: attempts 2 > max_retries 1, so it is dead-lettered.
    assert client.queues.messages.pull(qid, account_id=account_id).messages == []
    assert metrics(client, account_id, qid)[0] == 0
    dlq = queue_by_name(client, account_id, dlq_name)
    assert dlq is not None
    try:
        assert metrics(client, account_id, dlq.queue_id)[0] == 1
    finally:
        client.queues.delete(dlq.queue_id, account_id=account_id)


def test_delays_message_queue_default_and_retry(client, account_id, pull_queue):
    queue, _ = pull_queue("delay")
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="later", content_type="text", delay_seconds=2)
    client.queues.update(qid, account_id=account_id, queue_name=queue.queue_name, settings={"delivery_delay": 2})
    client.queues.messages.push(qid, account_id=account_id, body="default-delay", content_type="text")
    client.queues.messages.push(qid, account_id=account_id, body="now", content_type="text", delay_seconds=0)
    now = client.queues.messages.pull(qid, account_id=account_id, batch_size=10).messages
    assert [m.body for m in now] == ["now"]
    assert metrics(client, account_id, qid)[0] == 3
    client.queues.messages.ack(qid, account_id=account_id, retries=[{"lease_id": now[0].lease_id, "delay_seconds": 2}])
    assert client.queues.messages.pull(qid, account_id=account_id, batch_size=10).messages == []
    time.sleep(2.4)
    later = client.queues.messages.pull(qid, account_id=account_id, batch_size=10).messages
    assert sorted((m.body, m.attempts) for m in later) == [("default-delay", 1), ("later", 1), ("now", 2)]


def test_consumer_retry_delay_applies_when_retry_gives_none(client, account_id, pull_queue):
    queue, _ = pull_queue("rdelay", settings={"retry_delay": 1})
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="r", content_type="text")
    lease = client.queues.messages.pull(qid, account_id=account_id).messages[0].lease_id
    client.queues.messages.ack(qid, account_id=account_id, retries=[{"lease_id": lease}])
    assert client.queues.messages.pull(qid, account_id=account_id).messages == []
    time.sleep(1.2)
    assert [m.attempts for m in client.queues.messages.pull(qid, account_id=account_id).messages] == [2]


def test_purge_deletes_everything_and_reports_status(client, account_id, pull_queue):
    queue, _ = pull_queue("purge")
    qid = queue.queue_id
    client.queues.messages.bulk_push(
        qid, account_id=account_id, messages=[{"body": f"x{i}", "content_type": "text"} for i in range(4)]
    )
    client.queues.messages.push(qid, account_id=account_id, body="delayed", content_type="text", delay_seconds=600)
    client.queues.messages.pull(qid, account_id=account_id, batch_size=1)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.purge.start(qid, account_id=account_id)
    api_error(excinfo, cloudflare.BadRequestError, 400, 10210)
    assert metrics(client, account_id, qid)[0] == 5
    purged = client.queues.purge.start(qid, account_id=account_id, delete_messages_permanently=True)
    assert purged.queue_id == qid and purged.queue_name == queue.queue_name
    assert metrics(client, account_id, qid) == (0, 0, 0)
    assert pull_all(client, account_id, qid) == []
    status = client.queues.purge.status(qid, account_id=account_id)
    assert status.completed == "true"
    assert status.started_at


def test_pull_needs_an_http_pull_consumer(client, account_id, new_queue):
    queue = new_queue("nocons")
    client.queues.messages.push(queue.queue_id, account_id=account_id, body="x", content_type="text")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.pull(queue.queue_id, account_id=account_id)
    error = api_error(excinfo, cloudflare.BadRequestError, 400, 11007)
    assert "http_pull" in error.errors[0].message
    client.queues.consumers.create(queue.queue_id, account_id=account_id, type="worker", script_name="w")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.pull(queue.queue_id, account_id=account_id)
    api_error(excinfo, cloudflare.BadRequestError, 400, 11007)
