"""The README's Python quick start runs as written against the real server."""

from __future__ import annotations

import re

from conftest import unique_name
from helpers import REPO_ROOT_README, metrics

SNIPPET = re.compile(r"\*\*Python SDK\*\* \(PyPI `cloudflare`\):\n.*?```python\n(.*?)```", re.S)


def test_readme_python_quick_start_runs(base_url, api_token, account_id, client, capsys):
    match = SNIPPET.search(REPO_ROOT_README.read_text())
    assert match, "README has no Python SDK snippet"
    name = unique_name("readme")
    code = match.group(1)
    assert 'base_url="http://127.0.0.1:8787/client/v4"' in code and 'queue_name="orders"' in code
    code = code.replace("http://127.0.0.1:8787/client/v4", base_url).replace('"orders"', repr(name))
    exec(compile(code, "README.md", "exec"), {"TOKEN": api_token, "ACCOUNT": account_id})
    printed = capsys.readouterr().out
    assert " 1.0 {'order': 42}\n" in printed  # attempts is a float in the SDK's model
    queue = next(iter(client.queues.list(account_id=account_id, extra_query={"name": name})))
    try:
        assert metrics(client, account_id, queue.queue_id) == (0, 0, 0)
    finally:
        client.queues.delete(queue.queue_id, account_id=account_id)
