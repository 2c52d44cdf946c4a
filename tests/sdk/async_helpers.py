"""Running a scenario on `AsyncCloudflare`: one event loop and one client per
test, with the queues the scenario creates deleted afterwards.

The async tests mirror the sync ones operation by operation; each test is a
plain function that calls `run_scenario`, so no pytest plugin is needed and an
assertion failing inside the loop fails the test like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import cloudflare
from cloudflare.types.queues import Queue

from conftest import async_client, unique_name


@dataclass
class AsyncScenario:
    sdk: cloudflare.AsyncCloudflare
    account_id: str
    created_queue_ids: list[str] = field(default_factory=list)

    async def new_queue(self, prefix: str) -> Queue:
        queue = await self.sdk.queues.create(account_id=self.account_id, queue_name=unique_name(prefix))
        assert queue is not None and queue.queue_id
        self.created_queue_ids.append(queue.queue_id)
        return queue

    async def pull_queue(self, prefix: str, **consumer_kwargs: Any) -> tuple:
        """A queue with an http_pull consumer: (queue, consumer)."""
        queue = await self.new_queue(prefix)
        consumer = await self.sdk.queues.consumers.create(
            queue.queue_id, account_id=self.account_id, type="http_pull", **consumer_kwargs
        )
        assert consumer is not None and consumer.consumer_id
        return queue, consumer

    async def metrics(self, queue_id: str) -> tuple[int, int, int]:
        result = await self.sdk.queues.get_metrics(queue_id, account_id=self.account_id)
        assert result is not None
        return int(result.backlog_count), int(result.backlog_bytes), int(result.oldest_message_timestamp_ms)

    async def pull_all(self, queue_id: str) -> list:
        """Pulls until a pull comes back empty (bounded, so it cannot loop for ever)."""
        messages: list = []
        for _ in range(100):
            result = await self.sdk.queues.messages.pull(queue_id, account_id=self.account_id, batch_size=100)
            assert result is not None and result.messages is not None
            if not result.messages:
                return messages
            messages.extend(result.messages)
        raise AssertionError("pull never came back empty after 100 pulls")

    async def envelope_get(self, path: str, params: dict | None = None) -> dict:
        """GET through the async transport; the whole envelope (with result_info)."""
        envelope = await self.sdk.get(path, cast_to=object, options={"params": params or {}})
        assert isinstance(envelope, dict) and envelope["success"] is True, envelope
        return envelope

    async def cleanup(self) -> None:
        for queue_id in self.created_queue_ids:
            try:
                await self.sdk.queues.delete(queue_id, account_id=self.account_id)
            except cloudflare.NotFoundError:
                pass


def run_scenario(
    base_url: str, api_token: str, account_id: str, body: Callable[[AsyncScenario], Awaitable[None]]
) -> None:
    """Runs `body` in a fresh event loop with its own async client."""

    async def main() -> None:
        async with async_client(base_url, api_token) as sdk:
            scenario = AsyncScenario(sdk, account_id)
            try:
                await body(scenario)
            finally:
                await scenario.cleanup()

    asyncio.run(main())
