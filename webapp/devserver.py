"""`journeylens up`: everything a local run needs, in one supervised process tree.

Migrates, seeds the demo organisation, starts an embedded Redis when REDIS_URL is not set, gunicorn
and one RQ worker (restarted when it dies), prints the URL and the demo login, and on Ctrl-C or
SIGTERM stops every process it started (each child leads its own process group, which is killed whole).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from webapp.config import INSTANCE_DIR, PROJECT_ROOT

WORKER_RESTART_DELAY_S = 2


class Supervisor:
    """Starts children in their own process groups and takes them all down together."""

    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(argv, env=env, start_new_session=True, cwd=PROJECT_ROOT)
        self.children[name] = process
        return process

    def adopt(self, name: str, process: subprocess.Popen) -> None:
        self.children[name] = process

    def stop_all(self, grace_s: float = 10.0) -> None:
        self.stopping = True
        for process in self.children.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process, signal.SIGKILL)  # also reaps grandchildren (gunicorn workers, work horses)
            process.wait()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def run(port: int, host: str = "127.0.0.1", web_workers: int = 2) -> int:
    """Run until interrupted; returns the exit status."""
    from webapp import embedded_redis

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    supervisor = Supervisor()

    def _stop(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if not env.get("REDIS_URL"):
            redis_process, env["REDIS_URL"] = embedded_redis.start(INSTANCE_DIR / "redis")
            supervisor.adopt("redis", redis_process)
            print(f"journeylens: embedded Redis at {env['REDIS_URL']}", flush=True)
        journeylens = _bin("journeylens")
        subprocess.run([journeylens, "db", "upgrade"], env=env, check=True, cwd=PROJECT_ROOT)
        subprocess.run([journeylens, "seed-demo"], env=env, check=True, cwd=PROJECT_ROOT)
        supervisor.start(
            "web",
            [
                _bin("gunicorn"),
                "-c",
                str(PROJECT_ROOT / "infra" / "gunicorn.conf.py"),
                "--bind",
                f"{host}:{port}",
                "--workers",
                str(web_workers),
                "webapp.wsgi:app",
            ],
            env,
        )
        supervisor.start("worker", [journeylens, "worker"], env)
        url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"  # noqa: S104
        print(
            f"\njourneylens: running at {url}\n"
            "journeylens: demo login demo@journeylens.example / journeylens-demo\n"
            "journeylens: Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            time.sleep(0.5)
            if supervisor.children["web"].poll() is not None:
                print("journeylens: the web server stopped; shutting down.", flush=True)
                return 1
            if supervisor.children["worker"].poll() is not None and not supervisor.stopping:
                print("journeylens: the worker died; restarting it.", flush=True)
                time.sleep(WORKER_RESTART_DELAY_S)
                supervisor.start("worker", [journeylens, "worker"], env)
    except KeyboardInterrupt:
        print("\njourneylens: stopping…", flush=True)
        return 0
    except subprocess.CalledProcessError as error:
        print(f"journeylens: {error.cmd[1:]} failed with {error.returncode}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop_all()
