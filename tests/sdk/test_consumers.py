"""Consumers #7–#11 through the SDK: worker and http_pull, one per queue."""

from __future__ import annotations

import cloudflare
import pytest

from conftest import unique_name
from helpers import HEX32, api_error


def test_http_pull_consumer_echoes_its_settings(client, account_id, new_queue):
    queue = new_queue("cons")
    dlq_name = unique_name("cons-dlq")
    consumer = client.queues.consumers.create(
        queue.queue_id,
        account_id=account_id,
        type="http_pull",
        dead_letter_queue=dlq_name,
        settings={"batch_size": 10, "max_retries": 3, "retry_delay": 1, "visibility_timeout_ms": 30_000},
    )
    assert HEX32.match(consumer.consumer_id)
    assert consumer.type == "http_pull"
    assert consumer.queue_name == queue.queue_name
    assert consumer.dead_letter_queue == dlq_name
    assert consumer.created_on is not None
    assert consumer.settings.to_dict() == {
        "batch_size": 10,
        "max_retries": 3,
        "retry_delay": 1,
        "visibility_timeout_ms": 30_000,
    }


def test_http_pull_consumer_defaults(client, account_id, pull_queue):
    _queue, consumer = pull_queue("defaults")
    assert consumer.dead_letter_queue == ""
    assert consumer.settings.to_dict() == {
        "batch_size": 5,
        "max_retries": 3,
        "retry_delay": 0,
        "visibility_timeout_ms": 30_000,
    }


def test_list_get_update_delete_consumer(client, account_id, pull_queue):
    queue, consumer = pull_queue("crud")
    listed = list(client.queues.consumers.list(queue.queue_id, account_id=account_id))
    assert [c.consumer_id for c in listed] == [consumer.consumer_id]
    fetched = client.queues.consumers.get(consumer.consumer_id, account_id=account_id, queue_id=queue.queue_id)
    assert fetched.to_dict() == consumer.to_dict()

    with_consumer = client.queues.get(queue.queue_id, account_id=account_id)
    assert with_consumer.consumers_total_count == 1
    assert with_consumer.consumers[0].consumer_id == consumer.consumer_id
    assert with_consumer.consumers[0].type == "http_pull"

    updated = client.queues.consumers.update(
        consumer.consumer_id,
        account_id=account_id,
        queue_id=queue.queue_id,
        type="http_pull",
        settings={"batch_size": 7, "max_retries": 4},
    )
    assert updated.consumer_id == consumer.consumer_id
    assert updated.settings.batch_size == 7 and updated.settings.max_retries == 4
    again = client.queues.consumers.get(consumer.consumer_id, account_id=account_id, queue_id=queue.queue_id)
    assert again.settings.to_dict() == updated.settings.to_dict()

    deleted = client.queues.consumers.delete(consumer.consumer_id, account_id=account_id, queue_id=queue.queue_id)
    assert deleted.success is True
    assert list(client.queues.consumers.list(queue.queue_id, account_id=account_id)) == []
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.get(consumer.consumer_id, account_id=account_id, queue_id=queue.queue_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 11006)
    assert client.queues.get(queue.queue_id, account_id=account_id).consumers_total_count == 0


def test_worker_consumer_carries_script_name_and_script(client, account_id, new_queue):
    queue = new_queue("worker")
    consumer = client.queues.consumers.create(
        queue.queue_id,
        account_id=account_id,
        type="worker",
        script_name="my-worker",
        settings={"batch_size": 10, "max_concurrency": 2, "max_wait_time_ms": 5000},
    )
    assert consumer.type == "worker"
    assert consumer.script_name == "my-worker"
    assert consumer.settings.batch_size == 10
    assert consumer.settings.max_concurrency == 2
    assert consumer.settings.max_wait_time_ms == 5000
    assert consumer.settings.max_retries == 3
    # Inside Queue.consumers wrangler reads `script` (an extra field for the SDK).
    listed = client.queues.get(queue.queue_id, account_id=account_id).consumers[0].to_dict()
    assert listed["script_name"] == "my-worker" and listed["script"] == "my-worker"
    assert listed["consumer_id"] == consumer.consumer_id and listed["type"] == "worker"


def test_worker_consumer_max_concurrency_defaults_to_automatic(client, account_id, new_queue):
    queue = new_queue("auto")
    consumer = client.queues.consumers.create(
        queue.queue_id, account_id=account_id, type="worker", script_name="auto-worker"
    )
    assert consumer.settings.max_concurrency is None
    assert consumer.settings.batch_size == 10 and consumer.settings.max_wait_time_ms == 5000


def test_second_consumer_is_refused(client, account_id, pull_queue):
    queue, _consumer = pull_queue("second")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.create(queue.queue_id, account_id=account_id, type="worker", script_name="w")
    api_error(excinfo, cloudflare.ConflictError, 409, 11004)
    assert len(list(client.queues.consumers.list(queue.queue_id, account_id=account_id))) == 1


@pytest.mark.parametrize(
    "settings",
    [{"batch_size": 0}, {"batch_size": 101}, {"max_retries": 101}, {"visibility_timeout_ms": 43_200_001}],
)
def test_invalid_consumer_settings_are_refused(client, account_id, new_queue, settings):
    queue = new_queue("badcons")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.create(queue.queue_id, account_id=account_id, type="http_pull", settings=settings)
    api_error(excinfo, cloudflare.BadRequestError, 400, 100127)
    assert list(client.queues.consumers.list(queue.queue_id, account_id=account_id)) == []


def test_unknown_consumer_type_is_a_schema_error(client, account_id, new_queue):
    queue = new_queue("type")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.create(queue.queue_id, account_id=account_id, type="carrier_pigeon")
    api_error(excinfo, cloudflare.BadRequestError, 400, 10207)


def test_consumers_of_unknown_queue(client, account_id):
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.list("0" * 32, account_id=account_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.consumers.create("0" * 32, account_id=account_id, type="http_pull")
    api_error(excinfo, cloudflare.NotFoundError, 404, 10104)


def test_put_creates_a_missing_consumer_with_that_id(client, account_id, new_queue):
    queue = new_queue("upsert")
    wanted_id = "c0ffee" + "0" * 26
    created = client.queues.consumers.update(
        wanted_id,
        account_id=account_id,
        queue_id=queue.queue_id,
        type="worker",
        script_name="deployer",
        settings={"batch_size": 20, "max_retries": 5, "retry_delay": 3},
    )
    assert created.consumer_id == wanted_id and created.script_name == "deployer"
    assert (created.settings.batch_size, created.settings.max_retries, created.settings.retry_delay) == (20, 5, 3)
    listed = list(client.queues.consumers.list(queue.queue_id, account_id=account_id))
    assert [c.consumer_id for c in listed] == [wanted_id]


def test_consumer_settings_read_from_the_sdk_can_be_sent_back(client, account_id, pull_queue):
    """The SDK's models hold every number as a float; sending them back must work."""
    queue, consumer = pull_queue("roundtrip")
    settings = consumer.settings.to_dict()  # floats: {"batch_size": 5.0, ...}
    settings["max_retries"] = 7.0
    updated = client.queues.consumers.update(
        consumer.consumer_id, account_id=account_id, queue_id=queue.queue_id, type="http_pull", settings=settings
    )
    assert updated.settings.max_retries == 7 and updated.settings.batch_size == 5
