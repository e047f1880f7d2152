"""Real processes for integration and browser tests: gunicorn serving the app and RQ workers,
pointed at the suite's database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import requests

from webapp.embedded_redis import free_port

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]


def stack_env(app_config: dict, **extra: str) -> dict[str, str]:
    """Environment that makes a server or worker use the test database and Redis."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
            "DATABASE_MIGRATION_URL": app_config["DATABASE_MIGRATION_URL"],
            "DATABASE_APP_ROLE": app_config["DATABASE_APP_ROLE"],
            "REDIS_URL": app_config["REDIS_URL"],
            "SECRET_KEY": app_config["SECRET_KEY"],
            "JOURNEYLENS_ENV": "development",
            "PYTHONUNBUFFERED": "1",
            # pytest, Chromium and the servers keep the machine busy: a governed horse would crawl
            # (the governor's tests in tests/integration/test_eventlogs.py turn it on)
            "WORKER_YIELD_CPU": "0",
        }
    )
    env.update(extra)
    return env


def wait_for_http(url: str, timeout_s: float = 30, process: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers (any status)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout_s} s")


def stop(process: subprocess.Popen, timeout_s: float = 10) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def web_server(env: dict[str, str], workers: int = 2, log_path: Path | None = None):
    """gunicorn on a free port; yields its base URL. With `log_path`, its output (the access log
    included, as in production) goes to that file."""
    port = free_port()
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed after the process)
    process = subprocess.Popen(
        [
            str(BIN / "gunicorn"),
            "-c",
            str(ROOT / "infra" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--access-logfile",
            "-" if log else "/dev/null",
            "webapp.wsgi:app",
        ],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=log,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(base + "/healthz", process=process)
        yield base
    finally:
        stop(process)
        if log:
            log.close()


@contextmanager
def rq_worker(env: dict[str, str], log_path: Path | None = None):
    """One `journeylens worker` process (its output to `log_path` when given)."""
    log = open(log_path, "ab") if log_path else None  # noqa: SIM115 (closed after the process)
    process = subprocess.Popen(
        [str(BIN / "journeylens"), "worker"],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=log,
        stderr=log,
    )
    try:
        yield process
    finally:
        stop(process)
        if log:
            log.close()
