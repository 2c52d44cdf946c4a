"""Queues #1–#6 through the SDK: create, list (paging, name filter), get,
update (PUT, replace), edit (PATCH, merge), delete."""

from __future__ import annotations

import itertools

import cloudflare
import pytest

from conftest import unique_name
from helpers import HEX32, api_error, envelope_get, parse_time

DEFAULT_RETENTION = 345_600


def test_create_returns_the_full_queue_with_defaults(client, account_id, new_queue):
    queue = new_queue("create")
    assert HEX32.match(queue.queue_id)
    assert queue.queue_name.startswith("create-")
    assert parse_time(queue.created_on) <= parse_time(queue.modified_on)
    assert queue.settings is not None
    assert queue.settings.delivery_delay == 0
    assert queue.settings.delivery_paused is False
    assert queue.settings.message_retention_period == DEFAULT_RETENTION
    assert queue.consumers == [] and queue.consumers_total_count == 0
    assert queue.producers == [] and queue.producers_total_count == 0


def test_get_returns_what_create_returned(client, account_id, new_queue):
    created = new_queue("get")
    fetched = client.queues.get(created.queue_id, account_id=account_id)
    assert fetched is not None
    assert fetched.to_dict() == created.to_dict()


def test_list_contains_created_queues_and_terminates(client, account_id, new_queue):
    names = {new_queue("list").queue_name for _ in range(3)}
    # SinglePage: iterating the SDK pager must stop after the one page.
    listed = list(itertools.islice(client.queues.list(account_id=account_id), 10_000))
    assert len(listed) < 10_000
    listed_names = [queue.queue_name for queue in listed]
    assert names <= set(listed_names)
    assert len(listed_names) == len(set(listed_names)), "a queue is listed twice"


def test_list_filters_by_repeated_name(client, account_id, new_queue):
    first, second, _third = new_queue("name"), new_queue("name"), new_queue("name")
    only_first = client.queues.list(account_id=account_id, extra_query={"name": first.queue_name})
    assert [queue.queue_id for queue in only_first] == [first.queue_id]
    both = client.queues.list(account_id=account_id, extra_query={"name": [first.queue_name, second.queue_name]})
    assert sorted(queue.queue_id for queue in both) == sorted([first.queue_id, second.queue_id])
    # wrangler's "does this queue exist?": an empty page, not an error.
    missing = client.queues.list(account_id=account_id, extra_query={"name": unique_name("absent")})
    assert list(missing) == []


def test_list_pages_cover_every_queue_once(client, account_id, new_queue):
    created = {new_queue("page").queue_id for _ in range(5)}
    path = f"/accounts/{account_id}/queues"
    seen: list[str] = []
    total = None
    for page in range(1, 1000):
        envelope = envelope_get(client, path, {"page": page, "per_page": 2})
        info = envelope["result_info"]
        assert info["page"] == page and info["per_page"] == 2
        assert info["count"] == len(envelope["result"]) <= 2
        total = info["total_count"] if total is None else total
        assert info["total_count"] == total, "total_count changed between pages"
        assert info["total_pages"] == (total + 1) // 2
        seen.extend(queue["queue_id"] for queue in envelope["result"])
        if page * 2 >= total:
            break
    assert len(seen) == total == len(set(seen))
    assert created <= set(seen)
    beyond = envelope_get(client, path, {"page": total // 2 + 2, "per_page": 2})
    assert beyond["result"] == [] and beyond["result_info"]["count"] == 0


def test_update_replaces_settings(client, account_id, new_queue):
    queue = new_queue("put")
    updated = client.queues.update(
        queue.queue_id,
        account_id=account_id,
        queue_name=queue.queue_name,
        settings={"delivery_delay": 5, "message_retention_period": 3600},
    )
    assert updated is not None and updated.queue_id == queue.queue_id
    assert updated.settings.delivery_delay == 5
    assert updated.settings.message_retention_period == 3600
    assert updated.settings.delivery_paused is False
    assert parse_time(updated.modified_on) >= parse_time(queue.modified_on)
    # PUT is a full replace: settings left out go back to their defaults.
    replaced = client.queues.update(queue.queue_id, account_id=account_id, queue_name=queue.queue_name)
    assert replaced.settings.delivery_delay == 0
    assert replaced.settings.message_retention_period == DEFAULT_RETENTION
    fetched = client.queues.get(queue.queue_id, account_id=account_id)
    assert fetched.settings.to_dict() == replaced.settings.to_dict()


def test_edit_merges_settings(client, account_id, new_queue):
    queue = new_queue("patch")
    client.queues.edit(queue.queue_id, account_id=account_id, settings={"delivery_delay": 7})
    # What wrangler's pause sends: only delivery_paused; the delay must survive.
    paused = client.queues.edit(
        queue.queue_id, account_id=account_id, queue_name=queue.queue_name, settings={"delivery_paused": True}
    )
    assert paused.settings.delivery_paused is True
    assert paused.settings.delivery_delay == 7
    assert paused.settings.message_retention_period == DEFAULT_RETENTION
    resumed = client.queues.edit(queue.queue_id, account_id=account_id, settings={"delivery_paused": False})
    assert resumed.settings.delivery_paused is False and resumed.settings.delivery_delay == 7


def test_edit_renames_the_queue(client, account_id, new_queue):
    queue = new_queue("rename")
    new_name = unique_name("renamed")
    renamed = client.queues.edit(queue.queue_id, account_id=account_id, queue_name=new_name)
    assert renamed.queue_name == new_name and renamed.queue_id == queue.queue_id
    by_name = client.queues.list(account_id=account_id, extra_query={"name": new_name})
    assert [q.queue_id for q in by_name] == [queue.queue_id]


def test_delete_removes_the_queue(client, account_id, new_queue):
    queue = new_queue("delete")
    deleted = client.queues.delete(queue.queue_id, account_id=account_id)
    assert deleted.success is True and deleted.errors == []
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.get(queue.queue_id, account_id=account_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.delete(queue.queue_id, account_id=account_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
    listed = client.queues.list(account_id=account_id, extra_query={"name": queue.queue_name})
    assert list(listed) == []


def test_duplicate_name_is_refused(client, account_id, new_queue):
    queue = new_queue("dup")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.create(account_id=account_id, queue_name=queue.queue_name)
    api_error(excinfo, cloudflare.ConflictError, 409, 11009)


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "a" * 64, "dot.name", ""])
def test_invalid_queue_name_is_refused(client, account_id, name):
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.create(account_id=account_id, queue_name=name)
    api_error(excinfo, cloudflare.BadRequestError, 400, 11003)


def test_longest_valid_name_is_accepted(client, account_id, new_queue):
    name = unique_name("x")  # 10 characters
    name = name + "a" * (63 - len(name))
    queue = client.queues.create(account_id=account_id, queue_name=name)
    try:
        assert queue.queue_name == name
    finally:
        client.queues.delete(queue.queue_id, account_id=account_id)


@pytest.mark.parametrize(
    "settings",
    [{"message_retention_period": 59}, {"message_retention_period": 1_209_601}, {"delivery_delay": 86_401}],
)
def test_invalid_queue_settings_are_refused(client, account_id, new_queue, settings):
    queue = new_queue("settings")
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.edit(queue.queue_id, account_id=account_id, settings=settings)
    api_error(excinfo, cloudflare.BadRequestError, 400, 100128)
    unchanged = client.queues.get(queue.queue_id, account_id=account_id)
    assert unchanged.settings.to_dict() == queue.settings.to_dict()


def test_unknown_and_malformed_queue_ids(client, account_id):
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.get("0" * 32, account_id=account_id)
    api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.get("not-a-queue-id", account_id=account_id)
    api_error(excinfo, cloudflare.BadRequestError, 400, 10107)


def test_settings_read_from_the_sdk_can_be_sent_back(client, account_id, new_queue):
    """The SDK's models type every number as float, so settings read back and
    sent again are `0.0`, `345600.0`: JSON numbers Cloudflare accepts."""
    queue = new_queue("roundtrip")
    settings = client.queues.get(queue.queue_id, account_id=account_id).settings.to_dict()
    settings["delivery_delay"] = 3.0
    updated = client.queues.update(queue.queue_id, account_id=account_id, queue_name=queue.queue_name, settings=settings)
    assert updated.settings.delivery_delay == 3
