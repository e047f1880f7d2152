"""`journeylens up` (what `make run` starts): migrates, seeds, serves, works, and leaves no orphans."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time

import psutil
import requests

from tests.servers import BIN, ROOT
from tests.support import csrf_token
from webapp.embedded_redis import free_port


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:  # gone, or a zombie not yet reaped
        return []


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_up_runs_everything_and_ctrl_c_stops_everything():
    instance = tempfile.mkdtemp(prefix="journeylens-up-")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"}}
    env.update({"JOURNEYLENS_INSTANCE": instance, "PORT": str(port), "PYTHONUNBUFFERED": "1"})
    up = subprocess.Popen(
        [str(BIN / "journeylens"), "up"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = up.stdout.readline()
            output.append(line)
            if "demo login" in line or up.poll() is not None:
                break
        text = "".join(output)
        assert f"running at http://localhost:{port}/" in text, text
        assert "demo@journeylens.example / journeylens-demo" in text
        assert "embedded Redis" in text
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if requests.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        assert requests.get(base + "/readyz", timeout=5).json() == {"database": "ok", "redis": "ok"}
        browser = requests.Session()
        token = csrf_token(browser.get(base + "/login").text)
        home = browser.post(
            base + "/login",
            data={"email": "demo@journeylens.example", "password": "journeylens-demo", "csrf_token": token},
        )
        assert home.url.endswith("/o/demo-service-desk/") and "Demo Service Desk" in home.text
        assert os.path.exists(os.path.join(instance, "journeylens.db"))
        children = psutil.Process(up.pid).children(recursive=True)
        names = " ".join(" ".join(_cmdline(c)) for c in children)
        assert "gunicorn" in names and "worker" in names and "redis-server" in names
        # A killed worker is restarted.
        worker = next(c for c in children if _cmdline(c)[-1:] == ["worker"])
        worker.kill()
        restarted = False
        for _ in range(100):
            time.sleep(0.1)
            now = psutil.Process(up.pid).children(recursive=True)
            if any(_cmdline(c)[-1:] == ["worker"] and c.pid != worker.pid for c in now):
                restarted = True
                break
        assert restarted, "the worker was not restarted"
        children = psutil.Process(up.pid).children(recursive=True)
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(30)
    assert up.returncode == 0
    time.sleep(0.5)
    survivors = [c for c in children if _alive(c)]
    assert survivors == [], [" ".join(_cmdline(c)) for c in survivors]
    assert re.search(r"stopping", up.stdout.read() + "".join(output))
