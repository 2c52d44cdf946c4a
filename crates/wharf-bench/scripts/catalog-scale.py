#!/usr/bin/env python3
"""How metadata changes scale with the number of queues, and what they cost
the message path.

Starts `wharf serve` (WHARF_BIN, default target/release/wharf) on a fresh data
directory, creates --queues queues through the API and prints the time per
thousand, then pushes one message at a time to one queue for --seconds while
a second connection keeps updating other queues' settings, and prints the
push latency percentiles with and without that traffic, then again while a
third connection lists every queue, page after page (as the dashboard and
`wharf queues list` do); then puts a message in every queue and times the
pushes again, and measures the CPU of the idle server, whose sweeper visits
every queue holding messages ten times a second.

    python3 crates/wharf-bench/scripts/catalog-scale.py --queues 4000

Only the standard library; one process, so the figures compare binaries run
the same way in the same minutes, not absolute HTTP costs.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[3]


def start_server(binary):
    data = tempfile.mkdtemp(prefix="wharf-catalog-scale.", dir=ROOT / "target")
    process = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(data, "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    fields = {}
    for line in process.stdout:
        for key, pattern in (("account", r"^account id: (\S+)"), ("token", r"^admin token: (\S+)"),
                             ("url", r"^wharf listening on http://(\S+)")):
            match = re.match(pattern, line)
            if match:
                fields[key] = match.group(1)
        if "url" in fields:
            break
    if not {"account", "token", "url"} <= fields.keys():
        process.kill()
        sys.exit("wharf serve did not print its account, token and address")
    return process, data, fields


class Api:
    def __init__(self, fields):
        host, port = fields["url"].rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port))
        self.base = f"/client/v4/accounts/{fields['account']}/queues"
        self.headers = {"Authorization": f"Bearer {fields['token']}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        self.connection.request(method, self.base + path, json.dumps(body) if body is not None else None,
                                self.headers)
        response = self.connection.getresponse()
        payload = response.read()
        if response.status != 200:
            sys.exit(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload)["result"]


def cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def push_latencies(api, queue_id, seconds):
    latencies = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        api.call("POST", f"/{queue_id}/messages", {"body": "x" * 100, "content_type": "text"})
        latencies.append((time.perf_counter() - started) * 1e6)
    latencies.sort()
    return latencies


def describe(latencies):
    return (f"{len(latencies)} pushes, p50 {percentile(latencies, 0.5):.0f} µs, "
            f"p99 {percentile(latencies, 0.99):.0f} µs, max {latencies[-1]:.0f} µs")


def keep_updating(fields, ids, stop, done):
    """settings changes"""
    admin = Api(fields)
    index = 1
    while not stop.is_set():
        queue_id = ids[1 + index % (len(ids) - 1)]
        admin.call("PATCH", f"/{queue_id}", {"settings": {"delivery_delay": index % 60}})
        done.value += 1
        index += 1


def keep_listing(fields, ids, stop, done):
    """full listings"""
    # What the dashboard does every few seconds, and `wharf queues list`:
    # every page of the account's queues.
    reader = Api(fields)
    while not stop.is_set():
        page = 1
        while not stop.is_set():
            reader.connection.request("GET", f"{reader.base}?page={page}&per_page=1000", None, reader.headers)
            response = reader.connection.getresponse()
            listed = json.loads(response.read())
            if response.status != 200:
                sys.exit(f"list: {response.status}")
            if page * 1000 >= listed["result_info"]["total_count"]:
                break
            page += 1
        done.value += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    binary = os.environ.get("WHARF_BIN", str(ROOT / "target" / "release" / "wharf"))
    process, data, fields = start_server(binary)
    try:
        api = Api(fields)
        ids = []
        started = last = time.perf_counter()
        for index in range(args.queues):
            ids.append(api.call("POST", "", {"queue_name": f"scale-{index:05d}"})["queue_id"])
            if (index + 1) % 1000 == 0:
                now = time.perf_counter()
                print(f"queues {index - 998:>5}-{index + 1:<5}: {(now - last) * 1000 / 1000:.2f} ms per create",
                      flush=True)
                last = now
        print(f"created {args.queues} queues in {time.perf_counter() - started:.1f} s")
        target = ids[0]
        print("quiet:          ", describe(push_latencies(api, target, args.seconds)))
        for name, work in (("during updates: ", keep_updating), ("during listing: ", keep_listing)):
            # Another process, so that its JSON work does not hold this
            # interpreter's lock while the pushes are timed.
            stop = multiprocessing.Event()
            done = multiprocessing.Value("i", 0)
            other = multiprocessing.Process(target=work, args=(fields, ids, stop, done))
            other.start()
            latencies = push_latencies(api, target, args.seconds)
            stop.set()
            other.join()
            print(name, describe(latencies), f"({done.value / args.seconds:.1f} {work.__doc__}/s)")
        # Every queue holds a message from here on: the sweeper visits each
        # one every 100 ms.
        for queue_id in ids[1:]:
            api.call("POST", f"/{queue_id}/messages", {"body": "x", "content_type": "text"})
        print("all queues hold messages:", describe(push_latencies(api, target, args.seconds)))
        started_cpu = cpu_seconds(process.pid)
        time.sleep(args.seconds)
        idle = (cpu_seconds(process.pid) - started_cpu) / args.seconds * 100
        print(f"idle server with {len(ids)} queues holding messages: {idle:.1f} % of a core")
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
