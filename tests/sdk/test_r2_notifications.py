"""R2 event notifications (#29–#31) are known to Wharf but not served: each
answers 501 with code 7010, through the SDK's own R2 methods."""

from __future__ import annotations

import cloudflare
import pytest

from helpers import api_error


def test_r2_event_notifications_are_not_implemented(client, account_id, new_queue):
    queue = new_queue("r2")
    calls = [
        lambda: client.r2.buckets.event_notifications.update(
            queue.queue_id, account_id=account_id, bucket_name="photos", rules=[{"actions": ["PutObject"]}]
        ),
        lambda: client.r2.buckets.event_notifications.get(queue.queue_id, account_id=account_id, bucket_name="photos"),
        lambda: client.r2.buckets.event_notifications.delete(
            queue.queue_id, account_id=account_id, bucket_name="photos"
        ),
    ]
    for call in calls:
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            call()
        error = api_error(excinfo, cloudflare.InternalServerError, 501, 7010)
        assert "not implemented" in error.errors[0].message
