"""Starting and stopping the real `wharf` binary for black-box tests.

The tests build nothing: they run the binary that `cargo build --release -p wharf`
left in target/release (or the one named by WHARF_BIN), exactly as a user would.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "wharf"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
READY_LINE = re.compile(r"^wharf listening on (http://\S+)\s*$")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def wharf_bin() -> Path:
    path = Path(os.environ.get("WHARF_BIN", str(DEFAULT_BIN)))
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"no wharf binary at {path}: run `cargo build --release -p wharf` or set WHARF_BIN")
    return path


def backend_args() -> list[str]:
    """`--backend postgres --database-url URL` when WHARF_TEST_BACKEND=postgres."""
    backend = os.environ.get("WHARF_TEST_BACKEND", "engine")
    if backend == "engine":
        return []
    if backend == "postgres":
        url = os.environ.get("WHARF_TEST_DATABASE_URL")
        if not url:
            raise RuntimeError("WHARF_TEST_BACKEND=postgres needs WHARF_TEST_DATABASE_URL")
        return ["--backend", "postgres", "--database-url", url]
    raise RuntimeError(f"unknown WHARF_TEST_BACKEND {backend!r}: use engine or postgres")


def is_postgres() -> bool:
    return os.environ.get("WHARF_TEST_BACKEND", "engine") == "postgres"


@dataclass
class WharfProcess:
    """One running `wharf serve`; its output is kept for failure messages."""

    data_dir: Path
    account_id: str
    api_token: str
    account_email: str = "sdk-tests@wharf.test"
    process: subprocess.Popen | None = None
    origin: str = ""  # http://IP:PORT
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"{self.origin}/client/v4"

    def start(self) -> "WharfProcess":
        assert self.process is None or self.process.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "WHARF_ACCOUNT_ID": self.account_id,
                "WHARF_API_TOKEN": self.api_token,
                "WHARF_ACCOUNT_EMAIL": self.account_email,
                "RUST_BACKTRACE": "1",
                "NO_COLOR": "1",
            }
        )
        command = [
            str(wharf_bin()),
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(self.data_dir),
            *backend_args(),
        ]
        self.output.append(f"$ {' '.join(command)}")
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        ready = threading.Event()
        self._reader = threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True)
        self._reader.start()
        if not ready.wait(START_TIMEOUT_S) or not self.origin:
            self.kill()
            raise RuntimeError("wharf did not print its listening line:\n" + self.log_tail())
        return self

    def _read_output(self, process: subprocess.Popen, ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(ANSI_ESCAPE.sub("", line.rstrip("\n")))
            match = READY_LINE.match(line)
            if match and not ready.is_set():
                self.origin = match.group(1)
                ready.set()
        # The process closed its output: it has exited (or is about to).
        ready.set()

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.output[-lines:])

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code (SIGKILL if it hangs)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise RuntimeError(f"wharf ignored SIGTERM for {timeout} s:\n" + self.log_tail())
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL: the crash the durability tests simulate."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def wait_exit(self, timeout: float) -> int | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return self.process.returncode
            time.sleep(0.05)
        return None
