"""The simulated users of the load test (issue 7): members of one organisation with a journey open.

Run by bench/load.py, which seeds the organisation, starts gunicorn and writes the plan this file reads
(LOAD_PLAN: accounts, journeys, ids). Not meant to be run on its own, but it can be, against a server
seeded by load.py (`locust -f bench/locustfile.py --host http://127.0.0.1:PORT` with LOAD_PLAN set).

Each user logs in through the real form with its own account, opens its journey, and then, at a steady
pace (`LOAD_RATE` tasks a second, 3.2 by default: about 2.2 partials a second, as an open map polls its
board, comments and inbox every 1.5 s and presence every 3 s), does what the open pages do and what
people do on them. The weights are per request: about 70% are htmx partials, as the browser sends them
(`HX-Request: true`, the CSRF token in `X-CSRFToken`), and 30% full pages:

- partials: the map's live poll `board?since=<marker>` (204 while nothing changed, the new board
  otherwise), presence, the comments poll, the inbox's unread-count poll, the event log's and the
  measurement's status fragments, the dashboard filtered (its body fragment), and step edits (1% of the
  requests: each editor saves a step about every 30 s, a busy workshop; the inline form's POST with the
  version it was based on; 409 is a conflict shown to the user, not an error);
- full pages: the journey map, the journeys list, the data-vs-story page, the dashboard, the goals list
  and a goal's page;
- every user logs in when it starts (all in the first seconds, the warm-up), then about one task in a
  thousand is a fresh login (a new browser: cookies dropped, the login page, the POST with argon2id at
  the production cost, ~150 ms of CPU): at 3.2 tasks/s each user logs in again every ~5 minutes, far
  more often than people do, and 50 users make ~10 logins a minute.

Every request is recorded (start time, name, milliseconds, outcome) and written to LOAD_RECORD at the
end, so load.py can cut the warm-up off and take percentiles per group. Request names start with the
group: `full:`, `partial:` or `login:`.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from pathlib import Path

from locust import FastHttpUser, constant_throughput, events, task
from locust.exception import StopUser

PLAN = (
    json.loads(Path(os.environ["LOAD_PLAN"]).read_text(encoding="utf-8")) if "LOAD_PLAN" in os.environ else {}
)
RATE = float(os.environ.get("LOAD_RATE", "3.2"))  # tasks per second per user
ACCOUNTS = itertools.count()

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
BOARD_SINCE = re.compile(r'id="board"[^>]*data-since="(\d+)"')
STEP = re.compile(r'id="step-(\d+)" data-step-id="\d+" data-version="(\d+)"')
COMMENTS_SINCE = re.compile(r"comments\?since=([^\"&]+)")
INBOX_SINCE = re.compile(r"inbox/unread\?since=(\d+)")
CHANNELS = ("web", "email", "phone", "chat", "self_service_portal", "other")

RECORDS: list[tuple[float, str, float, str, int]] = []  # (start, name, ms, "" or the error, status)


@events.request.add_listener
def _record(
    request_type, name, response_time, response_length, exception=None, start_time=None, response=None, **_
):
    started = start_time if start_time is not None else time.time() - response_time / 1000
    status = getattr(response, "status_code", 0) or 0
    error = "" if exception is None else str(exception)[:200]
    RECORDS.append((started, name, response_time, error, status))


@events.quitting.add_listener
def _write_records(environment, **_):
    path = os.environ.get("LOAD_RECORD")
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(RECORDS, out)


class Member(FastHttpUser):
    """One member in a browser, with one journey open (editors also edit its steps)."""

    wait_time = constant_throughput(RATE)
    # Redirects are never followed: a page that bounces to the login form is an error, not a 200.
    default_headers = {"Accept": "text/html"}

    def on_start(self) -> None:
        accounts = PLAN["accounts"]
        self.account = accounts[next(ACCOUNTS) % len(accounts)]
        self.slug = PLAN["slug"]
        self.base = f"/o/{self.slug}"
        self.journey_id = self.account["journey_id"]
        self.editor = self.account["role"] in ("owner", "admin", "editor")
        self.since = 0
        self.versions: dict[int, int] = {}
        self.comments_since: str | None = None
        self.inbox_since = 0
        self.csrf = ""
        self.login()
        self.open_journey()
        self.open_comments()

    # --- helpers ---------------------------------------------------------------------------------

    def _get(self, name: str, url: str, expect=(200,), hx: bool = False):
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf} if hx else None
        with self.client.get(
            url, name=name, headers=headers, allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code in expect:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")
            return response

    def _read_board(self, html: str) -> None:
        since = BOARD_SINCE.search(html)
        if since:
            self.since = int(since.group(1))
        self.versions = {int(step): int(version) for step, version in STEP.findall(html)}

    def _read_page(self, html: str) -> None:
        token = CSRF.search(html)
        if token:
            self.csrf = token.group(1)
        inbox = INBOX_SINCE.search(html)
        if inbox:
            self.inbox_since = int(inbox.group(1))

    def login(self) -> None:
        """A new browser: no cookies, the login page, the form (argon2id), the redirect home."""
        self.client.cookiejar.clear()
        page = self._get("login: GET /login", "/login")
        token = CSRF.search(page.text or "")
        if not token:
            raise StopUser()
        form = {"email": self.account["email"], "password": PLAN["password"], "csrf_token": token.group(1)}
        with self.client.post(
            "/login", data=form, name="login: POST /login", allow_redirects=False, catch_response=True
        ) as response:
            if response.status_code == 302:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")
                raise StopUser()

    def open_journey(self) -> None:
        page = self._get("full: journey page", f"{self.base}/journeys/{self.journey_id}")
        html = page.text or ""
        self._read_page(html)
        self._read_board(html)

    def open_comments(self) -> None:
        """What the journey page loads below the map (and then polls)."""
        url = f"{self.base}/journeys/{self.journey_id}/comments"
        answer = self._get("partial: comments (load)", url, hx=True)
        marker = COMMENTS_SINCE.search(answer.text or "")
        if marker:
            self.comments_since = marker.group(1)

    # --- partials (weights add up to 660 of 961) -------------------------------------------------

    @task(240)
    def board_poll(self) -> None:
        url = f"{self.base}/journeys/{self.journey_id}/board?since={self.since}"
        answer = self._get("partial: board poll", url, expect=(200, 204), hx=True)
        if answer.status_code == 200:
            self._read_board(answer.text or "")

    @task(120)
    def comments_poll(self) -> None:
        if self.comments_since is None:
            self.open_comments()
            return
        url = f"{self.base}/journeys/{self.journey_id}/comments?since={self.comments_since}"
        answer = self._get("partial: comments poll", url, expect=(200, 204), hx=True)
        if answer.status_code == 200:
            marker = COMMENTS_SINCE.search(answer.text or "")
            if marker:
                self.comments_since = marker.group(1)

    @task(120)
    def inbox_poll(self) -> None:
        url = f"{self.base}/inbox/unread?since={self.inbox_since}"
        answer = self._get("partial: inbox unread poll", url, expect=(200, 204), hx=True)
        if answer.status_code == 200:
            self._read_page(answer.text or "")

    @task(80)
    def presence(self) -> None:
        self._get("partial: presence", f"{self.base}/journeys/{self.journey_id}/presence", hx=True)

    @task(30)
    def eventlog_status(self) -> None:
        url = f"{self.base}/eventlogs/{PLAN['log_id']}/status"
        self._get("partial: event log status", url, expect=(200, 286), hx=True)

    @task(30)
    def measurement_status(self) -> None:
        journey_id, link_id = random.choice(PLAN["links"])
        url = f"{self.base}/journeys/{journey_id}/data/links/{link_id}/status"
        self._get("partial: measurement status", url, expect=(200, 286), hx=True)

    @task(30)
    def dashboard_filtered(self) -> None:
        kind = random.choice(("employee", "customer"))
        self._get("partial: dashboard filtered", f"{self.base}/dashboard?kind={kind}", hx=True)

    @task(10)
    def edit_step(self) -> None:
        """The inline Edit form of a step, with the version it was drawn with (viewers only look)."""
        if not self.editor or not self.versions:
            self.board_poll()
            return
        step_id = random.choice(list(self.versions))
        n = random.randrange(1000)
        form = {
            "expected_version": str(self.versions[step_id]),
            "moment_of_truth_present": "1",
            "name": f"Step edited under load ({n})",
            "description": "Edited by the load test.",
            "channel": CHANNELS[n % len(CHANNELS)],
            "touchpoint": "Service portal",
            "owner_team": "Service desk",
            "emotion": str(n % 7 - 3),
            "expected_duration_h": "0.5",
        }
        headers = {"HX-Request": "true", "X-CSRFToken": self.csrf}
        url = f"{self.base}/journeys/{self.journey_id}/steps/{step_id}"
        with self.client.post(
            url, data=form, headers=headers, name="partial: step edit", catch_response=True
        ) as response:
            if response.status_code == 200:
                response.success()
                for step, version in STEP.findall(response.text or ""):
                    self.versions[int(step)] = int(version)
            elif response.status_code == 409:  # someone saved it first: the conflict view, as designed
                response.success()
                self.versions.pop(step_id, None)
            else:
                response.failure(f"HTTP {response.status_code}")

    # --- full pages (300 of 961) -------------------------------------------------------------------

    @task(80)
    def journey_page(self) -> None:
        self.open_journey()

    @task(50)
    def journeys_list(self) -> None:
        self._read_page(self._get("full: journeys list", f"{self.base}/journeys").text or "")

    @task(50)
    def data_vs_story(self) -> None:
        journey_id, _ = random.choice(PLAN["links"])
        self._get("full: data vs story", f"{self.base}/journeys/{journey_id}/data")

    @task(60)
    def dashboard(self) -> None:
        self._read_page(self._get("full: dashboard", f"{self.base}/dashboard").text or "")

    @task(40)
    def goals_list(self) -> None:
        self._get("full: goals list", f"{self.base}/goals")

    @task(20)
    def goal_page(self) -> None:
        self._get("full: goal page", f"{self.base}/goals/{random.choice(PLAN['goals'])}")

    # --- a new login now and then (1 of 961) ------------------------------------------------------

    @task(1)
    def relogin(self) -> None:
        self.login()
        self.open_journey()
