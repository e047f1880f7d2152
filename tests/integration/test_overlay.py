"""Data vs story end to end with real processes: a log mined by a real RQ worker, a journey drawn via the
API, activities mapped with PUT .../mapping, the measurement computed by the worker and read back via
GET .../measurements and on the overlay page — every figure checked against an independent computation
written here from the issue's definitions."""

from __future__ import annotations

import csv
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from tests.integration.test_eventlogs import _browser, _token, _upload, _wait
from tests.servers import rq_worker, stack_env, web_server

# case, activity, time: hand-made so that every definition is exercised (see the comments).
EVENTS = [
    # c1 follows the map.
    ("c1", "Ticket logged", "2026-03-02T09:00:00"),
    ("c1", "Diagnosis", "2026-03-02T10:00:00"),
    ("c1", "Fix applied", "2026-03-02T12:00:00"),
    ("c1", "Closed", "2026-03-02T13:00:00"),
    # c2: an unmapped event between two diagnosis events does not split the visit (4 h visit).
    ("c2", "Ticket logged", "2026-03-02T09:00:00"),
    ("c2", "Diagnosis", "2026-03-02T11:00:00"),
    ("c2", "Escalated", "2026-03-02T12:00:00"),
    ("c2", "Diagnosis", "2026-03-02T15:00:00"),
    ("c2", "Fix applied", "2026-03-02T16:00:00"),
    ("c2", "Closed", "2026-03-02T17:00:00"),
    # c3 is reopened: back from "Close" to "Resolve" (rework on three steps; does not follow).
    ("c3", "Ticket logged", "2026-03-03T09:00:00"),
    ("c3", "Diagnosis", "2026-03-03T09:30:00"),
    ("c3", "Fix applied", "2026-03-03T10:00:00"),
    ("c3", "Closed", "2026-03-03T11:00:00"),
    ("c3", "Reopened", "2026-03-03T12:00:00"),
    ("c3", "Diagnosis", "2026-03-03T13:00:00"),
    ("c3", "Fix applied", "2026-03-03T14:00:00"),
    ("c3", "Closed", "2026-03-03T15:00:00"),
    # c4 has no mapped event at all.
    ("c4", "Escalated", "2026-03-04T09:00:00"),
    # c5 fixes before diagnosing: both in stage "Resolve", so it still follows; it skips nothing.
    ("c5", "Ticket logged", "2026-03-04T09:00:00"),
    ("c5", "Fix applied", "2026-03-04T09:10:00"),
    ("c5", "Diagnosis", "2026-03-04T09:40:00"),
    ("c5", "Closed", "2026-03-04T18:00:00"),
]

JOURNEY = {
    "title": "Incident to resolution",
    "kind": "employee",
    "state": "current",
    "status": "draft",
    "persona": None,
    "lanes": [{"name": "Actions"}, {"name": "Backstage"}],
    "stages": [
        {"name": "Report", "steps": [{"name": "Log ticket", "lane": "Actions"}]},
        {
            "name": "Resolve",
            "steps": [
                {"name": "Diagnose", "lane": "Backstage", "expected_duration_s": 1800, "emotion": 1},
                {"name": "Fix", "lane": "Backstage"},
            ],
        },
        {
            "name": "Close",
            "steps": [
                {"name": "Close ticket", "lane": "Actions"},
                {"name": "Satisfaction survey", "lane": "Actions"},
            ],
        },
    ],
}
MAPPING = {
    "Ticket logged": "Log ticket",
    "Diagnosis": "Diagnose",
    "Fix applied": "Fix",
    "Closed": "Close ticket",
}
STAGE_OF = {"Log ticket": 0, "Diagnose": 1, "Fix": 1, "Close ticket": 2, "Satisfaction survey": 2}


def _expected() -> dict:
    """The figures straight from the definitions, by loops over this small log."""
    by_case: dict[str, list[tuple[datetime, str]]] = {}
    for case, activity, ts in EVENTS:  # already in time order within each case
        by_case.setdefault(case, []).append((datetime.fromisoformat(ts), activity))
    steps = {
        name: {"cases": set(), "visits": 0, "per_case": {}, "visit_s": [], "wait_s": []} for name in STAGE_OF
    }
    transitions: dict[tuple[str, str], list[float]] = {}
    following = 0
    for case, events in by_case.items():
        visits = []  # [step, first index, last index]
        for i, (_, activity) in enumerate(events):
            step = MAPPING.get(activity)
            if step is None:
                continue
            if visits and visits[-1][0] == step:
                visits[-1][2] = i
            else:
                visits.append([step, i, i])
        for step, first, last in visits:
            s = steps[step]
            s["cases"].add(case)
            s["visits"] += 1
            s["per_case"][case] = s["per_case"].get(case, 0) + 1
            s["visit_s"].append((events[last][0] - events[first][0]).total_seconds())
            if first > 0:
                s["wait_s"].append((events[first][0] - events[first - 1][0]).total_seconds())
        for (a, _, a_last), (b, b_first, _) in zip(visits, visits[1:], strict=False):
            transitions.setdefault((a, b), []).append(
                (events[b_first][0] - events[a_last][0]).total_seconds()
            )
        stages = [STAGE_OF[v[0]] for v in visits]
        if visits and all(x <= y for x, y in zip(stages, stages[1:], strict=False)):
            following += 1
    median = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    return {
        "cases": len(by_case),
        "following": following,
        "steps": {
            name: {
                "cases_reached": len(s["cases"]),
                "visits": s["visits"],
                "rework_cases": sum(1 for n in s["per_case"].values() if n >= 2),
                "median_visit_s": median(s["visit_s"]),
                "median_wait_before_s": median(s["wait_s"]),
            }
            for name, s in steps.items()
        },
        "transitions": {pair: (len(v), median(v)) for pair, v in transitions.items()},
    }


@pytest.fixture
def stack(app_config, app):
    env = stack_env(app_config, MINING_HEARTBEAT_STALE_S="4", RECONCILE_EVERY_S="1")
    with web_server(env) as base, rq_worker(env) as worker:
        yield {"base": base, "env": env, "worker": worker}


def _write_log(path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["case", "activity", "time"])
        writer.writerows(EVENTS)
    return path


def _measurements(base, headers, journey_id, log_id, timeout_s=60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = requests.get(
            f"{base}/api/v1/journeys/{journey_id}/measurements?event_log={log_id}",
            headers=headers,
            timeout=10,
        )
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 409, response.text  # still being computed
        time.sleep(0.3)
    raise AssertionError(f"no measurement within {timeout_s} s: {response.text}")


def test_a_mapped_journey_is_measured_by_the_worker_exactly_as_defined(stack, tenant_a, app, tmp_path):
    base = stack["base"]
    token = _token(app, tenant_a)
    headers = {"Authorization": f"Bearer {token}"}
    upload = _upload(
        base,
        token,
        _write_log(tmp_path / "incidents.csv"),
        case_column="case",
        activity_column="activity",
        timestamp_column="time",
    )
    log_id = upload.json()["id"]
    assert _wait(base, token, log_id)["status"] == "finished"
    journey_id = requests.post(f"{base}/api/v1/journeys", json=JOURNEY, headers=headers, timeout=10).json()[
        "id"
    ]

    # Bad mappings are refused with a reason, and nothing is saved.
    bad = requests.put(
        f"{base}/api/v1/journeys/{journey_id}/mapping",
        json={"event_log": log_id, "activities": {"Diagnosis": "No such step"}},
        headers=headers,
        timeout=10,
    )
    assert bad.status_code == 422 and "no step named" in bad.json()["error"]["message"]
    unknown = requests.put(
        f"{base}/api/v1/journeys/{journey_id}/mapping",
        json={"event_log": log_id, "activities": {"Not an activity": "Fix"}},
        headers=headers,
        timeout=10,
    )
    assert unknown.status_code == 422 and "not an activity of this log" in unknown.json()["error"]["message"]

    saved = requests.put(
        f"{base}/api/v1/journeys/{journey_id}/mapping",
        json={"event_log": log_id, "activities": MAPPING},
        headers=headers,
        timeout=10,
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["version"] == 1 and {a: v["step"] for a, v in body["activities"].items()} == MAPPING
    assert set(body["unmapped_activities"]) == {"Escalated", "Reopened"}

    measured = _measurements(base, headers, journey_id, log_id)
    expected = _expected()
    assert measured["cases"] == expected["cases"] == 5
    assert measured["conformance"]["following"] == expected["following"] == 3
    assert measured["conformance"]["share"] == pytest.approx(3 / 5)
    names = {s["step_id"]: s["name"] for s in measured["steps"]}
    for step in measured["steps"]:
        want = expected["steps"][step["name"]]
        got = {k: step[k] for k in want}
        assert got == pytest.approx(want), step["name"]
    assert measured["steps"][1]["name"] == "Diagnose" and measured["steps"][1]["median_visit_s"] == 0.0
    got_transitions = {
        (names[t["from_step"]], names[t["to_step"]]): (t["frequency"], t["median_s"])
        for t in measured["transitions"]
    }
    assert got_transitions == expected["transitions"]
    assert {a["name"]: a["events"] for a in measured["unmapped_activities"]} == {
        "Escalated": 2,
        "Reopened": 1,
    }

    # The overlay page shows the figures on the map, the broken promise, ghosts, shadows and departures.
    viewer = _browser(base, "viewer@a.example")
    page = viewer.get(f"{base}/o/{tenant_a.slug}/journeys/{journey_id}/data", timeout=10)
    assert page.status_code == 200
    html = page.text
    assert "60%" in html and "3 of 5 cases" in html  # conformance
    assert "⚠ promised 30 min, measured 60 min" in html  # Diagnose: median wait 1 h, visit 0
    assert "Ghost step" in html and "Satisfaction survey" in html
    assert "Shadow activities" in html and "Escalated" in html
    assert "Add to map" not in html  # a viewer sees no edit controls
    assert "back" in html.lower() and "c3" in html  # c3 goes back to an earlier stage
    timeline = viewer.get(
        f"{base}/o/{tenant_a.slug}/journeys/{journey_id}/data/snapshots/{measured['snapshot']}/case",
        params={"case": "c3"},
        timeout=10,
    )
    assert timeline.status_code == 200 and "Reopened" in timeline.text and "not on the map" in timeline.text

    # Re-mining the log measures the journey again: a new snapshot with the same mapping version.
    editor = _browser(base, "editor@a.example")
    from tests.support import csrf_token

    log_page = editor.get(f"{base}/o/{tenant_a.slug}/eventlogs/{log_id}", timeout=10).text
    editor.post(
        f"{base}/o/{tenant_a.slug}/eventlogs/{log_id}/remine",
        data={"csrf_token": csrf_token(log_page)},
        timeout=10,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        again = _measurements(base, headers, journey_id, log_id)
        if again["snapshot"] != measured["snapshot"]:
            break
        time.sleep(0.3)
    assert again["snapshot"] != measured["snapshot"] and again["mapping_version"] == 1
    assert again["steps"] == measured["steps"]


def test_a_killed_measurement_is_re_driven_and_never_stays_running(app_config, app, tenant_a, tmp_path):
    """The reconciler treats measurements like mining runs: a stale one is queued again and finishes."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.overlay import MeasurementSnapshot

    env = stack_env(app_config, MINING_HEARTBEAT_STALE_S="2", RECONCILE_EVERY_S="1")
    with web_server(env) as base, rq_worker(env):
        token = _token(app, tenant_a)
        headers = {"Authorization": f"Bearer {token}"}
        log_id = _upload(
            base,
            token,
            _write_log(tmp_path / "l.csv"),
            case_column="case",
            activity_column="activity",
            timestamp_column="time",
        ).json()["id"]
        _wait(base, token, log_id)
        journey_id = requests.post(
            f"{base}/api/v1/journeys", json=JOURNEY, headers=headers, timeout=10
        ).json()["id"]
        requests.put(
            f"{base}/api/v1/journeys/{journey_id}/mapping",
            json={"event_log": log_id, "activities": MAPPING},
            headers=headers,
            timeout=10,
        ).raise_for_status()
        first = _measurements(base, headers, journey_id, log_id)
        # Pretend the worker measuring the snapshot died an hour ago, mid-job.
        with app.app_context():
            tenancy.activate(tenant_a.organisation_id)
            snapshot = db.session.get(MeasurementSnapshot, first["snapshot"])
            snapshot.status, snapshot.attempt = "running", 1
            snapshot.heartbeat_at = datetime(2026, 1, 1, tzinfo=UTC)
            db.session.commit()
            db.session.remove()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with app.app_context():
                tenancy.activate(tenant_a.organisation_id)
                status = db.session.get(MeasurementSnapshot, first["snapshot"]).status
                db.session.remove()
            if status == "finished":
                break
            time.sleep(0.3)
        assert status == "finished"
        assert _measurements(base, headers, journey_id, log_id)["steps"] == first["steps"]


def test_a_journey_is_drafted_from_a_mined_log_by_the_worker(stack, tenant_a, app, tmp_path):
    from tests.support import csrf_token
    from worker.mining.synthetic import generate_incident_log, write_csv

    base = stack["base"]
    token = _token(app, tenant_a)
    path = write_csv(generate_incident_log(300, seed=3), tmp_path / "incidents.csv")
    log_id = _upload(
        base,
        token,
        path,
        case_column="Number",
        activity_column="Status",
        timestamp_column="sys_updated_on",
        resource_column="Assigned to",
    ).json()["id"]
    assert _wait(base, token, log_id)["status"] == "finished"
    editor = _browser(base, "editor@a.example")
    log_page = editor.get(f"{base}/o/{tenant_a.slug}/eventlogs/{log_id}", timeout=10).text
    assert "Draft a journey from this log" in log_page
    started = editor.post(
        f"{base}/o/{tenant_a.slug}/eventlogs/{log_id}/draft-journey",
        data={"title": "Incidents as they really go", "csrf_token": csrf_token(log_page)},
        allow_redirects=False,
        timeout=10,
    )
    status_url = base + started.headers["Location"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = editor.get(status_url, allow_redirects=False, timeout=10)
        if answer.status_code == 302:
            break
        assert "Drafting" in answer.text or "Waiting for a worker" in answer.text
        time.sleep(0.3)
    journey_url = answer.headers["Location"]
    journey_id = int(journey_url.rstrip("/").rsplit("/", 1)[1])
    drafted = requests.get(
        f"{base}/api/v1/journeys/{journey_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert drafted["title"] == "Incidents as they really go"
    steps = [step["name"] for stage in drafted["stages"] for step in stage["steps"]]
    assert 4 <= len(drafted["stages"]) <= 7 and "Logged" in steps[:2] and "Close" in steps
    assert {step["lane"] for stage in drafted["stages"] for step in stage["steps"]} >= {
        "Actions",
        "Backstage",
    }
    # Another organisation's member cannot see this draft's job.
    other = editor.get(status_url.replace(f"/o/{tenant_a.slug}/", "/o/no-such-org/"), timeout=10)
    assert other.status_code == 404
