"""Browser tests: a real gunicorn + RQ worker on the suite's database and Redis, driven by a real Chromium.

Playwright cannot download browsers here, so it drives Debian's Chromium (`make browser`), or the one named
by CHROMIUM_PATH. On a failure, every page the test opened is saved under tests/artifacts/ (screenshot and
HTML) for whoever has to find out why.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redis import Redis

from tests import support
from tests.servers import rq_worker, stack_env, web_server

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}

# Runs in every page before its own scripts: records CSP violations where the test can read them.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push(event.violatedDirective + " blocked " + (event.blockedURI || "inline"));
});
"""


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"no Chromium at {path}: install Debian's chromium (`make browser`) or set CHROMIUM_PATH")
    return path


# ---------------------------------------------------------------------------------------------------------
# The running stack
# ---------------------------------------------------------------------------------------------------------


class MailRecorder:
    """An SMTP server on loopback standing in for the outside world's mail servers."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's protocol)
        self.messages.append(envelope)
        return "250 OK"

    def wait_for(self, recipient: str, timeout_s: float = 30):
        """The first message to `recipient`, waiting for the worker to deliver it."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for message in self.messages:
                if recipient in message.rcpt_tos:
                    return message
            time.sleep(0.2)
        raise AssertionError(f"no mail to {recipient} within {timeout_s} s")


@dataclass
class Stack:
    base_url: str
    mail: MailRecorder

    def url(self, path: str) -> str:
        return self.base_url + path


@pytest.fixture(scope="module")
def stack(app_config, migrated, redis_url):
    """gunicorn (2 workers) and one RQ worker over an emptied database and Redis, mail to a recorder."""
    from aiosmtpd.controller import Controller

    from webapp.embedded_redis import free_port

    support.empty_database(app_config)
    Redis.from_url(redis_url).flushdb()  # also the rate limiter's counters
    recorder = MailRecorder()
    smtp = Controller(recorder, hostname="127.0.0.1", port=free_port())
    smtp.start()
    env = stack_env(app_config, SMTP_URL=f"smtp://127.0.0.1:{smtp.port}")
    try:
        with web_server(env, workers=2) as base, rq_worker(env):
            yield Stack(base, recorder)
    finally:
        smtp.stop()


# ---------------------------------------------------------------------------------------------------------
# The browser
# ---------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@dataclass
class BrowserProblems:
    """What a user's browser complained about: console errors, uncaught exceptions."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


@pytest.fixture
def new_person(browser, request):
    """Factory: a new person at their own browser (own cookies); returns their first page.

    Each page gets `page.problems` (BrowserProblems) and CSP violations recorded in window.__cspViolations.
    On test failure every page is saved to tests/artifacts/.
    """
    contexts = []

    def make(name: str = "person"):
        context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(10_000)
        context.set_default_navigation_timeout(15_000)
        context.add_init_script(WATCH_CSP)
        contexts.append((name, context))
        page = context.new_page()
        page.problems = BrowserProblems()
        page.on("console", lambda m: m.type == "error" and page.problems.console_errors.append(_describe(m)))
        page.on("pageerror", lambda error: page.problems.page_errors.append(str(error)))
        return page

    yield make

    report = getattr(request.node, "rep_call", None) or getattr(request.node, "rep_setup", None)
    failed = report is not None and report.failed
    for name, context in contexts:
        if failed:
            _save_artifacts(request.node.nodeid, name, context)
        context.close()


@pytest.fixture
def page(new_person):
    """The test's main user at their browser."""
    return new_person("user")


def _describe(message) -> str:
    location = message.location or {}
    return f"{message.text} ({location.get('url', '?')}:{location.get('lineNumber', '?')})"


def _save_artifacts(nodeid: str, name: str, context) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid.split("::")[-1])
    for index, open_page in enumerate(context.pages):
        target = ARTIFACTS / f"{stem}-{name}-{index}"
        try:
            open_page.screenshot(path=f"{target}.png", full_page=True)
            target.with_suffix(".html").write_text(
                f"<!-- {open_page.url} -->\n{open_page.content()}", encoding="utf-8"
            )
        except Exception as error:  # a crashed page must not hide the test's own failure
            target.with_suffix(".txt").write_text(f"could not save {open_page.url}: {error}\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item so fixtures can tell, at teardown, whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
