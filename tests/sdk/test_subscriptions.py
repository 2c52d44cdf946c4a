"""Event subscriptions #24–#28 (queues as destinations) through the SDK,
including the SDK's page-number pager, which stops on an empty page."""

from __future__ import annotations

import itertools

import cloudflare
import pytest

from helpers import HEX32, api_error


def create_subscription(client, account_id, queue_id, name, source=None):
    return client.queues.subscriptions.create(
        account_id=account_id,
        name=name,
        enabled=True,
        source=source or {"type": "r2"},
        destination={"type": "queues.queue", "queue_id": queue_id},
        events=["object-create"],
    )


def test_subscription_lifecycle(client, account_id, new_queue):
    queue = new_queue("subs")
    source = {"type": "workersBuilds.worker", "worker_name": "w"}
    created = create_subscription(client, account_id, queue.queue_id, "sub-one", source)
    assert HEX32.match(created.id)
    assert created.name == "sub-one" and created.enabled is True
    assert created.destination.queue_id == queue.queue_id
    assert created.events == ["object-create"]
    assert created.source.type == "workersBuilds.worker"
    assert created.created_at <= created.modified_at

    fetched = client.queues.subscriptions.get(created.id, account_id=account_id)
    assert fetched.to_dict() == created.to_dict()

    updated = client.queues.subscriptions.update(created.id, account_id=account_id, name="sub-two", enabled=False)
    assert updated.name == "sub-two" and updated.enabled is False
    assert updated.events == ["object-create"]  # untouched by the patch

    deleted = client.queues.subscriptions.delete(created.id, account_id=account_id)
    assert deleted.id == created.id
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.subscriptions.get(created.id, account_id=account_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 11012)


def test_second_subscription_on_same_source_is_refused(client, account_id, new_queue):
    queue = new_queue("subdup")
    first = create_subscription(client, account_id, queue.queue_id, "dup-a")
    try:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            create_subscription(client, account_id, queue.queue_id, "dup-b")
        api_error(excinfo, cloudflare.APIStatusError, 405, 11014)
    finally:
        client.queues.subscriptions.delete(first.id, account_id=account_id)


def test_subscription_to_missing_queue_is_refused(client, account_id):
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        create_subscription(client, account_id, "e" * 32, "orphan")
    api_error(excinfo, cloudflare.NotFoundError, 404, 11013)


def test_auto_pagination_visits_every_subscription_once_and_stops(client, account_id, new_queue):
    queue = new_queue("subpage")
    # One subscription per source and destination: vary the source.
    created = [
        create_subscription(
            client, account_id, queue.queue_id, f"page-{i}", {"type": "workersBuilds.worker", "worker_name": f"w{i}"}
        )
        for i in range(5)
    ]
    try:
        pager = client.queues.subscriptions.list(account_id=account_id, per_page=2, order="name")
        info = pager.result_info.to_dict()  # total_count is beyond the SDK's model: an extra field
        assert info["page"] == 1 and info["per_page"] == 2 and info["total_count"] >= 5
        # The SDK asks for page+1 until a page comes back empty; islice bounds a runaway.
        visited = list(itertools.islice(pager, 1000))
        assert len(visited) < 1000, "pagination did not terminate"
        ids = [subscription.id for subscription in visited]
        assert len(ids) == len(set(ids)) == info["total_count"]
        assert {s.id for s in created} <= set(ids)
        names = [s.name for s in visited]
        assert names == sorted(names)
    finally:
        for subscription in created:
            client.queues.subscriptions.delete(subscription.id, account_id=account_id)
