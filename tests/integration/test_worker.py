"""A real RQ worker process: an invitation mail is queued by the web app and delivered by the worker
over SMTP to a local recorder; readiness reflects the database and Redis."""

from __future__ import annotations

import email
import email.policy
import os
import time

import pytest
import requests

from tests.servers import rq_worker, stack_env, web_server
from tests.support import PASSWORD, csrf_token


class Recorder:
    """An SMTP server on loopback that keeps what it receives (mail lies outside the system)."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's protocol)
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_recorder():
    from aiosmtpd.controller import Controller

    from webapp.embedded_redis import free_port

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield recorder, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def _session_for(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    token = csrf_token(browser.get(base + "/login").text)
    response = browser.post(base + "/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.ok and "/login" not in response.url
    return browser


def test_invitation_mail_is_sent_by_a_real_worker(app_config, tenant_a, smtp_recorder):
    recorder, smtp_url = smtp_recorder
    env = stack_env(app_config, SMTP_URL=smtp_url, PUBLIC_URL="https://journeylens.example")
    with web_server(env) as base, rq_worker(env):
        admin = _session_for(base, "admin@a.example")
        members = admin.get(f"{base}/o/{tenant_a.slug}/members").text
        response = admin.post(
            f"{base}/o/{tenant_a.slug}/invitations",
            data={"email": "new.colleague@a.example", "role": "editor", "csrf_token": csrf_token(members)},
        )
        assert response.status_code == 201
        assert "We are also emailing it" in response.text
        deadline = time.monotonic() + 30
        while not recorder.messages and time.monotonic() < deadline:
            time.sleep(0.2)
    assert recorder.messages, "the worker sent no mail within 30 s"
    message = recorder.messages[0]
    assert message.rcpt_tos == ["new.colleague@a.example"]
    parsed = email.message_from_bytes(message.content, policy=email.policy.default)
    assert parsed["Subject"] == "Join Alpha Services on Journeylens"
    body = parsed.get_content()
    assert "join Alpha Services on Journeylens as editor" in body
    assert f"https://journeylens.example/join/{tenant_a.slug}/" in body
    link = body.split("https://journeylens.example", 1)[1].split()[0]
    assert f'value="https://journeylens.example{link}"' in response.text  # the link the admin was shown


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="SCHED_IDLE is Linux's")
def test_the_worker_and_its_threads_yield_the_cpu_to_the_web(app_config, migrated):
    """Mining beside the web: the worker runs nicer and under SCHED_IDLE, so a page's thread that wakes
    takes a CPU from a mining thread at once (bench/RESULTS.md, Load, shows what it does to p95)."""
    import psutil

    env = stack_env(app_config, WORKER_NICE="10")
    with rq_worker(env) as worker:
        process = psutil.Process(worker.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            process.nice() == 10
            and os.sched_getscheduler(worker.pid) == os.SCHED_IDLE
            and process.num_threads() > 1
        ):
            time.sleep(0.2)
        threads = [thread.id for thread in process.threads()]
        assert process.nice() == 10
        assert len(threads) > 1, "the worker started no thread (reconciler, scheduler)"
        assert all(os.sched_getscheduler(tid) == os.SCHED_IDLE for tid in threads)


def test_readyz_reports_database_and_redis(app_config, migrated):
    env = stack_env(app_config)
    with web_server(env, workers=1) as base:
        ready = requests.get(base + "/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json() == {"database": "ok", "redis": "ok"}
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
    broken = stack_env(app_config, REDIS_URL="redis://127.0.0.1:1/0")
    with web_server(broken, workers=1) as base:
        not_ready = requests.get(base + "/readyz", timeout=10)
        assert not_ready.status_code == 503 and not_ready.json() == {"database": "ok", "redis": "unavailable"}
        assert requests.get(base + "/healthz", timeout=5).status_code == 200
