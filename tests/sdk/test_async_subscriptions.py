"""Event subscriptions #24–#28 through `AsyncCloudflare`, including the async
page-number pager (it asks for page+1 until a page comes back empty)."""

from __future__ import annotations

import cloudflare
import pytest

from async_helpers import AsyncScenario, run_scenario
from helpers import HEX32, api_error


async def create_subscription(s: AsyncScenario, queue_id: str, name: str, worker_name: str):
    return await s.sdk.queues.subscriptions.create(
        account_id=s.account_id,
        name=name,
        enabled=True,
        source={"type": "workersBuilds.worker", "worker_name": worker_name},
        destination={"type": "queues.queue", "queue_id": queue_id},
        events=["build-completed"],
    )


def test_async_subscription_lifecycle(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue = await s.new_queue("a-subs")
        created = await create_subscription(s, queue.queue_id, "a-sub-one", "aw")
        assert HEX32.match(created.id) and created.enabled is True
        assert created.destination.queue_id == queue.queue_id
        fetched = await s.sdk.queues.subscriptions.get(created.id, account_id=s.account_id)
        assert fetched.to_dict() == created.to_dict()

        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await create_subscription(s, queue.queue_id, "a-sub-dup", "aw")
        api_error(excinfo, cloudflare.APIStatusError, 405, 11014)

        updated = await s.sdk.queues.subscriptions.update(
            created.id, account_id=s.account_id, name="a-sub-two", enabled=False
        )
        assert updated.name == "a-sub-two" and updated.enabled is False
        assert updated.events == ["build-completed"]  # untouched by the patch

        deleted = await s.sdk.queues.subscriptions.delete(created.id, account_id=s.account_id)
        assert deleted.id == created.id
        with pytest.raises(cloudflare.APIStatusError) as excinfo:
            await s.sdk.queues.subscriptions.get(created.id, account_id=s.account_id)
        api_error(excinfo, cloudflare.NotFoundError, 404, 11012)

    run_scenario(base_url, api_token, account_id, body)


def test_async_auto_pagination_visits_every_subscription_once(base_url, api_token, account_id):
    async def body(s: AsyncScenario) -> None:
        queue = await s.new_queue("a-subpage")
        created = [await create_subscription(s, queue.queue_id, f"a-page-{i}", f"apw{i}") for i in range(5)]
        try:
            # Only this queue's subscriptions, so other tests' leftovers do not count.
            pager = s.sdk.queues.subscriptions.list(
                account_id=s.account_id, per_page=2, order="name", extra_query={"queue_id": queue.queue_id}
            )
            first_page = await pager
            info = first_page.result_info.to_dict()
            assert info["page"] == 1 and info["per_page"] == 2 and info["total_count"] == 5
            visited = []
            async for subscription in pager:
                visited.append(subscription)
                assert len(visited) < 1000, "pagination did not terminate"
            ids = [subscription.id for subscription in visited]
            assert len(ids) == len(set(ids)) == 5
            assert set(ids) == {subscription.id for subscription in created}
            names = [subscription.name for subscription in visited]
            assert names == sorted(names)
        finally:
            for subscription in created:
                await s.sdk.queues.subscriptions.delete(subscription.id, account_id=s.account_id)

    run_scenario(base_url, api_token, account_id, body)
