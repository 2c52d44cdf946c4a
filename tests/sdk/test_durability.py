"""Crash and restart (issue 2, item 6): a 2xx means the change is on disk.

Each test runs its own `wharf serve` on its own data directory, kills it with
SIGKILL and starts it again on the same directory. They use the session's
account, so that with WHARF_TEST_BACKEND=postgres (one shared database) the
account already exists and the same token works.
"""

from __future__ import annotations

import time

from conftest import sync_client, unique_name
from helpers import metrics
from wharf_process import WharfProcess, is_postgres

TOTAL = 200


def collect(client, account_id: str, queue_id: str, expected: int, deadline_s: float) -> list:
    """Pulls until a pull comes back empty once `expected` messages arrived, or
    the deadline passed. Long leases: nothing is handed out twice meanwhile."""
    found: list = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        batch = client.queues.messages.pull(queue_id, account_id=account_id, batch_size=100, visibility_timeout_ms=600_000)
        found.extend(batch.messages)
        if not batch.messages:
            if len(found) >= expected:
                return found
            time.sleep(0.1)
    return found


def test_sigkill_keeps_every_unacked_message_and_no_acked_one(tmp_path, account_id, api_token):
    token = api_token
    server = WharfProcess(tmp_path / "data", account_id, token).start()
    try:
        with sync_client(server.base_url, token) as client:
            queue = client.queues.create(account_id=account_id, queue_name=unique_name("durable"))
            qid = queue.queue_id
            client.queues.consumers.create(qid, account_id=account_id, type="http_pull", settings={"max_retries": 5})
            for start in range(0, TOTAL, 100):
                client.queues.messages.bulk_push(
                    qid,
                    account_id=account_id,
                    messages=[{"body": f"msg-{i:04d}", "content_type": "text"} for i in range(start, start + 100)],
                )
            # Short leases so that a backend whose leases outlive a restart
            # (postgres) hands the messages out again soon after.
            pulled = client.queues.messages.pull(qid, account_id=account_id, batch_size=60, visibility_timeout_ms=1500)
            assert len(pulled.messages) == 60 and all(m.attempts == 1 for m in pulled.messages)
            acked, delayed, held = pulled.messages[:35], pulled.messages[35:40], pulled.messages[40:]
            outcome = client.queues.messages.ack(
                qid,
                account_id=account_id,
                acks=[{"lease_id": m.lease_id} for m in acked],
                retries=[{"lease_id": m.lease_id, "delay_seconds": 3600} for m in delayed],
            )
            assert (outcome.ack_count, outcome.retry_count) == (35, 5)
            # The last write before the crash must be durable too.
            client.queues.messages.push(qid, account_id=account_id, body="last-words", content_type="text")
            before = metrics(client, account_id, qid)
            assert before[0] == TOTAL - 35 + 1
        server.kill()
        assert server.process.returncode == -9

        server.start()
        with sync_client(server.base_url, token) as client:
            restored = client.queues.get(qid, account_id=account_id)
            assert restored.queue_name == queue.queue_name
            assert restored.consumers_total_count == 1
            assert metrics(client, account_id, qid)[:2] == before[:2]
            # Retried with an hour's delay: still in the backlog, not deliverable.
            expected = TOTAL - 35 - 5 + 1
            found = collect(client, account_id, qid, expected, deadline_s=15 if is_postgres() else 5)
            bodies = [m.body for m in found]
            assert len(bodies) == len(set(bodies)), "a message came back twice"
            acked_bodies = {m.body for m in acked}
            assert not acked_bodies & set(bodies), "an acked message came back"
            delayed_bodies = {m.body for m in delayed}
            assert not delayed_bodies & set(bodies), "a delayed retry was delivered early"
            assert set(bodies) == {f"msg-{i:04d}" for i in range(TOTAL)} - acked_bodies - delayed_bodies | {"last-words"}
            attempts = {m.body: m.attempts for m in found}
            # The crashed delivery counts as a failed one: held messages are on attempt 2.
            assert {attempts[m.body] for m in held} == {2}
            never_pulled = set(bodies) - {m.body for m in held}
            assert {attempts[body] for body in never_pulled} == {1}
    finally:
        server.kill()


def test_sigterm_shuts_down_gracefully_and_keeps_state(tmp_path, account_id, api_token):
    token = api_token
    server = WharfProcess(tmp_path / "data", account_id, token).start()
    try:
        with sync_client(server.base_url, token) as client:
            queue = client.queues.create(account_id=account_id, queue_name=unique_name("graceful"))
            client.queues.messages.push(queue.queue_id, account_id=account_id, body={"kept": True})
        assert server.terminate(timeout=10) == 0
        server.start()
        with sync_client(server.base_url, token) as client:
            assert metrics(client, account_id, queue.queue_id)[:2] == (1, len(b'{"kept":true}'))
    finally:
        server.kill()
