"""Small helpers shared by the SDK tests."""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import cloudflare
import pytest

HEX32 = re.compile(r"^[0-9a-f]{32}$")
REPO_ROOT_README = Path(__file__).resolve().parents[2] / "README.md"


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_time(text: str) -> datetime:
    """RFC 3339 as Wharf writes it (`...Z` or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def json_body(message: Any) -> Any:
    """`json` bodies come back base64-encoded (RFC 4648), as on Cloudflare."""
    return json.loads(base64.b64decode(message.body, validate=True))


def api_error(excinfo: pytest.ExceptionInfo, error_class: type, status: int, code: int) -> cloudflare.APIStatusError:
    """Asserts the SDK raised `error_class` with this HTTP status and v4 code."""
    error = excinfo.value
    assert isinstance(error, error_class), f"expected {error_class.__name__}, got {type(error).__name__}: {error}"
    assert error.status_code == status, error.body
    assert error.errors, f"no errors[] in {error.body}"
    assert error.errors[0].code == code, error.body
    assert isinstance(error.body, dict) and error.body.get("success") is False, error.body
    assert error.body.get("result") is None, error.body
    return error


def envelope_post(client: cloudflare.Cloudflare, path: str, body: Any) -> dict:
    """POST through the SDK's own transport for operations the SDK has no
    method for (preview, preview/ack, extend); returns the whole envelope."""
    envelope = client.post(path, body=body, cast_to=object)
    assert isinstance(envelope, dict), envelope
    assert envelope["success"] is True, envelope
    return envelope


def envelope_get(client: cloudflare.Cloudflare, path: str, params: dict | None = None) -> dict:
    """GET through the SDK's transport; returns the whole envelope (with result_info)."""
    envelope = client.get(path, cast_to=object, options={"params": params or {}})
    assert isinstance(envelope, dict), envelope
    assert envelope["success"] is True, envelope
    return envelope


def metrics(client: cloudflare.Cloudflare, account_id: str, queue_id: str) -> tuple[int, int, int]:
    result = client.queues.get_metrics(queue_id, account_id=account_id)
    assert result is not None
    return int(result.backlog_count), int(result.backlog_bytes), int(result.oldest_message_timestamp_ms)


def pull_all(client: cloudflare.Cloudflare, account_id: str, queue_id: str, **kwargs) -> list:
    """Pulls until a pull comes back empty (bounded, so it cannot loop for ever)."""
    messages: list = []
    for _ in range(100):
        result = client.queues.messages.pull(queue_id, account_id=account_id, batch_size=100, **kwargs)
        assert result is not None and result.messages is not None
        if not result.messages:
            return messages
        messages.extend(result.messages)
    raise AssertionError("pull never came back empty after 100 pulls")
