"""Bad input gets a clear v4 error and changes nothing. Where the SDK cannot
produce the request (malformed JSON, bytes that are not UTF-8, unknown
routes), the test sends it with httpx and the same token."""

from __future__ import annotations

import cloudflare
import httpx
import pytest

from conftest import unique_name
from helpers import api_error, metrics

MESSAGE_LIMIT = 128_000  # 128 KB as Cloudflare counts (KB = 1000 bytes)


@pytest.fixture
def raw(base_url, api_token):
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {api_token}"}, timeout=30) as http:
        yield http


def v4_failure(response: httpx.Response, status: int, code: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["result"] is None, body
    assert body["errors"][0]["code"] == code, body
    assert body["errors"][0]["message"], body
    return body


def test_unknown_queue_on_every_queue_operation(client, account_id):
    missing = "f" * 32
    calls = [
        lambda: client.queues.get(missing, account_id=account_id),
        lambda: client.queues.edit(missing, account_id=account_id, settings={"delivery_delay": 1}),
        lambda: client.queues.delete(missing, account_id=account_id),
        lambda: client.queues.get_metrics(missing, account_id=account_id),
        lambda: client.queues.messages.push(missing, account_id=account_id, body="x", content_type="text"),
        lambda: client.queues.messages.bulk_push(missing, account_id=account_id, messages=[{"body": 1}]),
        lambda: client.queues.messages.pull(missing, account_id=account_id),
        lambda: client.queues.messages.ack(missing, account_id=account_id, acks=[]),
        lambda: client.queues.messages.peek(missing, account_id=account_id),
        lambda: client.queues.purge.start(missing, account_id=account_id, delete_messages_permanently=True),
        lambda: client.queues.purge.status(missing, account_id=account_id),
    ]
    for call in calls:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            call()
        api_error(excinfo, cloudflare.NotFoundError, 404, 10104)


def test_message_size_limit(client, account_id, pull_queue):
    queue, _ = pull_queue("size")
    qid = queue.queue_id
    accepted = client.queues.messages.push(qid, account_id=account_id, body="a" * MESSAGE_LIMIT, content_type="text")
    assert accepted.metadata.metrics.backlog_bytes == MESSAGE_LIMIT
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.push(qid, account_id=account_id, body="a" * (MESSAGE_LIMIT + 1), content_type="text")
    api_error(excinfo, cloudflare.BadRequestError, 400, 10204)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.bulk_push(
            qid, account_id=account_id, messages=[{"body": "ok", "content_type": "text"}, {"body": "b" * 130_000}]
        )
    api_error(excinfo, cloudflare.BadRequestError, 400, 10204)
    assert metrics(client, account_id, qid)[:2] == (1, MESSAGE_LIMIT)


def test_batch_limits(client, account_id, pull_queue):
    queue, _ = pull_queue("batchlim")
    qid = queue.queue_id
    hundred = [{"body": i} for i in range(100)]
    assert client.queues.messages.bulk_push(qid, account_id=account_id, messages=hundred).metadata.metrics.backlog_count == 100
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.bulk_push(qid, account_id=account_id, messages=[*hundred, {"body": 100}])
    api_error(excinfo, cloudflare.BadRequestError, 400, 10206)
    three_big = [{"body": "c" * 100_000, "content_type": "text"} for _ in range(3)]
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.bulk_push(qid, account_id=account_id, messages=three_big)
    api_error(excinfo, cloudflare.BadRequestError, 400, 10205)
    assert metrics(client, account_id, qid)[0] == 100


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"body": "x", "content_type": "bytes"}, 10203),
        ({"body": "x", "content_type": "text", "delay_seconds": 86_401}, 10203),
        ({"body": "x", "content_type": "text", "delay_seconds": -1}, 10203),
        ({"body": {"not": "a string"}, "content_type": "text"}, 10207),
    ],
)
def test_invalid_messages(client, account_id, pull_queue, kwargs, code):
    queue, _ = pull_queue("badmsg")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.push(queue.queue_id, account_id=account_id, **kwargs)
    api_error(excinfo, cloudflare.BadRequestError, 400, code)
    assert metrics(client, account_id, queue.queue_id)[0] == 0


@pytest.mark.parametrize("delay", [-1, 86_401])
def test_invalid_batch_delay(client, account_id, pull_queue, delay):
    queue, _ = pull_queue("baddelay")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.bulk_push(queue.queue_id, account_id=account_id, delay_seconds=delay, messages=[{"body": 1}])
    api_error(excinfo, cloudflare.BadRequestError, 400, 10202)


@pytest.mark.parametrize(("batch_size", "timeout"), [(0, None), (101, None), (None, 0), (None, 43_200_001)])
def test_invalid_pull_parameters(client, account_id, pull_queue, batch_size, timeout):
    queue, _ = pull_queue("badpull")
    client.queues.messages.push(queue.queue_id, account_id=account_id, body="x", content_type="text")
    kwargs = {k: v for k, v in {"batch_size": batch_size, "visibility_timeout_ms": timeout}.items() if v is not None}
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.messages.pull(queue.queue_id, account_id=account_id, **kwargs)
    api_error(excinfo, cloudflare.BadRequestError, 400, 10207)
    # Nothing was leased by the refused pull.
    assert len(client.queues.messages.pull(queue.queue_id, account_id=account_id).messages) == 1


def test_malformed_json_and_wrong_shape(raw, client, account_id, new_queue):
    queue = new_queue("json")
    path = f"/accounts/{account_id}/queues"
    v4_failure(raw.post(path, content=b'{"queue_name": ', headers={"Content-Type": "application/json"}), 400, 10208)
    v4_failure(raw.post(path, content=b'\xff\xfe{"queue_name":"x"}'), 400, 10208)
    v4_failure(raw.post(path, json={"queue_name": 42}), 400, 10207)
    v4_failure(raw.post(path, json=["queue_name"]), 400, 10207)
    v4_failure(raw.post(f"{path}/{queue.queue_id}/messages/batch", json={"messages": "nope"}), 400, 10207)
    v4_failure(raw.post(f"{path}/{queue.queue_id}/messages/ack", json={"acks": [{"lease": 1}]}), 400, 10207)
    assert metrics(client, account_id, queue.queue_id)[0] == 0


def test_json_sent_as_text_plain_is_accepted(raw, client, account_id):
    """wrangler sends JSON bodies with Content-Type: text/plain."""
    name = unique_name("textplain")
    response = raw.post(
        f"/accounts/{account_id}/queues",
        content=f'{{"queue_name":"{name}"}}'.encode(),
        headers={"Content-Type": "text/plain;charset=UTF-8"},
    )
    assert response.status_code == 200, response.text
    created = response.json()["result"]
    assert created["queue_name"] == name
    client.queues.delete(created["queue_id"], account_id=account_id)


def test_unknown_route_and_wrong_method(raw, account_id):
    v4_failure(raw.get(f"/accounts/{account_id}/no-such-thing"), 404, 7003)
    v4_failure(raw.get("/nothing/here"), 404, 7003)
    wrong_method = v4_failure(raw.delete(f"/accounts/{account_id}/queues"), 405, 7001)
    assert "DELETE" in wrong_method["errors"][0]["message"]


def test_oversized_request_body_is_refused(raw, account_id, pull_queue, client):
    queue, _ = pull_queue("huge")
    huge = b'{"messages":[{"body":"' + b"z" * (5 * 1024 * 1024) + b'"}]}'
    response = raw.post(f"/accounts/{account_id}/queues/{queue.queue_id}/messages/batch", content=huge)
    v4_failure(response, 413, 10209)
    assert metrics(client, account_id, queue.queue_id)[0] == 0
