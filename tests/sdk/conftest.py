"""Fixtures: one real `wharf serve` per test session, and SDK clients on it.

Every HTTP exchange the SDK makes is recorded; when a test fails, the last
exchanges and the server's output are attached to the report, so a failure
can be read (and reported) without re-running anything.
"""

from __future__ import annotations

import collections
import secrets
from collections.abc import Callable, Iterator

import cloudflare
import httpx
import pytest
from cloudflare.types.queues import Queue

from wharf_process import WharfProcess

# Exchanges kept for the failure report of the running test.
EXCHANGES: collections.deque[str] = collections.deque(maxlen=12)
BODY_PREVIEW = 1500


def _preview(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    return text if len(text) <= BODY_PREVIEW else text[:BODY_PREVIEW] + f"… ({len(text)} chars)"


def record_exchange(response: httpx.Response) -> None:
    request = response.request
    EXCHANGES.append(
        f"> {request.method} {request.url}\n> {_preview(request.content)}\n"
        f"< {response.status_code}\n< {_preview(response.content)}"
    )


def _log_response(response: httpx.Response) -> None:
    response.read()
    record_exchange(response)


async def _alog_response(response: httpx.Response) -> None:
    await response.aread()
    record_exchange(response)


def sync_client(base_url: str, api_token: str, **kwargs) -> cloudflare.Cloudflare:
    """An SDK client that validates responses against the SDK's own models
    and never retries (a retry would hide a 409 or a 5xx from the test)."""
    http = cloudflare.DefaultHttpxClient(event_hooks={"response": [_log_response]})
    return cloudflare.Cloudflare(
        api_token=api_token,
        base_url=base_url,
        max_retries=0,
        http_client=http,
        _strict_response_validation=True,
        **kwargs,
    )


def async_client(base_url: str, api_token: str) -> cloudflare.AsyncCloudflare:
    """The async twin of `sync_client`; create it inside the running event loop."""
    http = cloudflare.DefaultAsyncHttpxClient(event_hooks={"response": [_alog_response]})
    return cloudflare.AsyncCloudflare(
        api_token=api_token,
        base_url=base_url,
        max_retries=0,
        http_client=http,
        _strict_response_validation=True,
    )


def unique_name(prefix: str) -> str:
    """Queue names unique across runs, so a reused database never collides."""
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def account_id() -> str:
    return secrets.token_hex(16)


@pytest.fixture(scope="session")
def api_token() -> str:
    return "wharf-test-" + secrets.token_hex(16)


_SERVER: WharfProcess | None = None


@pytest.fixture(scope="session")
def wharf(tmp_path_factory: pytest.TempPathFactory, account_id: str, api_token: str) -> Iterator[WharfProcess]:
    """The real binary on an ephemeral port, killed at the end of the session."""
    global _SERVER
    server = WharfProcess(tmp_path_factory.mktemp("wharf-data"), account_id, api_token).start()
    _SERVER = server
    try:
        yield server
    finally:
        _SERVER = None
        server.terminate()


@pytest.fixture(scope="session")
def base_url(wharf: WharfProcess) -> str:
    return wharf.base_url


@pytest.fixture(scope="session")
def client(base_url: str, api_token: str) -> Iterator[cloudflare.Cloudflare]:
    with sync_client(base_url, api_token) as sdk:
        yield sdk


@pytest.fixture
def new_queue(client: cloudflare.Cloudflare, account_id: str) -> Iterator[Callable[..., Queue]]:
    """Creates queues with unique names and deletes them after the test."""
    created: list[str] = []

    def make(prefix: str = "sdk") -> Queue:
        queue = client.queues.create(account_id=account_id, queue_name=unique_name(prefix))
        assert queue is not None and queue.queue_id
        created.append(queue.queue_id)
        return queue

    yield make
    for queue_id in created:
        try:
            client.queues.delete(queue_id, account_id=account_id)
        except cloudflare.NotFoundError:
            pass


@pytest.fixture
def pull_queue(client: cloudflare.Cloudflare, account_id: str, new_queue) -> Callable[..., tuple]:
    """A queue with an http_pull consumer: returns (queue, consumer)."""

    def make(prefix: str = "pull", **consumer_kwargs) -> tuple:
        queue = new_queue(prefix)
        consumer = client.queues.consumers.create(
            queue.queue_id, account_id=account_id, type="http_pull", **consumer_kwargs
        )
        assert consumer is not None and consumer.consumer_id
        return queue, consumer

    return make


@pytest.fixture(autouse=True)
def _fresh_exchange_log() -> None:
    EXCHANGES.clear()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.failed:
        if EXCHANGES:
            report.sections.append(("last HTTP exchanges", "\n\n".join(EXCHANGES)))
        if _SERVER is not None:
            report.sections.append(("wharf output (tail)", _SERVER.log_tail()))
    return report
