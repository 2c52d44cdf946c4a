"""Messages #12–#20 and metrics #23 through the SDK: push, batch, pull, ack
and retry, peek and purge by ref, preview and preview/ack, extend."""

from __future__ import annotations

import json
import threading
import time

from helpers import HEX32, envelope_post, json_body, metrics, now_ms, pull_all


def compact(value) -> bytes:
    """JSON as Wharf stores it: compact, UTF-8 (not \\u-escaped)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_push_text_and_json_then_pull_bodies(client, account_id, pull_queue):
    queue, _ = pull_queue("bodies")
    qid = queue.queue_id
    before = now_ms()
    pushed = client.queues.messages.push(qid, account_id=account_id, body="hello wörld", content_type="text")
    text_bytes = len("hello wörld".encode())
    assert pushed.metadata.metrics.backlog_count == 1
    assert pushed.metadata.metrics.backlog_bytes == text_bytes
    document = {"k": [1, 2], "s": "ünï"}
    # No content_type: json is the default.
    pushed = client.queues.messages.push(qid, account_id=account_id, body=document)
    assert pushed.metadata.metrics.backlog_count == 2
    assert pushed.metadata.metrics.backlog_bytes == text_bytes + len(compact(document))

    pulled = client.queues.messages.pull(qid, account_id=account_id, batch_size=10, visibility_timeout_ms=30_000)
    after = now_ms()
    assert len(pulled.messages) == 2
    assert pulled.message_backlog_count == 2
    assert pulled.metadata.metrics.backlog_count == 2
    by_type = {m.metadata["CF-Content-Type"]: m for m in pulled.messages}
    assert by_type["text"].body == "hello wörld"
    assert json_body(by_type["json"]) == document
    for message in pulled.messages:
        assert HEX32.match(message.id)
        assert message.attempts == 1
        assert message.lease_id
        assert before <= message.timestamp_ms <= after
    assert len({m.id for m in pulled.messages}) == 2
    assert len({m.lease_id for m in pulled.messages}) == 2
    # Leased messages are not handed out again.
    assert client.queues.messages.pull(qid, account_id=account_id, batch_size=10).messages == []


def test_bulk_push_with_batch_and_message_delays(client, account_id, pull_queue):
    queue, _ = pull_queue("bulk")
    qid = queue.queue_id
    result = client.queues.messages.bulk_push(
        qid,
        account_id=account_id,
        delay_seconds=3600,
        messages=[
            {"body": "t1", "content_type": "text"},
            {"body": {"n": 2}, "content_type": "json", "delay_seconds": 0},
            {"body": "t3", "content_type": "text", "delay_seconds": 0},
        ],
    )
    # Delayed messages count in the backlog too.
    assert result.metadata.metrics.backlog_count == 3
    assert result.metadata.metrics.backlog_bytes == 2 + len(b'{"n":2}') + 2
    # The batch delay holds t1 back; per-message delay 0 wins for the others.
    pulled = client.queues.messages.pull(qid, account_id=account_id, batch_size=10)
    bodies = sorted(m.body if m.metadata["CF-Content-Type"] == "text" else json.dumps(json_body(m)) for m in pulled.messages)
    assert bodies == sorted(['{"n": 2}', "t3"])


def test_pull_honours_batch_size_and_consumer_default(client, account_id, pull_queue):
    queue, _ = pull_queue("batch", settings={"batch_size": 3})
    qid = queue.queue_id
    client.queues.messages.bulk_push(
        qid, account_id=account_id, messages=[{"body": f"m{i}", "content_type": "text"} for i in range(10)]
    )
    assert len(client.queues.messages.pull(qid, account_id=account_id, batch_size=4).messages) == 4
    # Without batch_size the consumer's batch_size applies.
    assert len(client.queues.messages.pull(qid, account_id=account_id).messages) == 3
    rest = pull_all(client, account_id, qid)
    assert len(rest) == 3
    assert metrics(client, account_id, qid)[0] == 10


def test_ack_and_retry_counts_and_redelivery(client, account_id, pull_queue):
    queue, _ = pull_queue("ack")
    qid = queue.queue_id
    client.queues.messages.bulk_push(
        qid, account_id=account_id, messages=[{"body": f"m{i}", "content_type": "text"} for i in range(5)]
    )
    pulled = client.queues.messages.pull(qid, account_id=account_id, batch_size=5).messages
    assert len(pulled) == 5
    acked, retried, untouched = pulled[:2], pulled[2:4], pulled[4]
    outcome = client.queues.messages.ack(
        qid,
        account_id=account_id,
        acks=[{"lease_id": m.lease_id} for m in acked],
        retries=[{"lease_id": m.lease_id, "delay_seconds": 0} for m in retried],
    )
    assert outcome.ack_count == 2
    assert outcome.retry_count == 2
    assert not outcome.warnings
    count, size, _ = metrics(client, account_id, qid)
    assert count == 3 and size == 3 * 2
    again = client.queues.messages.pull(qid, account_id=account_id, batch_size=5).messages
    assert sorted(m.id for m in again) == sorted(m.id for m in retried)
    assert all(m.attempts == 2 for m in again)
    assert all(m.body == old.body for m, old in zip(sorted(again, key=lambda m: m.id), sorted(retried, key=lambda m: m.id)))
    # Ack is permissive: the first delivery's lease is authentic and its
    # message still exists, so it acks the message though it was redelivered.
    stale = client.queues.messages.ack(qid, account_id=account_id, acks=[{"lease_id": m.lease_id} for m in retried])
    assert stale.ack_count == 2 and not stale.warnings
    final = client.queues.messages.ack(
        qid, account_id=account_id, acks=[{"lease_id": m.lease_id} for m in [*again, untouched]]
    )
    assert final.ack_count == 1
    assert set(final.warnings) == {m.lease_id for m in again}
    assert metrics(client, account_id, qid) == (0, 0, 0)


def test_ack_reports_bad_leases_as_warnings(client, account_id, pull_queue):
    queue, _ = pull_queue("warn")
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="only", content_type="text")
    message = client.queues.messages.pull(qid, account_id=account_id).messages[0]
    outcome = client.queues.messages.ack(
        qid,
        account_id=account_id,
        acks=[{"lease_id": message.lease_id}, {"lease_id": "garbage-lease"}],
        retries=[{"lease_id": "another-garbage"}],
    )
    assert outcome.ack_count == 1 and outcome.retry_count == 0
    assert set(outcome.warnings) == {"garbage-lease", "another-garbage"}
    # Acking the same lease again: the message is gone, so a warning, not a count.
    twice = client.queues.messages.ack(qid, account_id=account_id, acks=[{"lease_id": message.lease_id}])
    assert twice.ack_count == 0 and message.lease_id in twice.warnings
    empty = client.queues.messages.ack(qid, account_id=account_id, acks=[], retries=[])
    assert empty.ack_count == 0 and empty.retry_count == 0 and not empty.warnings


def test_lease_of_one_queue_is_refused_on_another(client, account_id, pull_queue):
    first, _ = pull_queue("lease-a")
    second, _ = pull_queue("lease-b")
    client.queues.messages.push(first.queue_id, account_id=account_id, body="x", content_type="text")
    lease = client.queues.messages.pull(first.queue_id, account_id=account_id).messages[0].lease_id
    outcome = client.queues.messages.ack(second.queue_id, account_id=account_id, acks=[{"lease_id": lease}])
    assert outcome.ack_count == 0 and lease in outcome.warnings
    assert metrics(client, account_id, first.queue_id)[0] == 1


def test_peek_does_not_lease_and_purge_by_ref_deletes(client, account_id, pull_queue):
    queue, _ = pull_queue("peek")
    qid = queue.queue_id
    client.queues.messages.bulk_push(
        qid,
        account_id=account_id,
        messages=[{"body": "p1", "content_type": "text"}, {"body": {"p": 2}}, {"body": "p3", "content_type": "text"}],
    )
    peeked = client.queues.messages.peek(qid, account_id=account_id, batch_size=2).messages
    assert len(peeked) == 2
    assert all(m.ref and HEX32.match(m.id) for m in peeked)
    assert len(client.queues.messages.peek(qid, account_id=account_id, batch_size=10).messages) == 3
    target = peeked[0]
    purged = client.queues.messages.purge(qid, account_id=account_id, refs=[{"ref": target.ref}, {"ref": "bogus"}])
    assert not purged.errors
    assert set(purged.warnings or {}) == {"bogus"}
    assert metrics(client, account_id, qid)[0] == 2
    remaining = pull_all(client, account_id, qid)
    assert len(remaining) == 2 and target.id not in {m.id for m in remaining}
    # Peeking is not a delivery: the first pull is attempt 1.
    assert all(m.attempts == 1 for m in remaining)


def test_preview_and_preview_ack(client, account_id, pull_queue):
    queue, _ = pull_queue("preview")
    qid = queue.queue_id
    path = f"/accounts/{account_id}/queues/{qid}/messages"
    client.queues.messages.bulk_push(
        qid, account_id=account_id, messages=[{"body": f"v{i}", "content_type": "text"} for i in range(3)]
    )
    previewed = envelope_post(client, f"{path}/preview", {"batch_size": 2})["result"]["messages"]
    assert len(previewed) == 2 and all(m["lease_id"] for m in previewed)
    # Preview does not lease: a pull still sees all three.
    seen = envelope_post(client, f"{path}/preview", {"batch_size": 10})["result"]["messages"]
    assert len(seen) == 3
    acked = envelope_post(client, f"{path}/preview/ack", {"acks": [{"lease_id": previewed[0]["lease_id"]}]})
    assert acked["result"]["warnings"] == {}
    assert metrics(client, account_id, qid)[0] == 2
    remaining = pull_all(client, account_id, qid)
    assert sorted(m.body for m in remaining) == sorted(m["body"] for m in seen if m["id"] != previewed[0]["id"])


def test_extend_keeps_the_lease_and_attempts(client, account_id, pull_queue):
    queue, _ = pull_queue("extend")
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="slow", content_type="text")
    message = client.queues.messages.pull(qid, account_id=account_id, visibility_timeout_ms=1500).messages[0]
    path = f"/accounts/{account_id}/queues/{qid}/messages/extend"
    result = envelope_post(
        client, path, {"extend": [{"lease_id": message.lease_id}, {"lease_id": "junk"}], "visibility_timeout_ms": 60_000}
    )["result"]
    new_lease = result["leases"][message.lease_id]
    assert new_lease and new_lease != message.lease_id
    assert set(result["warnings"]) == {"junk"}
    time.sleep(1.8)  # past the original 1500 ms lease
    assert client.queues.messages.pull(qid, account_id=account_id).messages == []
    outcome = client.queues.messages.ack(qid, account_id=account_id, acks=[{"lease_id": new_lease}])
    assert outcome.ack_count == 1
    assert metrics(client, account_id, qid)[0] == 0


def test_metrics_count_bytes_and_oldest(client, account_id, pull_queue):
    queue, _ = pull_queue("metrics")
    qid = queue.queue_id
    assert metrics(client, account_id, qid) == (0, 0, 0)
    client.queues.messages.push(qid, account_id=account_id, body="a" * 100, content_type="text")
    time.sleep(0.01)
    client.queues.messages.push(qid, account_id=account_id, body="b" * 50, content_type="text")
    peeked = sorted(client.queues.messages.peek(qid, account_id=account_id, batch_size=10).messages, key=lambda m: m.timestamp_ms)
    count, size, oldest = metrics(client, account_id, qid)
    assert (count, size) == (2, 150)
    assert oldest == peeked[0].timestamp_ms
    # Leased messages still count.
    pulled = client.queues.messages.pull(qid, account_id=account_id, batch_size=10).messages
    assert metrics(client, account_id, qid)[:2] == (2, 150)
    client.queues.messages.ack(qid, account_id=account_id, acks=[{"lease_id": m.lease_id} for m in pulled])
    assert metrics(client, account_id, qid) == (0, 0, 0)


def test_long_poll_pull_waits_for_a_message(client, account_id, pull_queue):
    """Wharf extension: `wait_time_ms` in the pull body (sent via extra_body)."""
    queue, _ = pull_queue("longpoll")
    qid = queue.queue_id
    empty_start = time.monotonic()
    empty = client.queues.messages.pull(qid, account_id=account_id, extra_body={"wait_time_ms": 300})
    assert empty.messages == [] and time.monotonic() - empty_start >= 0.25
    pusher = threading.Timer(
        0.3, lambda: client.queues.messages.push(qid, account_id=account_id, body="late", content_type="text")
    )
    pusher.start()
    try:
        start = time.monotonic()
        pulled = client.queues.messages.pull(qid, account_id=account_id, extra_body={"wait_time_ms": 5000})
        waited = time.monotonic() - start
    finally:
        pusher.join()
    assert [m.body for m in pulled.messages] == ["late"]
    assert 0.2 <= waited < 4.0
