#!/usr/bin/env python3
"""Crash test: the real wharf binary under concurrent push / pull / ack / retry
load, killed with SIGKILL at random moments and restarted, again and again.

After every restart (before load resumes) and at the end it checks what
Wharf promises:
  * every message whose push got a 2xx is still queued or was delivered:
    after a restart the backlog holds at least every pushed message whose ack
    got no 2xx, and at most every message that might have been pushed and is
    not acked; the oldest 100 queued messages (peek, no lease) are never ones
    whose ack got a 2xx; at the end a drain finds every such message;
  * no message is delivered by a pull sent after an ack of it got a 2xx;
  * a message's `attempts` never goes down (it rises with every delivery seen,
    and peek after a restart and the final drain never show less);
  * the server always comes back (a failed restart is a violation, reported
    with the summary).

Short form (CI):  python3 tests/crash/crashtest.py --kills 5
Long form:        python3 tests/crash/crashtest.py --kills 50
Only the standard library is used. Exit status 0 means no violation.
"""

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

ACCOUNT = "c0ffee00c0ffee00c0ffee00c0ffee00"
TOKEN = "crash-test-token-0123456789abcdefghijklmn"


class Server:
    def __init__(self, binary, data_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.process = None
        self.port = None

    def start(self, timeout=30.0):
        env = dict(os.environ, WHARF_ACCOUNT_ID=ACCOUNT, WHARF_API_TOKEN=TOKEN, RUST_LOG="warn")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", self.data_dir],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("server exited before listening")
            if line.startswith("wharf listening on http://"):
                self.port = int(line.strip().rsplit(":", 1)[1])
                # Keep draining stdout so the server never blocks on it.
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
        raise RuntimeError("server did not come back within %.0f s" % timeout)

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


class Client:
    """One keep-alive connection; any transport error is raised to the caller."""

    def __init__(self, port):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(self, method, path, body=None):
        payload = None if body is None else json.dumps(body)
        headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "application/json"}
        self.connection.request(method, "/client/v4/accounts/%s%s" % (ACCOUNT, path), payload, headers)
        response = self.connection.getresponse()
        data = json.loads(response.read() or b"{}")
        return response.status, data

    def close(self):
        self.connection.close()


class Ledger:
    """What clients were told, with the times they were told it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.pushed = set()          # push answered 2xx
        self.push_unsure = set()     # push sent, no answer (server killed)
        self.acked = {}              # body -> monotonic time the ack's 2xx arrived
        self.ack_unsure = set()      # ack sent, no answer (server killed)
        self.attempts = {}           # body -> highest attempts seen
        self.deliveries = 0
        self.redelivered = 0         # deliveries with attempts > 1
        self.retried = 0             # retries answered 2xx
        self.violations = []

    def violation(self, text):
        with self.lock:
            self.violations.append(text)


def producer(port, queue, ledger, name, stop):
    client, sequence = Client(port), 0
    try:
        while not stop.is_set():
            bodies = ["%s-%d" % (name, sequence + i) for i in range(random.randint(1, 20))]
            sequence += len(bodies)
            with ledger.lock:
                ledger.push_unsure.update(bodies)
            status, _ = client.call("POST", "/queues/%s/messages/batch" % queue,
                                    {"messages": [{"body": b, "content_type": "text"} for b in bodies]})
            with ledger.lock:
                ledger.push_unsure.difference_update(bodies)
                if status == 200:
                    ledger.pushed.update(bodies)
    except (OSError, http.client.HTTPException, ValueError):
        pass
    finally:
        client.close()


def consumer(port, queue, ledger, stop):
    client = Client(port)
    try:
        while not stop.is_set():
            sent_at = time.monotonic()
            status, data = client.call("POST", "/queues/%s/messages/pull" % queue,
                                       {"batch_size": 20, "visibility_timeout_ms": 3000})
            if status != 200:
                continue
            acks, retries = [], []
            for message in data["result"]["messages"]:
                body, attempts = message["body"], message["attempts"]
                with ledger.lock:
                    ledger.deliveries += 1
                    ledger.redelivered += attempts > 1
                    acked_at = ledger.acked.get(body)
                    previous = ledger.attempts.get(body, 0)
                    ledger.attempts[body] = max(previous, attempts)
                if acked_at is not None and acked_at < sent_at:
                    ledger.violation("%s delivered by a pull sent after its ack succeeded" % body)
                if attempts <= previous:
                    ledger.violation("%s attempts went from %d to %d" % (body, previous, attempts))
                roll = random.random()
                if roll < 0.75:
                    acks.append((body, message["lease_id"]))
                elif roll < 0.9:
                    retries.append(message["lease_id"])
            if not acks and not retries:
                time.sleep(0.01)
                continue
            with ledger.lock:
                ledger.ack_unsure.update(body for body, _ in acks)
            status, data = client.call("POST", "/queues/%s/messages/ack" % queue, {
                "acks": [{"lease_id": lease} for _, lease in acks],
                "retries": [{"lease_id": lease, "delay_seconds": 0} for lease in retries],
            })
            now = time.monotonic()
            # A lease named in `warnings` was not acked (expired, say).
            warned = set((data.get("result") or {}).get("warnings") or {}) if status == 200 else set()
            with ledger.lock:
                for body, lease in acks:
                    # A definite answer either way settles the ack.
                    ledger.ack_unsure.discard(body)
                    if status == 200 and lease not in warned:
                        ledger.acked.setdefault(body, now)
                if status == 200:
                    ledger.retried += len([lease for lease in retries if lease not in warned])
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        pass
    finally:
        client.close()


def setup(port):
    client = Client(port)
    status, data = client.call("POST", "/queues", {"queue_name": "crash"})
    if status != 200:
        raise RuntimeError("create queue failed: %s" % data)
    queue = data["result"]["queue_id"]
    status, data = client.call("POST", "/queues/%s/consumers" % queue, {
        "type": "http_pull", "settings": {"max_retries": 100, "visibility_timeout_ms": 3000}})
    if status != 200:
        raise RuntimeError("create consumer failed: %s" % data)
    client.close()
    return queue


def drain(port, queue, ledger):
    """Pulls and acks everything left; returns the bodies found."""
    client, found = Client(port), set()
    try:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 5.0:
            sent_at = time.monotonic()
            status, data = client.call("POST", "/queues/%s/messages/pull" % queue,
                                       {"batch_size": 100, "visibility_timeout_ms": 60000})
            messages = data.get("result", {}).get("messages", []) if status == 200 else []
            if not messages:
                status, data = client.call("GET", "/queues/%s/metrics" % queue)
                if status == 200 and data["result"]["backlog_count"] == 0:
                    break
                time.sleep(0.2)
                continue
            idle_since = time.monotonic()
            for message in messages:
                body, attempts = message["body"], message["attempts"]
                acked_at = ledger.acked.get(body)
                if acked_at is not None and acked_at < sent_at:
                    ledger.violation("%s still queued after its ack succeeded" % body)
                previous = ledger.attempts.get(body, 0)
                if attempts <= previous:
                    ledger.violation("%s attempts went from %d to %d in the drain" % (body, previous, attempts))
                found.add(body)
            client.call("POST", "/queues/%s/messages/ack" % queue,
                        {"acks": [{"lease_id": m["lease_id"]} for m in messages]})
    finally:
        client.close()
    return found


def check_after_restart(port, queue, ledger, round_number):
    """Checks the queue as recovered, before any load: no lease survives a
    restart, so every message not acked is in the backlog."""
    client = Client(port)
    try:
        status, data = client.call("GET", "/queues/%s/metrics" % queue)
        if status != 200:
            ledger.violation("restart %d: metrics answered %d" % (round_number, status))
            return
        backlog = data["result"]["backlog_count"]
        acked = set(ledger.acked)
        must_be_there = ledger.pushed - acked - ledger.ack_unsure
        may_be_there = (ledger.pushed | ledger.push_unsure) - acked
        if backlog < len(must_be_there):
            ledger.violation("restart %d: backlog %d < %d messages pushed (2xx) and not acked"
                             % (round_number, backlog, len(must_be_there)))
        if backlog > len(may_be_there):
            ledger.violation("restart %d: backlog %d > %d messages that may have been pushed and are not acked"
                             % (round_number, backlog, len(may_be_there)))
        status, data = client.call("POST", "/queues/%s/messages/peek" % queue, {"batch_size": 100})
        if status != 200:
            ledger.violation("restart %d: peek answered %d" % (round_number, status))
            return
        for message in data["result"]["messages"]:
            body, attempts = message["body"], message["attempts"]
            if body in acked:
                ledger.violation("restart %d: %s queued after its ack succeeded" % (round_number, body))
            if body not in ledger.pushed and body not in ledger.push_unsure:
                ledger.violation("restart %d: %s was never pushed" % (round_number, body))
            previous = ledger.attempts.get(body, 0)
            if attempts < previous:
                ledger.violation("restart %d: %s attempts went from %d to %d"
                                 % (round_number, body, previous, attempts))
    finally:
        client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.environ.get("WHARF_BIN", "target/release/wharf"))
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--producers", type=int, default=3)
    parser.add_argument("--consumers", type=int, default=3)
    parser.add_argument("--min-run", type=float, default=0.3, help="shortest load before a kill, seconds")
    parser.add_argument("--max-run", type=float, default=2.0, help="longest load before a kill, seconds")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    random.seed(seed)

    ledger = Ledger()
    restart_seconds = []
    began = time.monotonic()
    found, came_back = set(), True
    with tempfile.TemporaryDirectory(prefix="wharf-crash-") as data_dir:
        server = Server(args.bin, data_dir)
        server.start()
        queue = setup(server.port)
        for round_number in range(1, args.kills + 1):
            stop = threading.Event()
            threads = [threading.Thread(target=producer, args=(server.port, queue, ledger, "r%dp%d" % (round_number, p), stop))
                       for p in range(args.producers)]
            threads += [threading.Thread(target=consumer, args=(server.port, queue, ledger, stop))
                        for _ in range(args.consumers)]
            for thread in threads:
                thread.start()
            time.sleep(random.uniform(args.min_run, args.max_run))
            server.kill()
            stop.set()
            for thread in threads:
                thread.join()
            started = time.monotonic()
            try:
                server.start()
            except (RuntimeError, OSError) as error:
                ledger.violation("restart %d: the server did not come back: %s" % (round_number, error))
                came_back = False
                break
            restart_seconds.append(time.monotonic() - started)
            try:
                check_after_restart(server.port, queue, ledger, round_number)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                ledger.violation("restart %d: checking the recovered queue failed: %r" % (round_number, error))
        if came_back:
            try:
                found = drain(server.port, queue, ledger)
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                ledger.violation("the final drain failed: %r" % (error,))
                came_back = False
        if server.process is not None and server.process.poll() is None:
            server.kill()

    missing = ledger.pushed - set(ledger.acked) - ledger.ack_unsure - found if came_back else set()
    for body in sorted(missing)[:20]:
        ledger.violation("%s was pushed (2xx) but is neither acked nor queued" % body)
    summary = {
        "seed": seed,
        "kills": args.kills,
        "restarts_done": len(restart_seconds),
        "pushed_2xx": len(ledger.pushed),
        "acked_2xx": len(ledger.acked),
        "retried": ledger.retried,
        "deliveries_seen": ledger.deliveries,
        "redelivered": ledger.redelivered,
        "left_in_queue_at_end": len(found),
        "lost": len(missing),
        "violations": len(ledger.violations),
        "max_restart_seconds": round(max(restart_seconds or [0.0]), 3),
        "duration_seconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(summary, indent=2))
    for text in ledger.violations[:50]:
        print("VIOLATION:", text)
    failed = 1 if ledger.violations else 0
    print("crashtest: %d passed, %d failed" % (1 - failed, failed))
    return failed


if __name__ == "__main__":
    sys.exit(main())
