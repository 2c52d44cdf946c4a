"""PyPI `onestep-cf-queues` (pinned in requirements.txt) against the real wharf binary.

A producer (`CFQueue.send`) and an HTTP pull consumer (`CFQueue.fetch`, delivery
ack/retry, and a whole `OneStepApp` task) talk to wharf exactly as they would to
Cloudflare: only `base_url` changes. Queue state is checked with plain HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from onestep import OneStepApp
from onestep.envelope import Envelope
from onestep_cf_queues import CFQueuesConnector

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^wharf listening on (http://\S+)$")
STARTUP_TIMEOUT_S = 30


class Wharf:
    """One `wharf serve` process on an ephemeral port, with a known account and token."""

    def __init__(self) -> None:
        self.account_id = secrets.token_hex(16)
        self.token = secrets.token_hex(20)
        self.data_dir = tempfile.mkdtemp(prefix="wharf-onestep-")
        binary = os.environ.get("WHARF_BIN", str(REPO_ROOT / "target" / "release" / "wharf"))
        env = dict(os.environ, WHARF_ACCOUNT_ID=self.account_id, WHARF_API_TOKEN=self.token)
        env.setdefault("RUST_LOG", "warn")
        self.process = subprocess.Popen(
            [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.base = self._wait_listening()
        self.api_base = f"{self.base}/client/v4"

    def _wait_listening(self) -> str:
        found: list[str] = []

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                match = LISTENING.match(line.strip())
                if match:
                    found.append(match.group(1))
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_S)
        if not found:
            self.process.kill()
            raise RuntimeError(f"wharf did not print its listening line (exit code {self.process.poll()})")
        return found[0]

    def request(self, method: str, subpath: str, body: object | None = None) -> tuple[int, dict]:
        url = f"{self.api_base}/accounts/{self.account_id}{subpath}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def ok(self, method: str, subpath: str, body: object | None = None):
        status, reply = self.request(method, subpath, body)
        assert status == 200 and reply["success"] is True, f"{method} {subpath}: {status} {reply}"
        return reply["result"]

    def new_pull_queue(self, prefix: str) -> str:
        queue = self.ok("POST", "/queues", {"queue_name": f"{prefix}-{secrets.token_hex(4)}"})
        self.ok("POST", f"/queues/{queue['queue_id']}/consumers", {"type": "http_pull"})
        return queue["queue_id"]

    def metrics(self, queue_id: str) -> dict:
        return self.ok("GET", f"/queues/{queue_id}/metrics")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return code


@pytest.fixture(scope="module")
def wharf():
    server = Wharf()
    yield server
    assert server.stop() == 0, "wharf must exit 0 on SIGTERM"


def connector(wharf: Wharf) -> CFQueuesConnector:
    return CFQueuesConnector(account_id=wharf.account_id, api_token=wharf.token, base_url=wharf.api_base)


def test_producer_sends_and_pull_consumer_receives_and_acks(wharf: Wharf) -> None:
    queue_id = wharf.new_pull_queue("onestep")

    async def scenario() -> list:
        cf = connector(wharf)
        # ack_flush_interval_s=0 flushes every ack at once, so state is checkable right after.
        queue = cf.queue(queue_id, batch_size=10, visibility_timeout_ms=5000, ack_flush_interval_s=0)
        try:
            for i in range(3):
                await queue.send(Envelope(body={"i": i}))
            assert wharf.metrics(queue_id)["backlog_count"] == 3
            deliveries = await queue.fetch(10)
            assert len(deliveries) == 3
            for delivery in deliveries:
                assert delivery.envelope.meta["cf_queues"]["attempts"] == 1
                assert re.fullmatch(r"[0-9a-f]{32}", delivery.envelope.meta["cf_queues"]["id"])
                await delivery.ack()
            assert await queue.fetch(10) == []
            return sorted(d.envelope.body["i"] for d in deliveries)
        finally:
            await queue.close()
            await cf.close()

    assert asyncio.run(scenario()) == [0, 1, 2]
    assert wharf.metrics(queue_id) == {"backlog_count": 0, "backlog_bytes": 0, "oldest_message_timestamp_ms": 0}


def test_retry_redelivers_with_attempts_incremented(wharf: Wharf) -> None:
    queue_id = wharf.new_pull_queue("onestep-retry")

    async def scenario() -> None:
        cf = connector(wharf)
        queue = cf.queue(queue_id, batch_size=5, visibility_timeout_ms=5000, ack_flush_interval_s=0)
        try:
            await queue.send(Envelope(body={"job": "flaky"}))
            [first] = await queue.fetch(5)
            await first.retry(delay_s=0)
            [second] = await queue.fetch(5)
            assert second.envelope.body == {"job": "flaky"}
            assert second.envelope.meta["cf_queues"]["id"] == first.envelope.meta["cf_queues"]["id"]
            assert second.envelope.meta["cf_queues"]["attempts"] == 2
            await second.ack()
        finally:
            await queue.close()
            await cf.close()

    asyncio.run(scenario())
    assert wharf.metrics(queue_id)["backlog_count"] == 0


def test_onestep_app_task_consumes_every_message(wharf: Wharf) -> None:
    queue_id = wharf.new_pull_queue("onestep-app")
    expected = list(range(5))

    async def scenario() -> list[int]:
        producer_cf = connector(wharf)
        producer = producer_cf.queue(queue_id)
        for i in expected:
            await producer.send(Envelope(body={"n": i}))
        await producer.close()
        await producer_cf.close()

        consumer_cf = connector(wharf)
        jobs = consumer_cf.queue(queue_id, batch_size=10, visibility_timeout_ms=10000, poll_interval_s=0.1)
        app = OneStepApp("wharf-compat")
        received: list[int] = []

        @app.task(source=jobs)
        async def consume(ctx, item):
            received.append(item["n"])
            if len(received) >= len(expected):
                app.request_shutdown()

        await asyncio.wait_for(app.serve(), timeout=30)
        await consumer_cf.close()
        return sorted(received)

    assert asyncio.run(scenario()) == expected
    # The app's shutdown closes the source, which flushes the staged acks.
    assert wharf.metrics(queue_id)["backlog_count"] == 0


README = REPO_ROOT / "README.md"
README_SNIPPET = re.compile(r"\*\*onestep-cf-queues\*\* \(PyPI\).*?```python\n(.*?)```", re.S)


def test_readme_onestep_snippet_runs(wharf: Wharf, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's onestep example, as written, against this server."""
    match = README_SNIPPET.search(README.read_text())
    assert match, "README has no onestep-cf-queues snippet"
    code = match.group(1)
    assert 'base_url="http://127.0.0.1:8787/client/v4"' in code
    code = code.replace("http://127.0.0.1:8787/client/v4", wharf.api_base)
    queue_id = wharf.new_pull_queue("onestep-readme")
    namespace = {"ACCOUNT": wharf.account_id, "TOKEN": wharf.token, "QUEUE_ID": queue_id}
    # Run in a thread: the snippet calls asyncio.run itself; a timeout keeps a hang from stalling the suite.
    errors: list[BaseException] = []

    def run() -> None:
        try:
            exec(compile(code, "README.md", "exec"), namespace)
        except BaseException as error:  # reported below, on the test's thread
            errors.append(error)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    runner.join(30)
    assert not runner.is_alive(), "the README snippet did not finish within 30 s"
    assert not errors, errors
    assert "got {'order': 42}" in capsys.readouterr().out
    assert wharf.metrics(queue_id)["backlog_count"] == 0
