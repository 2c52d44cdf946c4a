"""Credentials through the SDK (and httpx for what the SDK never sends)."""

from __future__ import annotations

import secrets

import cloudflare
import httpx
import pytest

from conftest import sync_client
from helpers import api_error


def test_wrong_token_is_refused(base_url, account_id):
    with sync_client(base_url, "not-the-token-" + secrets.token_hex(8)) as intruder:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            intruder.queues.list(account_id=account_id)
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)


def test_token_of_one_account_is_refused_on_another(client):
    other_account = secrets.token_hex(16)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.create(account_id=other_account, queue_name="not-mine")
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)
    with pytest.raises(cloudflare.APIStatusError) as excinfo:
        client.queues.list(account_id="not-hex")
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)


def test_email_and_key_credentials(wharf, base_url, account_id, api_token):
    """X-Auth-Email + X-Auth-Key, the key being a token secret of the account."""
    with cloudflare.Cloudflare(
        api_email=wharf.account_email, api_key=api_token, base_url=base_url, max_retries=0
    ) as by_key:
        assert all(queue.queue_id for queue in by_key.queues.list(account_id=account_id))
    with cloudflare.Cloudflare(
        api_email="someone-else@wharf.test", api_key=api_token, base_url=base_url, max_retries=0
    ) as wrong_email:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            wrong_email.queues.list(account_id=account_id)
    api_error(excinfo, cloudflare.PermissionDeniedError, 403, 10000)


def test_missing_and_malformed_credentials(base_url, account_id):
    path = f"{base_url}/accounts/{account_id}/queues"
    missing = httpx.get(path)
    assert missing.status_code == 400 and missing.json()["errors"][0]["code"] == 6003
    basic = httpx.get(path, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert basic.status_code == 400
    body = basic.json()
    assert body["success"] is False and body["errors"][0]["code"] == 6003
    bad_key = httpx.get(path, headers={"X-Auth-Email": "a@b.c", "X-Auth-Key": "has space"})
    assert bad_key.status_code == 400 and bad_key.json()["errors"][0]["code"] == 6003


def test_error_chain_is_inside_the_error(base_url, account_id):
    path = f"{base_url}/accounts/{account_id}/queues"
    body = httpx.get(path, headers={"Authorization": "Basic dXNlcjpwYXNz"}).json()
    assert [chained["code"] for chained in body["errors"][0].get("error_chain", [])] == [6111]
    body = httpx.get(path, headers={"X-Auth-Email": "a@b.c", "X-Auth-Key": "has space"}).json()
    assert [chained["code"] for chained in body["errors"][0].get("error_chain", [])] == [6103]


def test_healthz_and_token_verify(wharf, client):
    health = httpx.get(f"{wharf.origin}/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    verified = client.get("/user/tokens/verify", cast_to=object)
    assert verified["success"] is True and verified["result"]["status"] == "active"
