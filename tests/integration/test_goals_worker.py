"""Goals measured by real processes: gunicorn and an RQ worker mine a log and measure the journey linked to
it; a goal on a measured KPI takes its first measurement at once, dated at the end of the log's period and
equal to the log's median case duration; a newer log, mined and measured by the worker, adds a second
automatic measurement and a recomputed status."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from tests.integration.test_eventlogs import _browser, _token, _upload, _wait
from tests.integration.test_overlay import JOURNEY, MAPPING, _measurements
from tests.integration.test_worker import Recorder
from tests.servers import rq_worker, stack_env, web_server
from tests.web.test_goals import FEBRUARY, JANUARY

TODAY = datetime.now(UTC).date()


@pytest.fixture
def stack(app_config, app):
    """gunicorn and one RQ worker on the suite's database and Redis, mailing to a local SMTP recorder."""
    from aiosmtpd.controller import Controller

    from webapp.embedded_redis import free_port

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp_url = f"smtp://127.0.0.1:{controller.port}"
    env = stack_env(app_config, SMTP_URL=smtp_url, PUBLIC_URL="https://journeylens.example")
    try:
        with web_server(env) as base, rq_worker(env) as worker:
            yield {"base": base, "env": env, "worker": worker, "mail": recorder}
    finally:
        controller.stop()


def _write(path: Path, events) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "activity", "time"])
        writer.writerows(events)
    return path


def _mined_log(base: str, token: str, path: Path, name: str) -> dict:
    log_id = _upload(
        base, token, path, name=name, case_column="case", activity_column="activity", timestamp_column="time"
    ).json()["id"]
    log = _wait(base, token, log_id)
    assert log["status"] == "finished", log
    return log


def _goal(base: str, headers: dict, goal_id: int) -> dict:
    response = requests.get(f"{base}/api/v1/goals/{goal_id}", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_goal_is_measured_by_the_worker_from_each_newly_mined_log(stack, tenant_a, app, tmp_path):
    base = stack["base"]
    token = _token(app, tenant_a)
    headers = {"Authorization": f"Bearer {token}"}
    january = _mined_log(base, token, _write(tmp_path / "january.csv", JANUARY), "January incidents")
    journey_id = requests.post(f"{base}/api/v1/journeys", json=JOURNEY, headers=headers, timeout=10).json()[
        "id"
    ]
    requests.put(
        f"{base}/api/v1/journeys/{journey_id}/mapping",
        json={"event_log": january["id"], "activities": MAPPING},
        headers=headers,
        timeout=10,
    ).raise_for_status()
    measured = _measurements(base, headers, journey_id, january["id"])

    created = requests.post(
        f"{base}/api/v1/goals",
        json={
            "title": "Resolve incidents within six hours",
            "journey_id": journey_id,
            "kpi": {"metric": "median_case_duration_s", "source": "event_log"},
            "direction": "lower",
            "target": 6 * 3600,
            "start": (TODAY - timedelta(days=30)).isoformat(),
            "due": (TODAY + timedelta(days=60)).isoformat(),
            "owner_email": "owner@a.example",
        },
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    goal_id = created.json()["id"]
    goal = _goal(base, headers, goal_id)
    january_median = january["summary"]["case_duration_s"]["median"]
    assert january_median == 11 * 3600
    assert goal["measurements"] == [
        {
            "at": measured["period"]["end"],
            "value": january_median,
            "source": "event_log",
            "event_log_id": january["id"],
            "note": "First measurement, taken when the goal was set.",
        }
    ]
    assert measured["period"]["end"] == "2026-01-08T23:00:00+00:00"  # the end of the log's period
    assert goal["baseline"] == goal["current"] == january_median
    assert goal["status"] == "off_track" and goal["progress"] == 0.0

    # A newer log is mined and linked; the worker measures the journey on it and records the goal.
    february = _mined_log(base, token, _write(tmp_path / "february.csv", FEBRUARY), "February incidents")
    requests.put(
        f"{base}/api/v1/journeys/{journey_id}/mapping",
        json={"event_log": february["id"], "activities": MAPPING},
        headers=headers,
        timeout=10,
    ).raise_for_status()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        goal = _goal(base, headers, goal_id)
        if len(goal["measurements"]) == 2:
            break
        time.sleep(0.3)
    february_median = february["summary"]["case_duration_s"]["median"]
    assert [(m["at"], m["value"], m["event_log_id"]) for m in goal["measurements"]] == [
        ("2026-01-08T23:00:00+00:00", january_median, january["id"]),
        ("2026-02-05T15:00:00+00:00", february_median, february["id"]),
    ]
    assert goal["current"] == february_median == 5.5 * 3600
    assert goal["status"] == "achieved" and goal["progress"] >= 1  # 11 h → 5.5 h against a 6 h target
    assert goal["watermelon"] and "Rework" in goal["watermelon"]  # February reopened a case

    # The goal page and the owner's inbox tell the story.
    owner = _browser(base, "owner@a.example")
    inbox = owner.get(f"{base}/o/{tenant_a.slug}/inbox", timeout=10).text
    assert "Goal status changed" in inbox and "achieved now (was off track)" in inbox
    page = owner.get(f"{base}/o/{tenant_a.slug}/goals/{goal_id}", timeout=10).text
    assert "Achieved" in page and "February incidents" in page and "Watermelon warning" in page

    # SMTP is configured: the owner (and the editor who set the goal) got the status change by mail.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(stack["mail"].messages) < 2:
        time.sleep(0.2)
    mails = {m.rcpt_tos[0]: m.content.decode() for m in stack["mail"].messages}
    assert set(mails) == {"owner@a.example", "editor@a.example"}
    assert "Subject: Goal status changed: Resolve incidents within six hours" in mails["owner@a.example"]
    assert f"https://journeylens.example/o/{tenant_a.slug}/goals/{goal_id}" in mails["owner@a.example"]
