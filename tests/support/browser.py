"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`).

No driver and no websocket library: commands are NUL-terminated JSON on fd 3, answers and
events come back on fd 4 (Chromium's own transport for embedders).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

# FACTS.md: the flags this machine's Chromium needs headless.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """Chromium answered a command with an error, or a page script threw."""


class Browser:
    def __init__(self, binary: str | None = None) -> None:
        binary = binary or shutil.which("chromium")
        if binary is None:
            raise BrowserError("chromium is not installed (scripts/bootstrap.sh installs it)")
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        to_browser, self._commands = os.pipe()
        self._events, from_browser = os.pipe()

        def pipes_on_fd_3_and_4() -> None:
            read, write = os.dup(to_browser), os.dup(from_browser)  # dup2 keeps them open
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=pipes_on_fd_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0

    def command(self, method: str, session: str | None = None, **params: Any) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer["result"]

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._events, 1 << 16)
            if not chunk:
                raise BrowserError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def open(self, url: str) -> str:
        """A new tab on `url`; returns its session for `evaluate`."""
        target = self.command("Target.createTarget", url=url)["targetId"]
        session = self.command("Target.attachToTarget", targetId=target, flatten=True)
        session_id = session["sessionId"]
        deadline = time.monotonic() + 30
        while True:  # until the page itself (not about:blank) has loaded
            try:
                state = self.evaluate(session_id, "location.href + ' ' + document.readyState")
            except BrowserError:
                state = ""  # the context was replaced by the navigation: ask again
            if state == f"{url} complete":
                return session_id
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not load: {state!r}")
            time.sleep(0.1)

    def evaluate(self, session: str, expression: str, timeout: float = 30.0) -> Any:
        """Run `expression` (may be a promise) in the page; its JSON value."""
        deadline = time.monotonic() + timeout
        result = self.command(
            "Runtime.evaluate", session, expression=expression, awaitPromise=True,
            returnByValue=True, timeout=int(timeout * 1000),
        )  # fmt: skip
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page script failed: {text}")
        if time.monotonic() > deadline:
            raise BrowserError("page script ran past its timeout")
        return result["result"].get("value")

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)
        for fd in (self._commands, self._events):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
