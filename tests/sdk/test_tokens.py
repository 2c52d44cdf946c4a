"""Read and write scopes, token administration and a second account, through
the SDK's `user.tokens` methods (Wharf reads `scope` from the body and ignores
Cloudflare's `policies`) and the SDK's transport for `POST /accounts`."""

from __future__ import annotations

import itertools

import cloudflare
import pytest

from conftest import sync_client, unique_name
from helpers import HEX32, api_error


@pytest.fixture
def read_token(client):
    created = client.user.tokens.create(name=unique_name("reader"), policies=[], extra_body={"scope": "read"})
    assert created is not None and created.id and created.value
    assert created.to_dict()["scope"] == "read"
    yield created
    try:
        client.user.tokens.delete(created.id)
    except cloudflare.NotFoundError:
        pass


def test_read_token_reads_but_never_writes(base_url, account_id, client, pull_queue, read_token):
    queue, _ = pull_queue("scopes")
    qid = queue.queue_id
    client.queues.messages.push(qid, account_id=account_id, body="visible", content_type="text")
    with sync_client(base_url, read_token.value) as reader:
        assert qid in {q.queue_id for q in reader.queues.list(account_id=account_id)}
        assert reader.queues.get(qid, account_id=account_id).queue_name == queue.queue_name
        assert reader.queues.get_metrics(qid, account_id=account_id).backlog_count == 1
        assert [m.body for m in reader.queues.messages.peek(qid, account_id=account_id).messages] == ["visible"]
        writes = [
            lambda: reader.queues.create(account_id=account_id, queue_name=unique_name("nope")),
            lambda: reader.queues.edit(qid, account_id=account_id, settings={"delivery_paused": True}),
            lambda: reader.queues.messages.push(qid, account_id=account_id, body="x", content_type="text"),
            # Pulling leases messages, so it needs write scope, as on Cloudflare.
            lambda: reader.queues.messages.pull(qid, account_id=account_id),
            lambda: reader.queues.purge.start(qid, account_id=account_id, delete_messages_permanently=True),
            lambda: reader.user.tokens.list(),
        ]
        for write in writes:
            with pytest.raises(cloudflare.APIStatusError) as excinfo:
                write()
            api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)
    assert client.queues.get(qid, account_id=account_id).settings.delivery_paused is False
    assert client.queues.get_metrics(qid, account_id=account_id).backlog_count == 1


def test_token_list_pages_and_revoked_token_is_refused(base_url, account_id, client, read_token):
    listed = list(itertools.islice(client.user.tokens.list(per_page=1), 1000))
    assert len(listed) < 1000, "token pagination did not terminate"
    ids = [token.id for token in listed]
    assert len(ids) == len(set(ids)) and read_token.id in ids
    assert all(token.to_dict().get("value") is None for token in listed), "a listed token shows its secret"
    deleted = client.user.tokens.delete(read_token.id)
    assert deleted.id == read_token.id
    with sync_client(base_url, read_token.value) as revoked:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            revoked.queues.list(account_id=account_id)
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)


def test_second_account_is_isolated(base_url, account_id, client, new_queue):
    created = client.post("/accounts", body={"email": "second@wharf.test"}, cast_to=object)
    assert created["success"] is True
    other_id, other_token = created["result"]["id"], created["result"]["token"]["value"]
    assert HEX32.match(other_id) and other_id != account_id
    mine = new_queue("isolated")
    with sync_client(base_url, other_token) as other:
        theirs = other.queues.create(account_id=other_id, queue_name=mine.queue_name)  # same name, other namespace
        assert theirs.queue_id != mine.queue_id
        assert [q.queue_id for q in other.queues.list(account_id=other_id)] == [theirs.queue_id]
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            other.queues.get(mine.queue_id, account_id=account_id)
        api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)
        # Their token on their path but our queue id: the queue is not theirs.
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            other.queues.get(mine.queue_id, account_id=other_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 10104)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.list(account_id=other_id)
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)
