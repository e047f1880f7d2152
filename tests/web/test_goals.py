"""Improvement goals through the app: the status rule at its boundaries, KPI validation, automatic
measurements from measured logs, surveys and by hand (API, 409 for automatic KPIs), check-ins and their
overdue flag, initiatives with before/after, watermelon warnings, notifications, audit and GoalEvent rows,
tolerances, permissions and escaping. Logs are mined and journeys measured in-process here; the real
worker path is tests/integration/test_goals_worker.py."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.integration.test_overlay import MAPPING
from tests.support import csrf_token, login
from tests.web.test_overlay_web import _csv, _journey, _measure_pending, _mine

# January: four cases in order, no rework; case durations 8, 10, 12 and 14 h (median 11 h); the wait
# before "Diagnose" and before "Fix" is 1 h in every case.
JANUARY = [
    (case, activity, f"2026-01-0{day}T{hour}")
    for case, day, close in (("j1", 5, "17"), ("j2", 6, "19"), ("j3", 7, "21"), ("j4", 8, "23"))
    for activity, hour in (
        ("Ticket logged", "09:00:00"),
        ("Diagnosis", "10:00:00"),
        ("Fix applied", "11:00:00"),
        ("Closed", f"{close}:00:00"),
    )
]
# February: faster (4, 6.5, 5 and 6 h: median 5.5 h) and a shorter wait before "Diagnose" (30 min), but
# f2 is reopened (rework in a quarter of the cases) and the wait before "Fix" grew to 2.5 h.
FEBRUARY = [
    ("f1", "Ticket logged", "2026-02-02T09:00:00"),
    ("f1", "Diagnosis", "2026-02-02T09:30:00"),
    ("f1", "Fix applied", "2026-02-02T12:00:00"),
    ("f1", "Closed", "2026-02-02T13:00:00"),
    ("f2", "Ticket logged", "2026-02-03T09:00:00"),
    ("f2", "Diagnosis", "2026-02-03T09:30:00"),
    ("f2", "Fix applied", "2026-02-03T12:00:00"),
    ("f2", "Closed", "2026-02-03T13:00:00"),
    ("f2", "Reopened", "2026-02-03T13:30:00"),
    ("f2", "Diagnosis", "2026-02-03T14:00:00"),
    ("f2", "Fix applied", "2026-02-03T15:00:00"),
    ("f2", "Closed", "2026-02-03T15:30:00"),
    ("f3", "Ticket logged", "2026-02-04T09:00:00"),
    ("f3", "Diagnosis", "2026-02-04T09:30:00"),
    ("f3", "Fix applied", "2026-02-04T12:00:00"),
    ("f3", "Closed", "2026-02-04T14:00:00"),
    ("f4", "Ticket logged", "2026-02-05T09:00:00"),
    ("f4", "Diagnosis", "2026-02-05T09:30:00"),
    ("f4", "Fix applied", "2026-02-05T12:00:00"),
    ("f4", "Closed", "2026-02-05T15:00:00"),
]
JANUARY_END = datetime(2026, 1, 8, 23, tzinfo=UTC)
FEBRUARY_END = datetime(2026, 2, 5, 15, tzinfo=UTC)
HOUR = 3600.0
TODAY = datetime.now(UTC).date()


# --- helpers -----------------------------------------------------------------------------------------


def _in_org(app, tenant):
    """An app context scoped to the tenant (use with `with`)."""
    from contextlib import contextmanager

    from webapp import tenancy
    from webapp.extensions import db

    @contextmanager
    def scope():
        with app.test_request_context():
            tenancy.activate(tenant.organisation_id)
            try:
                yield db
            finally:
                db.session.remove()

    return scope()


def _user_id(app, tenant, role: str) -> int:
    from webapp.models import User

    with _in_org(app, tenant) as db:
        return db.session.scalar(sa.select(User.id).where(User.email == tenant.emails[role]))


def _link_and_measure(app, tenant, journey_id: int, log_id: int) -> None:
    """Link a mined log to the journey with MAPPING and measure it in-process (the hook records goals)."""
    from webapp.models import User
    from webapp.services import Actor
    from webapp.services import overlay as overlay_service

    with _in_org(app, tenant) as db:
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        link = overlay_service.link_log(journey_id, log_id, Actor(owner.id))
        overlay_service.save_mapping(journey_id, link.id, MAPPING, Actor(owner.id))
    _measure_pending(app, tenant)


def _step_id(app, tenant, journey_id: int, name: str) -> int:
    from webapp.models import Step

    with _in_org(app, tenant) as db:
        return db.session.scalar(sa.select(Step.id).where(Step.journey_id == journey_id, Step.name == name))


def _token(app, tenant, role: str = "editor") -> dict[str, str]:
    from tests.integration.test_eventlogs import _token as issue

    return {"Authorization": f"Bearer {issue(app, tenant, tenant.emails[role])}"}


def _goal_body(journey_id: int, **overrides) -> dict:
    body = {
        "title": "Resolve incidents faster",
        "journey_id": journey_id,
        "kpi": {"metric": "median_case_duration_s", "source": "event_log"},
        "direction": "lower",
        "target": 5 * HOUR,
        "start": (TODAY - timedelta(days=30)).isoformat(),
        "due": (TODAY + timedelta(days=60)).isoformat(),
        "owner_email": "owner@a.example",
    }
    body.update(overrides)
    return body


def _edit_form(app, tenant, **fields) -> dict:
    """The goal edit form as a browser posts it, for the manual goal of `_manual_goal`."""
    return {
        "title": "First-call resolution",
        "owner_id": str(_user_id(app, tenant, "owner")),
        "kpi_unit": "%",
        "direction": "higher",
        "baseline": "50",
        "target": "70",
        "start_on": (TODAY - timedelta(days=50)).isoformat(),
        "due_on": (TODAY + timedelta(days=50)).isoformat(),
        "review_every_days": "14",
    } | fields


def _manual_goal(client, headers, journey_id: int, **overrides) -> int:
    body = _goal_body(
        journey_id,
        title="First-call resolution",
        kpi={"metric": "First-call resolution", "source": "manual", "unit": "%"},
        direction="higher",
        baseline=50,
        target=80,
        start=(TODAY - timedelta(days=50)).isoformat(),
        due=(TODAY + timedelta(days=50)).isoformat(),
    )
    body.update(overrides)
    response = client.post("/api/v1/goals", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


@pytest.fixture
def two_months(app, tenant_a):
    """A journey measured on a January log and on a newer February log (faster, but more rework)."""
    january = _mine(app, tenant_a, _csv(JANUARY), "January incidents")
    february = _mine(app, tenant_a, _csv(FEBRUARY), "February incidents")
    journey_id = _journey(app, tenant_a)
    _link_and_measure(app, tenant_a, journey_id, january)
    _link_and_measure(app, tenant_a, journey_id, february)
    return {"journey_id": journey_id, "january": january, "february": february}


# --- the status rule ---------------------------------------------------------------------------------

START, DUE = date(2026, 1, 1), date(2026, 1, 11)  # ten days; on 2026-01-06 half the time has passed
MIDWAY = date(2026, 1, 6)


@pytest.mark.parametrize(
    ("current", "today", "status", "progress"),
    [
        (None, MIDWAY, "no_data", None),
        (75.0, MIDWAY, "on_track", 0.5),  # progress = expected
        (80.0, MIDWAY, "on_track", 0.4),  # exactly expected − 0.10: still on track
        (80.5, MIDWAY, "at_risk", 0.39),  # just below
        (90.0, MIDWAY, "at_risk", 0.2),  # exactly expected − 0.30: still at risk
        (90.5, MIDWAY, "off_track", 0.19),  # just below
        (110.0, MIDWAY, "off_track", -0.2),  # worse than the baseline
        (50.0, MIDWAY, "achieved", 1.0),  # progress = 1
        (40.0, MIDWAY, "achieved", 1.2),  # beyond the target
        (60.0, DUE, "at_risk", 0.8),  # on the due date itself: expected 1, not missed yet
        (60.0, DUE + timedelta(days=1), "missed", 0.8),  # after it, without achieving
        (50.0, DUE + timedelta(days=1), "achieved", 1.0),  # achieved stays achieved after the due date
        (100.0, START, "on_track", 0.0),  # day one: expected 0
    ],
)
def test_the_status_rule_at_its_boundaries(current, today, status, progress):
    from webapp.services.goals import compute_status

    result = compute_status(
        baseline=100.0,
        target=50.0,
        current=current,
        direction="lower",
        start_on=START,
        due_on=DUE,
        today=today,
    )
    assert result.status == status
    if progress is None:
        assert result.progress is None
    else:
        assert result.progress == pytest.approx(progress)


def test_expected_progress_is_the_share_of_time_passed_clamped():
    from webapp.services.goals import expected_share

    assert expected_share(START, DUE, START - timedelta(days=3)) == 0.0
    assert expected_share(START, DUE, MIDWAY) == pytest.approx(0.5)
    assert expected_share(START, DUE, DUE) == 1.0
    assert expected_share(START, DUE, DUE + timedelta(days=30)) == 1.0
    assert expected_share(START, START, START) == 1.0  # a one-day goal


def test_the_tolerances_move_the_boundaries_and_higher_is_better_works_alike():
    from webapp.services.goals import Tolerances, compute_status

    def status(current, tolerances=None):
        return compute_status(
            baseline=20.0,
            target=60.0,
            current=current,
            direction="higher",
            start_on=START,
            due_on=DUE,
            today=MIDWAY,
            tolerances=tolerances or Tolerances(),
        ).status

    assert status(40.0) == "on_track"  # progress 0.5
    assert status(36.0) == "on_track"  # 0.4
    strict = Tolerances(on_track=0.05, at_risk=0.15)
    assert status(38.0, strict) == "on_track"  # 0.45 = 0.5 − 0.05
    assert status(37.6, strict) == "at_risk"  # 0.44
    assert status(34.0, strict) == "at_risk"  # 0.35 = 0.5 − 0.15
    assert status(33.6, strict) == "off_track"  # 0.34
    assert status(60.0, strict) == "achieved"


def test_a_baseline_that_already_meets_the_target_is_refused(app, tenant_a, client):
    journey_id = _journey(app, tenant_a)
    headers = _token(app, tenant_a)
    body = _goal_body(journey_id, kpi={"metric": "x", "source": "manual"}, baseline=4 * HOUR)
    refused = client.post("/api/v1/goals", json=body, headers=headers)
    assert refused.status_code == 422
    assert "already meets the target" in refused.get_json()["error"]["message"]


# --- KPI validation ---------------------------------------------------------------------------------


def test_kpis_are_validated_with_clear_messages(app, tenant_a, client):
    journey_id = _journey(app, tenant_a)
    other_journey = _journey(app, tenant_a)
    diagnose = _step_id(app, tenant_a, journey_id, "Diagnose")
    elsewhere = _step_id(app, tenant_a, other_journey, "Diagnose")
    headers = _token(app, tenant_a)

    def refused(expected: str, **overrides) -> None:
        body = {**_goal_body(journey_id), **overrides}
        response = client.post("/api/v1/goals", json=body, headers=headers)
        assert response.status_code == 422, response.get_json()
        assert expected in response.get_json()["error"]["message"]

    refused("measured per step: choose a step", kpi={"metric": "median_wait_before_s", "source": "event_log"})
    refused("covers the whole journey", step_id=diagnose)
    refused("is not a step of", step_id=elsewhere, kpi={"metric": "median_visit_s", "source": "event_log"})
    refused("not a measured KPI", kpi={"metric": "reopen_rate", "source": "event_log"})
    refused("not a survey score", kpi={"metric": "median_visit_s", "source": "survey"}, step_id=diagnose)
    refused("choose the step whose scores count", kpi={"metric": "csat", "source": "survey"})
    refused("Name the manual KPI", kpi={"metric": "", "source": "manual"})
    refused("source is event_log, survey or manual", kpi={"metric": "nps", "source": "crm"})
    refused("not an editor, admin or owner", owner_email="viewer@a.example")
    refused("not an editor, admin or owner", owner_email="owner@b.example")
    refused("due date cannot be before the start", start="2026-06-01", due="2026-05-01")
    refused("lower", direction="sideways")
    refused("target equals the baseline", baseline=5 * HOUR)
    refused("must be below the baseline", baseline=4 * HOUR, kpi={"metric": "x", "source": "manual"})
    refused("Choose the journey", journey_id=999999)
    refused("Unknown fields: colour", colour="green")
    refused("must be a date", start="next monday")
    # Nothing of the refused goals was kept.
    assert client.get("/api/v1/goals", headers=headers).get_json() == {"goals": []}


def test_the_goal_form_shows_the_service_refusal_next_to_its_field(app, tenant_a, client):
    journey_id = _journey(app, tenant_a)
    login(client, tenant_a.emails["editor"])
    page = client.get(f"/o/{tenant_a.slug}/goals/new?journey={journey_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Median wait before the step" in html and "NPS" in html and "Diagnose" in html
    form = {
        "csrf_token": csrf_token(html),
        "title": "Shorter waits",
        "owner_id": str(_user_id(app, tenant_a, "editor")),
        "journey_id": str(journey_id),
        "step_id": "",
        "kpi": "event_log:median_wait_before_s",
        "direction": "lower",
        "target": "1800",
        "start_on": "2026-01-01",
        "due_on": "2026-12-31",
        "review_every_days": "14",
    }
    response = client.post(f"/o/{tenant_a.slug}/goals/new", data=form)
    assert response.status_code == 422
    assert "measured per step: choose a step of the journey" in response.get_data(as_text=True)
    form["step_id"] = str(_step_id(app, tenant_a, journey_id, "Diagnose"))
    created = client.post(f"/o/{tenant_a.slug}/goals/new", data=form)
    assert created.status_code == 302
    goal_page = client.get(created.headers["Location"]).get_data(as_text=True)
    assert "Shorter waits" in goal_page and "No measurement yet" in goal_page


# --- automatic measurements -------------------------------------------------------------------------


def test_a_measured_kpi_takes_its_first_measurement_and_baseline_from_the_latest_log(
    app, tenant_a, client, two_months
):
    from webapp.models import LogSummary, MiningRun

    journey_id = two_months["journey_id"]
    headers = _token(app, tenant_a)
    created = client.post("/api/v1/goals", json=_goal_body(journey_id, target=4 * HOUR), headers=headers)
    assert created.status_code == 201, created.get_json()
    goal = client.get(f"/api/v1/goals/{created.get_json()['id']}", headers=headers).get_json()
    with _in_org(app, tenant_a) as db:
        median = db.session.scalar(
            sa.select(LogSummary.case_duration_median_s)
            .join(MiningRun, MiningRun.id == LogSummary.run_id)
            .where(MiningRun.event_log_id == two_months["february"])
        )
    assert median == 5.5 * HOUR
    assert goal["measurements"] == [
        {
            "at": FEBRUARY_END.isoformat(),
            "value": median,
            "source": "event_log",
            "event_log_id": two_months["february"],
            "note": "First measurement, taken when the goal was set.",
        }
    ]
    assert goal["baseline"] == goal["current"] == median
    assert goal["progress"] == 0.0 and goal["status"] == "off_track"  # 0 < a third of the time − 0.30
    assert goal["expected"] == pytest.approx(30 / 90)

    # Step KPIs: shares of the snapshot's cases and of the step's cases.
    diagnose = _step_id(app, tenant_a, journey_id, "Diagnose")
    for metric, value in (("cases_reached_share", 1.0), ("rework_cases_share", 0.25)):
        body = _goal_body(
            journey_id, step_id=diagnose, kpi={"metric": metric, "source": "event_log"}, target=0.0
        )
        if metric == "cases_reached_share":
            body.update(direction="higher", target=2.0, baseline=0.5)
        answer = client.post("/api/v1/goals", json=body, headers=headers)
        assert answer.status_code == 201, answer.get_json()
        measured = client.get(f"/api/v1/goals/{answer.get_json()['id']}", headers=headers).get_json()
        assert measured["current"] == pytest.approx(value), metric


def test_a_newer_log_adds_a_measurement_once_and_recomputes_the_status(app, tenant_a, client):
    from webapp.models import Goal, GoalEvent, GoalMeasurement, MeasurementSnapshot
    from webapp.services import goals

    january = _mine(app, tenant_a, _csv(JANUARY), "January incidents")
    journey_id = _journey(app, tenant_a)
    _link_and_measure(app, tenant_a, journey_id, january)
    headers = _token(app, tenant_a)
    goal_id = client.post(
        "/api/v1/goals", json=_goal_body(journey_id, target=6 * HOUR), headers=headers
    ).get_json()["id"]
    first = client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()
    assert first["baseline"] == 11 * HOUR and first["status"] == "off_track"  # 0 after a third of the time

    february = _mine(app, tenant_a, _csv(FEBRUARY), "February incidents")
    _link_and_measure(app, tenant_a, journey_id, february)
    after = client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()
    assert [(m["at"], m["value"], m["event_log_id"]) for m in after["measurements"]] == [
        (JANUARY_END.isoformat(), 11 * HOUR, january),
        (FEBRUARY_END.isoformat(), 5.5 * HOUR, february),
    ]
    assert after["current"] == 5.5 * HOUR and after["status"] == "achieved"

    # The hook running again for the same snapshot records nothing more.
    with _in_org(app, tenant_a) as db:
        snapshot_id = db.session.scalar(
            sa.select(sa.func.max(MeasurementSnapshot.id)).where(MeasurementSnapshot.event_log_id == february)
        )
        goals.record_from_snapshot(snapshot_id)
        assert db.session.scalar(sa.select(sa.func.count(GoalMeasurement.id))) == 2
        events = db.session.execute(
            sa.select(GoalEvent.kind, GoalEvent.summary)
            .where(GoalEvent.goal_id == goal_id)
            .order_by(GoalEvent.id)
        ).all()
        assert [kind for kind, _ in events] == [
            "created",
            "measurement",
            "status_change",
            "measurement",
            "status_change",
            "updated",  # achieved, but February has rework: a watermelon
        ]
        assert events[-1].summary.startswith("Watermelon warning: Rework (reopened or repeated work) rose")
        assert db.session.get(Goal, goal_id).status_changed_at is not None


def test_survey_kpis_are_measured_from_imported_scores(app, tenant_a, client):
    from webapp.models import User
    from webapp.services import Actor, surveys

    journey_id = _journey(app, tenant_a)
    with _in_org(app, tenant_a) as db:
        owner = db.session.scalar(sa.select(User).where(User.email == "owner@a.example"))
        surveys.import_csv(
            journey_id,
            b"step,date,metric,value\nClose ticket,2026-03-01,csat,3.0\nClose ticket,2026-03-01,csat,4.0\n",
            "march.csv",
            Actor(owner.id),
        )
    headers = _token(app, tenant_a)
    close = _step_id(app, tenant_a, journey_id, "Close ticket")
    body = _goal_body(
        journey_id, step_id=close, kpi={"metric": "csat", "source": "survey"}, direction="higher", target=4.5
    )
    goal_id = client.post("/api/v1/goals", json=body, headers=headers).get_json()["id"]
    goal = client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()
    assert goal["baseline"] == goal["current"] == 3.5
    assert [m["source"] for m in goal["measurements"]] == ["survey"]
    refused = client.post(
        f"/api/v1/goals/{goal_id}/measurements", json={"at": "2026-03-02", "value": 4}, headers=headers
    )
    assert refused.status_code == 409 and "imported survey scores" in refused.get_json()["error"]["message"]

    with _in_org(app, tenant_a) as db:
        owner = db.session.scalar(sa.select(User).where(User.email == "owner@a.example"))
        surveys.import_csv(
            journey_id,
            b"step,date,metric,value\nClose ticket,2026-03-08,csat,4.5\n",
            "week2.csv",
            Actor(owner.id),
        )
    goal = client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()
    assert [(m["at"][:10], m["value"]) for m in goal["measurements"]] == [
        ("2026-03-01", 3.5),
        ("2026-03-08", 4.5),
    ]
    assert goal["status"] == "achieved"


# --- manual measurements via the API ------------------------------------------------------------------


def test_manual_measurements_via_the_api(app, tenant_a, client, two_months):
    journey_id = two_months["journey_id"]
    editor = _token(app, tenant_a)
    goal_id = _manual_goal(client, editor, journey_id)
    fresh = client.get(f"/api/v1/goals/{goal_id}", headers=editor).get_json()
    assert fresh["status"] == "no_data" and fresh["measurements"] == [] and fresh["kpi"]["unit"] == "%"

    added = client.post(
        f"/api/v1/goals/{goal_id}/measurements",
        json={"at": (TODAY - timedelta(days=1)).isoformat(), "value": 65, "note": "From the phone system"},
        headers=editor,
    )
    assert added.status_code == 201, added.get_json()
    goal = added.get_json()
    assert goal["current"] == 65 and goal["progress"] == pytest.approx(0.5)
    assert goal["expected"] == pytest.approx(0.5) and goal["status"] == "on_track"
    assert goal["measurements"][0]["source"] == "manual"
    assert goal["measurements"][0]["note"] == "From the phone system"
    assert added.headers["Location"].endswith(f"/api/v1/goals/{goal_id}")

    for body, message in (
        ({"value": 3}, "Send"),
        ({"at": "yesterday", "value": 3}, "is not a date or time"),
        ({"at": "2026-01-01", "value": "high"}, "is a number"),
        ({"at": (TODAY + timedelta(days=3)).isoformat(), "value": 3}, "cannot be in the future"),
    ):
        refused = client.post(f"/api/v1/goals/{goal_id}/measurements", json=body, headers=editor)
        assert refused.status_code == 422 and message in refused.get_json()["error"]["message"], body

    viewer = _token(app, tenant_a, "viewer")
    assert (
        client.post(
            f"/api/v1/goals/{goal_id}/measurements", json={"at": "2026-01-01", "value": 1}, headers=viewer
        ).status_code
        == 403
    )
    assert client.get(f"/api/v1/goals/{goal_id}", headers=viewer).status_code == 200
    assert client.post("/api/v1/goals", json=_goal_body(journey_id), headers=viewer).status_code == 403

    automatic = client.post("/api/v1/goals", json=_goal_body(journey_id, target=4 * HOUR), headers=editor)
    conflict = client.post(
        f"/api/v1/goals/{automatic.get_json()['id']}/measurements",
        json={"at": "2026-01-01", "value": 1},
        headers=editor,
    )
    assert conflict.status_code == 409
    assert conflict.get_json()["error"]["code"] == "measured_automatically"
    assert "measured automatically from linked event logs" in conflict.get_json()["error"]["message"]

    listing = client.get("/api/v1/goals?status=on_track", headers=editor).get_json()["goals"]
    assert [g["id"] for g in listing] == [goal_id]
    assert len(client.get("/api/v1/goals", headers=editor).get_json()["goals"]) == 2
    assert client.get("/api/v1/goals?status=nonsense", headers=editor).status_code == 422
    mine = client.get("/api/v1/goals?owner_email=editor@a.example", headers=editor).get_json()
    assert mine == {"goals": []}


# --- check-ins, initiatives, audit, events, notifications --------------------------------------------


def test_check_ins_by_the_owner_and_overdue_flags(app, tenant_a, client, make_client):
    from webapp.models import Notification
    from webapp.services import goals

    journey_id = _journey(app, tenant_a)
    goal_id = _manual_goal(
        client, _token(app, tenant_a), journey_id, owner_email="editor@a.example", review_every_days=7
    )
    editor = make_client()
    login(editor, tenant_a.emails["editor"])
    page = editor.get(f"/o/{tenant_a.slug}/goals/{goal_id}").get_data(as_text=True)
    assert "overdue" in page and "Post check-in" in page  # started 50 days ago, every 7 days
    index = editor.get(f"/o/{tenant_a.slug}/goals").get_data(as_text=True)
    assert "overdue" in index

    with _in_org(app, tenant_a):
        assert goals.flag_overdue_check_ins() == [goal_id]
        assert goals.flag_overdue_check_ins() == []  # told once per missed check-in
    with _in_org(app, tenant_a) as db:
        note = db.session.scalar(sa.select(Notification).where(Notification.goal_id == goal_id))
        assert note.kind == "check_in_due" and note.user_id == _user_id(app, tenant_a, "editor")
    inbox = editor.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    assert "Check-in due" in inbox and f"/goals/{goal_id}" in inbox
    editor.get(f"/o/{tenant_a.slug}/goals/{goal_id}")  # opening the goal reads what the inbox said of it
    with _in_org(app, tenant_a) as db:
        read_at = db.session.scalar(sa.select(Notification.read_at).where(Notification.goal_id == goal_id))
        assert read_at is not None

    token = csrf_token(page)
    refused = editor.post(
        f"/o/{tenant_a.slug}/goals/{goal_id}/check-ins",
        data={"csrf_token": token, "note": "", "confidence": "4"},
    )
    assert refused.status_code == 302
    assert "Write a short status note" in editor.get(refused.headers["Location"]).get_data(as_text=True)
    posted = editor.post(
        f"/o/{tenant_a.slug}/goals/{goal_id}/check-ins",
        data={"csrf_token": token, "note": "Callback pilot <b>started</b>", "confidence": "4"},
    )
    assert posted.status_code == 302
    page = editor.get(f"/o/{tenant_a.slug}/goals/{goal_id}").get_data(as_text=True)
    assert "Confidence 4/5" in page and "Callback pilot &lt;b&gt;started&lt;/b&gt;" in page
    assert "overdue" not in page
    assert (
        client.get(f"/api/v1/goals/{goal_id}", headers=_token(app, tenant_a)).get_json()["check_in_overdue"]
        is False
    )

    # Another editor may not post the owner's check-in; an admin may.
    other = make_client()
    login(other, tenant_a.emails["owner"])
    data = {"csrf_token": csrf_token(other.get(f"/o/{tenant_a.slug}/goals").get_data(as_text=True))}
    data.update(note="On behalf of the team", confidence="3")
    assert other.post(f"/o/{tenant_a.slug}/goals/{goal_id}/check-ins", data=data).status_code == 302
    from webapp.models import Membership, User

    with _in_org(app, tenant_a) as db:
        membership = db.session.scalar(
            sa.select(Membership).join(User).where(User.email == tenant_a.emails["admin"])
        )
        membership.role = "editor"
        db.session.commit()
    demoted = make_client()
    login(demoted, tenant_a.emails["admin"])
    data["csrf_token"] = csrf_token(demoted.get(f"/o/{tenant_a.slug}/goals").get_data(as_text=True))
    assert demoted.post(f"/o/{tenant_a.slug}/goals/{goal_id}/check-ins", data=data).status_code == 403


def test_every_change_is_audited_and_recorded_as_a_goal_event(app, tenant_a, client, make_client):
    from webapp.models import AuditEvent, GoalEvent, Notification

    journey_id = _journey(app, tenant_a)
    goal_id = _manual_goal(client, _token(app, tenant_a, "owner"), journey_id)
    editor = make_client()
    login(editor, tenant_a.emails["editor"])
    base = f"/o/{tenant_a.slug}/goals/{goal_id}"
    page = editor.get(base).get_data(as_text=True)
    token = csrf_token(page)
    # An initiative's owner is picked among editors and above, never a viewer.
    picker = re.search(r'<select[^>]*name="owner_id".*?</select>', page, re.S).group(0)
    assert tenant_a.emails["editor"] in picker and tenant_a.emails["owner"] in picker
    assert tenant_a.emails["viewer"] not in picker
    at = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    editor.post(f"{base}/measurements", data={"csrf_token": token, "at": at, "value": "51", "note": "slow"})
    editor.post(
        f"{base}/initiatives",
        data={
            "csrf_token": token,
            "title": "Callback pilot",
            "start_on": "2026-02-01",
            "state": "in_progress",
        },
    )
    edit_page = editor.get(f"{base}/edit").get_data(as_text=True)
    assert "First-call resolution" in edit_page and 'name="journey_id"' not in edit_page
    saved = editor.post(
        f"{base}/edit",
        data=_edit_form(app, tenant_a, csrf_token=token, title="First-call resolution up", target="75"),
    )
    assert saved.status_code == 302, saved.get_data(as_text=True)
    from webapp.models import Initiative

    with _in_org(app, tenant_a) as db:
        initiative_id = db.session.scalar(sa.select(Initiative.id).where(Initiative.goal_id == goal_id))
    editor.post(f"{base}/initiatives/{initiative_id}", data={"csrf_token": token, "state": "done"})

    with _in_org(app, tenant_a) as db:
        actions = db.session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.action.like("goal.%"))
        ).all()
        assert {
            "goal.created",
            "goal.measurement_added",
            "goal.status_changed",
            "goal.initiative_added",
            "goal.updated",
            "goal.initiative_updated",
        } <= set(actions)
        events = db.session.execute(
            sa.select(GoalEvent.kind, GoalEvent.summary, GoalEvent.from_status, GoalEvent.to_status)
            .where(GoalEvent.goal_id == goal_id)
            .order_by(GoalEvent.id)
        ).all()
        kinds = [e.kind for e in events]
        assert kinds[:4] == ["created", "measurement", "status_change", "initiative"]
        assert kinds[4:] == ["updated", "initiative"]
        change = next(e for e in events if e.kind == "status_change")
        assert (change.from_status, change.to_status) == ("no_data", "off_track")  # 0.03 of 0.5 expected
        assert "Callback pilot" in events[-1].summary and "done" in events[-1].summary
        # The owner hears of the status change the editor caused; the editor does not.
        notes = db.session.scalars(sa.select(Notification).where(Notification.goal_id == goal_id)).all()
        assert [(n.kind, n.user_id) for n in notes] == [("goal_status", _user_id(app, tenant_a, "owner"))]
        assert "off track" in notes[0].summary


def test_status_changes_are_mailed_when_smtp_is_configured(app, tenant_a, client):
    from rq import Queue

    from webapp.queue import redis_connection

    app.config["SMTP_URL"] = "smtp://127.0.0.1:1"
    journey_id = _journey(app, tenant_a)
    goal_id = _manual_goal(client, _token(app, tenant_a), journey_id)  # the editor sets it; owner owns it
    client.post(
        f"/api/v1/goals/{goal_id}/measurements",
        json={"at": TODAY.isoformat(), "value": 80},
        headers=_token(app, tenant_a),
    )
    with app.app_context():
        jobs = Queue("default", connection=redis_connection()).jobs
    mails = [job for job in jobs if job.func_name == "worker.jobs.goals.send_goal_mail"]
    assert len(mails) == 1  # no_data → achieved, to the owner
    assert mails[0].args[1].endswith(f"/o/{tenant_a.slug}/goals/{goal_id}")


# --- before/after and watermelon ------------------------------------------------------------------------


def test_before_and_after_an_initiative_and_the_watermelon_warning(app, tenant_a, client, two_months):
    journey_id = two_months["journey_id"]
    headers = _token(app, tenant_a)
    diagnose = _step_id(app, tenant_a, journey_id, "Diagnose")
    # Journey level: 11 h → 5.5 h against a target of 5 h: green. But rework rose from 0 to 25 %.
    body = _goal_body(journey_id, baseline=11 * HOUR, target=5 * HOUR)
    goal_id = client.post("/api/v1/goals", json=body, headers=headers).get_json()["id"]
    goal = client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()
    assert goal["status"] == "on_track" and goal["progress"] == pytest.approx(5.5 / 6)
    assert goal["watermelon"] == (
        "Rework (reopened or repeated work) rose from 0% to 25% of cases "
        "(“January incidents” → “February incidents”)."
    )
    # Step level: the wait before "Diagnose" halved, while the wait before the next step and the step's
    # rework grew.
    step_goal = _goal_body(
        journey_id,
        step_id=diagnose,
        kpi={"metric": "median_wait_before_s", "source": "event_log"},
        baseline=HOUR,
        target=0.5 * HOUR,
    )
    step_goal_id = client.post("/api/v1/goals", json=step_goal, headers=headers).get_json()["id"]
    warning = client.get(f"/api/v1/goals/{step_goal_id}", headers=headers).get_json()["watermelon"]
    assert "rework in “Diagnose” rose from 0% to 25% of its cases" in warning
    assert "the wait before the next step “Fix” grew from 60 min to 2.5 h" in warning

    # A goal that is not green is no watermelon.
    red = _goal_body(journey_id, baseline=5.6 * HOUR, target=HOUR)
    red_id = client.post("/api/v1/goals", json=red, headers=headers).get_json()["id"]
    red_goal = client.get(f"/api/v1/goals/{red_id}", headers=headers).get_json()
    assert red_goal["status"] == "off_track" and red_goal["watermelon"] is None

    # The initiative's start splits January from February.
    login(client, tenant_a.emails["editor"])
    base = f"/o/{tenant_a.slug}/goals/{goal_id}"
    token = csrf_token(client.get(base).get_data(as_text=True))
    client.post(
        f"{base}/initiatives", data={"csrf_token": token, "title": "Triage desk", "start_on": "2026-02-01"}
    )
    from webapp.services import goals

    with _in_org(app, tenant_a):
        (view,) = goals.before_after(goals.get_goal(goal_id))
        assert view.before.log_name == "January incidents" and view.after.log_name == "February incidents"
        journey = {c.metric: c for c in view.journey}
        assert (journey["median_case_duration_s"].before, journey["median_case_duration_s"].after) == (
            11 * HOUR,
            5.5 * HOUR,
        )
        assert journey["median_case_duration_s"].better is True and journey["rework_share"].better is False
        steps = {name: {c.metric: c for c in changes} for name, changes in view.steps}
        assert (steps["Fix"]["median_wait_before_s"].before, steps["Fix"]["median_wait_before_s"].after) == (
            HOUR,
            2.5 * HOUR,
        )
        assert steps["Diagnose"]["median_wait_before_s"].better is True
    page = client.get(base).get_data(as_text=True)
    assert "Watermelon warning" in page and "Before and after" in page
    assert "“Triage desk”, started 2026-02-01" in page and "11 h → 5.5 h" in page
    assert 'title="On track: progress = (19800 − 39600) / (18000 − 39600) = 0.92' in page

    # Surveys that fall make a watermelon too.
    from webapp.models import User
    from webapp.services import Actor, surveys

    with _in_org(app, tenant_a) as db:
        owner = db.session.scalar(sa.select(User).where(User.email == "owner@a.example"))
        surveys.import_csv(
            journey_id,
            b"step,date,metric,value\nDiagnose,2026-02-01,csat,4.6\nDiagnose,2026-02-08,csat,3.9\n",
            "csat.csv",
            Actor(owner.id),
        )
    warning = client.get(f"/api/v1/goals/{step_goal_id}", headers=headers).get_json()["watermelon"]
    assert "CSAT of “Diagnose” fell from 4.60 to 3.90 (2026-02-01 → 2026-02-08)" in warning


# --- tolerances, the daily sweep ---------------------------------------------------------------------


def test_admins_set_the_tolerances_and_every_status_follows(app, tenant_a, client, make_client):
    journey_id = _journey(app, tenant_a)
    headers = _token(app, tenant_a)
    goal_id = _manual_goal(client, headers, journey_id)
    client.post(  # progress 0.35 against 0.5 expected: at risk with the defaults
        f"/api/v1/goals/{goal_id}/measurements",
        json={"at": TODAY.isoformat(), "value": 60.5},
        headers=headers,
    )
    assert client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()["status"] == "at_risk"

    editor = make_client()
    login(editor, tenant_a.emails["editor"])
    page = editor.get(f"/o/{tenant_a.slug}/goals/settings")
    assert page.status_code == 200 and "Admins change these" in page.get_data(as_text=True)
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), "on_track": "0.2", "at_risk": "0.4"}
    assert editor.post(f"/o/{tenant_a.slug}/goals/settings", data=data).status_code == 403

    admin = make_client()
    login(admin, tenant_a.emails["admin"])
    data["csrf_token"] = csrf_token(admin.get(f"/o/{tenant_a.slug}/goals/settings").get_data(as_text=True))
    bad = admin.post(f"/o/{tenant_a.slug}/goals/settings", data={**data, "on_track": "0.5", "at_risk": "0.2"})
    assert bad.status_code == 422 and "at least the on-track tolerance" in bad.get_data(as_text=True)
    assert admin.post(f"/o/{tenant_a.slug}/goals/settings", data=data).status_code == 302
    assert client.get(f"/api/v1/goals/{goal_id}", headers=headers).get_json()["status"] == "on_track"
    assert "expected − 0.20" in admin.get(f"/o/{tenant_a.slug}/goals/{goal_id}").get_data(as_text=True)


def test_the_daily_sweep_recomputes_as_time_passes_in_every_organisation(app, tenant_a, tenant_b, client):
    from webapp import tenancy
    from webapp.models import Goal
    from webapp.services import goals

    journey_id = _journey(app, tenant_a)
    headers = _token(app, tenant_a)
    goal_id = _manual_goal(client, headers, journey_id)
    client.post(
        f"/api/v1/goals/{goal_id}/measurements", json={"at": TODAY.isoformat(), "value": 65}, headers=headers
    )
    journey_b = _journey(app, tenant_b)
    goal_b = _manual_goal(client, _token(app, tenant_b, "owner"), journey_b, owner_email="owner@b.example")
    later = datetime.now(UTC) + timedelta(days=60)  # after both due dates
    with app.app_context():
        totals = goals.daily_sweep(later)
        assert tenancy.current() is None
    assert totals == {"organisations": 2, "status_changes": 1, "overdue_check_ins": 0}
    with _in_org(app, tenant_a) as db:
        assert db.session.get(Goal, goal_id).status == "missed"
    with _in_org(app, tenant_b) as db:
        assert db.session.get(Goal, goal_b).status == "no_data"


# --- pages and permissions ---------------------------------------------------------------------------


def test_viewers_read_goals_without_write_controls_and_are_refused_writes(app, tenant_a, client, make_client):
    journey_id = _journey(app, tenant_a)
    headers = _token(app, tenant_a)
    goal_id = _manual_goal(client, headers, journey_id, title='<script>alert("x")</script> FCR')
    client.post(
        f"/api/v1/goals/{goal_id}/measurements", json={"at": TODAY.isoformat(), "value": 66}, headers=headers
    )
    viewer = make_client()
    login(viewer, tenant_a.emails["viewer"])
    index = viewer.get(f"/o/{tenant_a.slug}/goals").get_data(as_text=True)
    page = viewer.get(f"/o/{tenant_a.slug}/goals/{goal_id}").get_data(as_text=True)
    for html in (index, page):
        assert "<script>alert" not in html and "&lt;script&gt;alert" in html
        assert "New goal" not in html and "Edit goal" not in html
    assert "On track" in page and 'class="goal-chart"' in page and "<circle" in page
    for control in ("Add measurement", "Post check-in", "Add initiative", "Delete goal"):
        assert control not in page
    token = csrf_token(page)
    for path in ("measurements", "check-ins", "initiatives", "delete", "edit"):
        response = viewer.post(
            f"/o/{tenant_a.slug}/goals/{goal_id}/{path}",
            data={"csrf_token": token, "value": "1", "note": "x"},
        )
        assert response.status_code == 403, path
    assert viewer.get(f"/o/{tenant_a.slug}/goals/new").status_code == 403


def test_the_goal_list_filters_by_status_owner_and_journey(app, tenant_a, client):
    first, second = _journey(app, tenant_a), _journey(app, tenant_a)
    headers = _token(app, tenant_a)
    owned = _manual_goal(client, headers, first, title="Owner's goal")
    editors = _manual_goal(client, headers, second, title="Editor's goal", owner_email="editor@a.example")
    client.post(
        f"/api/v1/goals/{owned}/measurements", json={"at": TODAY.isoformat(), "value": 65}, headers=headers
    )
    login(client, tenant_a.emails["viewer"])
    base = f"/o/{tenant_a.slug}/goals"

    def titles(query: str) -> set[str]:
        html = client.get(f"{base}?{query}").get_data(as_text=True)
        return {t for t in ("Owner&#39;s goal", "Editor&#39;s goal") if t in html}

    assert titles("") == {"Owner&#39;s goal", "Editor&#39;s goal"}
    assert titles("status=on_track") == {"Owner&#39;s goal"}
    assert titles("status=no_data") == {"Editor&#39;s goal"}
    assert titles(f"owner={_user_id(app, tenant_a, 'editor')}") == {"Editor&#39;s goal"}
    assert titles(f"journey={first}") == {"Owner&#39;s goal"}
    assert titles(f"journey={second}") == {"Editor&#39;s goal"} and editors != owned


def test_two_editors_saving_one_goal_see_a_conflict_and_lose_nothing(app, tenant_a, client, make_client):
    """The edit form carries the version it was drawn with: the second save of a goal changed meanwhile
    is refused (409) with both values shown, the stored goal stays as the first save left it, and saving
    the form again keeps the second editor's values."""
    import re

    from webapp.models import Goal

    journey_id = _journey(app, tenant_a)
    goal_id = _manual_goal(client, _token(app, tenant_a, "owner"), journey_id)
    base = f"/o/{tenant_a.slug}/goals/{goal_id}"
    version = re.compile(
        r'name="expected_version"[^>]*value="(\d+)"|value="(\d+)"[^>]*name="expected_version"'
    )

    def form(page: str, **changes) -> dict:
        drawn = version.search(page)
        assert drawn, "the edit form carries the goal's version"
        return _edit_form(
            app,
            tenant_a,
            csrf_token=csrf_token(page),
            expected_version=drawn.group(1) or drawn.group(2),
            **changes,
        )

    owner, editor = make_client(), make_client()
    login(owner, tenant_a.emails["owner"])
    login(editor, tenant_a.emails["editor"])
    owner_page = owner.get(f"{base}/edit").get_data(as_text=True)
    editor_page = editor.get(f"{base}/edit").get_data(as_text=True)

    new_owner = str(_user_id(app, tenant_a, "editor"))
    first = owner.post(
        f"{base}/edit",
        data=form(owner_page, title="First-call resolution, owner's words", owner_id=new_owner),
    )
    assert first.status_code == 302
    second = editor.post(f"{base}/edit", data=form(editor_page, target="80"))
    assert second.status_code == 409
    html = second.get_data(as_text=True)
    assert "Changed by someone else" in html and "owner@a.example" in html
    assert "First-call resolution, owner&#39;s words" in html  # what is stored now, beside the editor's
    assert 'value="80' in html  # the editor's typing is still in the form
    owner_row = re.search(r"<th scope=\"row\">owner</th><td>([^<]*)</td><td>([^<]*)</td>", html)
    assert owner_row and owner_row.groups() == ("editor@a.example", "owner@a.example")  # names, not ids
    with _in_org(app, tenant_a) as db:
        goal = db.session.get(Goal, goal_id)
        assert (goal.title, goal.target, goal.owner_id) == (
            "First-call resolution, owner's words",
            70.0,
            int(new_owner),
        )

    kept = editor.post(f"{base}/edit", data=form(html, target="80"))  # "keep mine": against the new version
    assert kept.status_code == 302
    with _in_org(app, tenant_a) as db:
        assert db.session.get(Goal, goal_id).target == 80.0
