"""The one address factory for listening sockets: a free port, and waiting for a listener."""

from __future__ import annotations

import socket
import subprocess

from launch.spec import PortOpen
from tests.support.polling import wait_until


def free_port() -> int:
    """An ephemeral port nobody listens on (tests run concurrently; never fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(
    port: int, timeout: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    """Until 127.0.0.1:port accepts; if `process` exits first, RuntimeError with its stderr."""
    listening = PortOpen("127.0.0.1", port)

    def up() -> bool:
        if process is not None and process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {stderr}")
        return listening()

    wait_until(up, timeout, interval=0.02, what=f"a listener on port {port}")
