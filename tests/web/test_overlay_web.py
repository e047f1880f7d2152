"""Data vs story through the web app: mapping editor, snapshots and trends, business time, ghost and
shadow steps, survey imports and the business calendar. Jobs run in-process here (the worker path is
tested in tests/integration/test_overlay.py)."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from tests.integration.test_overlay import EVENTS, JOURNEY, MAPPING
from tests.support import csrf_token, login


def _csv(events) -> bytes:
    return ("case,activity,time\n" + "".join(f"{c},{a},{t}\n" for c, a, t in events)).encode()


def _mine(app, tenant, data: bytes, name: str) -> int:
    """Upload and mine a log in-process, as the worker would."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, eventlogs
    from worker.jobs.eventlogs import mine_run

    with app.test_request_context():
        tenancy.activate(tenant.organisation_id)
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        log = eventlogs.upload(f"{name}.csv", io.BytesIO(data), Actor(owner.id), name)
        log.mapping = {"case": "case", "activity": "activity", "timestamp": "time"}
        run = eventlogs.start_run(log, enqueue=False)
        log_id, run_id = log.id, run.id
        db.session.remove()
    with app.app_context():
        mine_run(run_id, organisation_id=tenant.organisation_id)
    return log_id


def _measure_pending(app, tenant) -> None:
    """Run every queued measurement in-process."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.overlay import MeasurementSnapshot
    from worker.jobs.overlay import measure_snapshot

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        ids = db.session.scalars(
            sa.select(MeasurementSnapshot.id).where(MeasurementSnapshot.status == "queued")
        ).all()
        db.session.remove()
    for snapshot_id in ids:
        with app.app_context():
            measure_snapshot(snapshot_id, organisation_id=tenant.organisation_id)


def _journey(app, tenant) -> int:
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, journeys

    with app.test_request_context():
        tenancy.activate(tenant.organisation_id)
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        journey_id = journeys.import_json(JOURNEY, Actor(owner.id)).id
        db.session.remove()
    return journey_id


@pytest.fixture
def measured(app, tenant_a, client):
    """A journey linked to a mined log through the editor's forms, measured once."""
    log_id = _mine(app, tenant_a, _csv(EVENTS), "March incidents")
    journey_id = _journey(app, tenant_a)
    login(client, tenant_a.emails["editor"])
    base = f"/o/{tenant_a.slug}/journeys/{journey_id}/data"
    page = client.get(base)
    assert "March incidents" in page.get_data(as_text=True)  # offered for linking
    linked = client.post(
        f"{base}/links", data={"event_log": log_id, "csrf_token": csrf_token(page.get_data(as_text=True))}
    )
    assert linked.status_code == 302 and "/mapping" in linked.headers["Location"]
    editor_page = client.get(linked.headers["Location"]).get_data(as_text=True)
    return {
        "log_id": log_id,
        "journey_id": journey_id,
        "base": base,
        "mapping_url": linked.headers["Location"],
        "mapping_page": editor_page,
    }


def _form_from(page: str) -> dict[str, str]:
    """The mapping form as the browser would send it: every activity with its selected step."""
    import re

    data = {"csrf_token": csrf_token(page)}
    data["count"] = re.search(r'name="count" value="(\d+)"', page).group(1)
    for i, value in re.findall(r'name="activity-(\d+)" value="([^"]*)"', page):
        data[f"activity-{i}"] = value.replace("&amp;", "&")
    for i, block in re.findall(r'name="step-(\d+)"[^>]*>(.*?)</select>', page, re.S):
        chosen = re.search(r'<option value="(\d+)" selected', block)
        data[f"step-{i}"] = chosen.group(1) if chosen else ""
    return data


def test_the_editor_proposes_a_mapping_by_name_and_saving_it_measures_the_journey(
    app, tenant_a, client, measured
):
    page = measured["mapping_page"]
    assert "proposed" in page
    form = _form_from(page)
    names = {form[k]: k.split("-")[1] for k in form if k.startswith("activity-")}
    # "Diagnosis" → "Diagnose" and "Closed" → "Close ticket" are close enough to propose; "Escalated" is not.
    steps = {
        s: sid for sid, s in [(m, n) for m, n in _step_names(app, tenant_a, measured["journey_id"]).items()]
    }
    assert form[f"step-{names['Diagnosis']}"] == str(steps["Diagnose"])
    assert form[f"step-{names['Escalated']}"] == ""
    # The user corrects the proposal to the intended mapping and saves.
    for activity, step in MAPPING.items():
        form[f"step-{names[activity]}"] = str(steps[step])
    saved = client.post(measured["mapping_url"], data=form)
    assert saved.status_code == 302
    show = client.get(measured["base"]).get_data(as_text=True)
    assert "Measuring" in show or "Waiting for a worker" in show  # a progress bar until the job ran
    _measure_pending(app, tenant_a)
    show = client.get(measured["base"]).get_data(as_text=True)
    assert "3 of 5 cases" in show and "Ghost step" in show and "Satisfaction survey" in show
    # Diagnose is drawn as fine (+1) but c3 comes back to it: felt and measured pain disagree.
    assert "Drawn as +1, but 25% of its cases come back to it" in show
    # The log's variants collapsed into paths through the drawn steps, the most common first.
    assert "ways people really go through this journey" in show
    assert "Log ticket → Diagnose → Fix → Close ticket" in show
    # Saving the same mapping again makes no new version; a change makes version 2.
    client.post(measured["mapping_url"], data=form)
    form[f"step-{names['Escalated']}"] = str(steps["Diagnose"])
    client.post(measured["mapping_url"], data=form)
    mapping_page = client.get(measured["mapping_url"]).get_data(as_text=True)
    assert "mapping version 2" in mapping_page and "Mapping versions (2)" in mapping_page


def _step_names(app, tenant, journey_id) -> dict[int, str]:
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Step

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        names = dict(
            db.session.execute(sa.select(Step.id, Step.name).where(Step.journey_id == journey_id)).all()
        )
        db.session.remove()
    return names


def _save_mapping(client, measured, app, tenant, mapping=MAPPING) -> None:
    form = _form_from(client.get(measured["mapping_url"]).get_data(as_text=True))
    steps = {name: sid for sid, name in _step_names(app, tenant, measured["journey_id"]).items()}
    names = {form[k]: k.split("-")[1] for k in form if k.startswith("activity-")}
    for activity in names:
        form[f"step-{names[activity]}"] = str(steps[mapping[activity]]) if activity in mapping else ""
    assert client.post(measured["mapping_url"], data=form).status_code == 302
    _measure_pending(app, tenant)


def test_a_shadow_activity_is_added_to_the_map_in_one_click(app, tenant_a, client, measured):
    _save_mapping(client, measured, app, tenant_a)
    show = client.get(measured["base"]).get_data(as_text=True)
    assert "Shadow activities" in show and "Reopened" in show
    import re

    link_id = re.search(r'name="link" value="(\d+)"', show).group(1)
    added = client.post(
        f"{measured['base']}/shadow",
        data={"link": link_id, "activity": "Reopened", "csrf_token": csrf_token(show)},
    )
    assert added.status_code == 302
    _measure_pending(app, tenant_a)
    names = _step_names(app, tenant_a, measured["journey_id"])
    assert "Reopened" in names.values()
    show = client.get(measured["base"]).get_data(as_text=True)
    # Reopened follows "Closed" (stage Close), so the new step lands in that stage, now measured.
    reopened = next(sid for sid, n in names.items() if n == "Reopened")
    card = show[show.index(f'id="ostep-{reopened}"') :][:1500]
    assert "reached" in card and "20%" in card


def test_snapshots_make_trends_and_a_before_after_comparison(app, tenant_a, client, measured):
    _save_mapping(client, measured, app, tenant_a)
    # April: everything after logging happens 5 hours later, so waiting for diagnosis grows.
    from datetime import datetime, timedelta

    def later(activity: str, ts: str) -> str:
        moment = datetime.fromisoformat(ts.replace("2026-03-", "2026-04-"))
        return (moment + timedelta(hours=0 if activity == "Ticket logged" else 5)).isoformat()

    april = [(c, a, later(a, t)) for c, a, t in EVENTS]
    april_id = _mine(app, tenant_a, _csv(april), "April incidents")
    page = client.get(measured["base"]).get_data(as_text=True)
    client.post(f"{measured['base']}/links", data={"event_log": april_id, "csrf_token": csrf_token(page)})
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.overlay import JourneyLogLink, MeasurementSnapshot

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        link = db.session.scalar(sa.select(JourneyLogLink).where(JourneyLogLink.event_log_id == april_id))
        april_mapping_url = f"{measured['base']}/links/{link.id}/mapping"
        db.session.remove()
    _save_mapping(client, {**measured, "mapping_url": april_mapping_url}, app, tenant_a)
    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        march_snap, april_snap = db.session.scalars(
            sa.select(MeasurementSnapshot.id)
            .where(MeasurementSnapshot.status == "finished")
            .order_by(MeasurementSnapshot.id)
        ).all()
        db.session.remove()
    show = client.get(measured["base"]).get_data(as_text=True)
    assert show.count('class="sparkline"') == 3  # a trend per step with a wait before it
    assert "April incidents" in show and "2026-04-02" in show  # the newest snapshot is shown
    compared = client.get(f"{measured['base']}?snapshot={april_snap}&compare={march_snap}").get_data(
        as_text=True
    )
    assert 'class="worse"' in compared  # Diagnose's visit got longer in April
    march = client.get(f"{measured['base']}?snapshot={march_snap}").get_data(as_text=True)
    assert "March incidents" in march and "2026-03-02" in march


def test_durations_in_business_time_use_the_organisation_calendar(app, tenant_a, client, measured):
    owner = client
    login(owner, tenant_a.emails["owner"])
    page = owner.get(f"/o/{tenant_a.slug}/settings/calendar").get_data(as_text=True)
    bad = owner.post(
        f"/o/{tenant_a.slug}/settings/calendar",
        data={
            "timezone": "Mars/Olympus",
            "working_days": ["0"],
            "day_start": "09:00",
            "day_end": "17:00",
            "csrf_token": csrf_token(page),
        },
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "is not a time zone name" in bad
    owner.post(
        f"/o/{tenant_a.slug}/settings/calendar",
        data={
            "timezone": "Europe/Amsterdam",
            "working_days": ["0", "1", "2", "3", "4"],
            "day_start": "09:00",
            "day_end": "17:00",
            "holidays": "2026-12-25\n",
            "csrf_token": csrf_token(page),
        },
    )
    assert "Europe/Amsterdam" in owner.get(f"/o/{tenant_a.slug}/settings/calendar").get_data(as_text=True)
    _save_mapping(client, measured, app, tenant_a)
    calendar_view = client.get(measured["base"]).get_data(as_text=True)
    business_view = client.get(f"{measured['base']}?time=business").get_data(as_text=True)
    assert "durations in business time (Europe/Amsterdam)" in business_view
    # c5 waits from 09:40 to 18:00 before closing; 17:00 CET is 16:00 UTC, so in business time the wait
    # ends at the end of the working day: the closing step's figures differ between the two views.
    assert calendar_view != business_view


def test_viewers_read_the_overlay_but_cannot_map_link_or_import(app, tenant_a, client, measured, make_client):
    _save_mapping(client, measured, app, tenant_a)
    viewer = make_client()
    login(viewer, tenant_a.emails["viewer"])
    show = viewer.get(measured["base"]).get_data(as_text=True)
    assert "3 of 5 cases" in show
    for control in ("Add to map", "Link and map activities", "Import scores", "Measure again", "Unlink"):
        assert control not in show
    mapping = viewer.get(measured["mapping_url"]).get_data(as_text=True)
    assert "Save mapping" not in mapping and "disabled" in mapping
    token = csrf_token(show)
    assert viewer.post(measured["mapping_url"], data={"csrf_token": token, "count": "0"}).status_code == 403
    assert viewer.post(f"/o/{tenant_a.slug}/settings/calendar", data={"csrf_token": token}).status_code == 403


def test_survey_scores_are_imported_all_or_nothing_and_shown_beside_the_data(app, tenant_a, client, measured):
    _save_mapping(client, measured, app, tenant_a)
    show = client.get(measured["base"]).get_data(as_text=True)
    bad = (
        "step,date,metric,value\n"
        "Diagnose,2026-03-05,csat,4\n"
        "No such step,2026-03-05,csat,4\n"
        "Fix,05/03/2026,csat,4\n"
        "Fix,2026-03-05,csat,9\n"
    )
    answer = client.post(
        f"{measured['base']}/surveys",
        data={"file": (io.BytesIO(bad.encode()), "survey.csv"), "csrf_token": csrf_token(show)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Nothing was imported" in answer
    assert "line 3" in answer and "line 4" in answer and "line 5" in answer and "line 2" not in answer
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.overlay import SurveyScore

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SurveyScore)) == 0
        db.session.remove()
    good = "step,date,metric,value\nDiagnose,2026-03-05,csat,2\n" + "".join(
        f"Fix,2026-03-05,nps_answer,{v}\n" for v in (10, 9, 9, 8, 3)
    )
    answer = client.post(
        f"{measured['base']}/surveys",
        data={"file": (io.BytesIO(good.encode()), "survey.csv"), "csrf_token": csrf_token(show)},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Imported 6 rows: 2 scores on 2 steps" in answer
    # NPS from raw answers: 3 promoters, 1 detractor of 5 → 40.
    assert "NPS 40.0" in answer and "CSAT 2.0" in answer
    assert 'class="sentiment"' in answer  # measured sentiment drawn beside the drawn emotion


def test_api_mapping_refuses_ambiguous_step_names(app, tenant_a, client, measured):
    from tests.integration.test_eventlogs import _token

    token = _token(app, tenant_a)
    headers = {"Authorization": f"Bearer {token}"}
    journey = client.get(f"/api/v1/journeys/{measured['journey_id']}", headers=headers).get_json()
    journey["stages"][2]["steps"][1]["name"] = "Fix"  # now two steps are called "Fix"
    assert (
        client.put(f"/api/v1/journeys/{measured['journey_id']}", json=journey, headers=headers).status_code
        == 200
    )
    answer = client.put(
        f"/api/v1/journeys/{measured['journey_id']}/mapping",
        json={"event_log": measured["log_id"], "activities": {"Fix applied": "Fix"}},
        headers=headers,
    )
    assert answer.status_code == 422 and "2 steps are named" in answer.get_json()["error"]["message"]


def test_a_measurement_saved_while_redis_is_away_waits_and_is_queued_when_it_is_back(
    app, tenant_a, client, measured, monkeypatch
):
    from datetime import timedelta

    from redis.exceptions import ConnectionError as RedisConnectionError
    from rq.job import Job

    from webapp import queue, tenancy
    from webapp.extensions import db
    from webapp.models.overlay import MeasurementSnapshot
    from webapp.models.types import utcnow
    from webapp.services import overlay

    real_enqueue = queue.enqueue

    def redis_away(*args, **kwargs):
        raise RedisConnectionError("Connection refused")

    monkeypatch.setattr(queue, "enqueue", redis_away)
    form = _form_from(measured["mapping_page"])
    assert client.post(measured["mapping_url"], data=form).status_code == 302  # saved, no 500
    page = client.get(measured["base"]).get_data(as_text=True)
    assert "Redis is not answering" in page  # the user is told why it waits
    monkeypatch.setattr(queue, "enqueue", real_enqueue)
    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        snapshot = db.session.scalar(sa.select(MeasurementSnapshot))
        assert snapshot.status == "queued" and snapshot.rq_job_id is None
        assert overlay.reconcile_organisation(now=utcnow()) == []  # too early: a web process may be queueing
        assert overlay.reconcile_organisation(now=utcnow() + timedelta(minutes=5)) == [snapshot.id]
        db.session.refresh(snapshot)
        assert snapshot.error is None
        assert Job.exists(snapshot.rq_job_id, connection=queue.redis_connection())
        db.session.remove()
