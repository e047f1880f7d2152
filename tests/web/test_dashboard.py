"""The executive dashboard through the web app: goals grouped by journey with their cards, the filters,
"what changed since my last visit", read only for viewers, CSV downloads guarded against formula
injection, the journey portfolio's figures, the weekly digests and the scheduler's idempotence.

Goals, measurements, check-ins and events are written here as rows (their denormalised figures filled in
by hand), so these tests depend only on the tables, not on how the goals service computes them.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.support import login

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)


# --- building rows ---------------------------------------------------------------------------------------


@dataclass
class GoalWorld:
    slug: str
    journeys: dict[str, int] = field(default_factory=dict)
    goals: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)


def user_ids(tenant) -> dict[str, int]:
    from webapp.extensions import db
    from webapp.models import User

    return {
        role: db.session.scalar(sa.select(User.id).where(User.email == email))
        for role, email in tenant.emails.items()
    }


def add_journey(title: str, kind: str, owner_id: int, archived: bool = False) -> int:
    from webapp.extensions import db
    from webapp.services import Actor, journeys

    journey = journeys.create_journey(title, Actor(owner_id), kind=kind)
    if archived:
        journey.archived_at = NOW - DAY
        db.session.commit()
    return journey.id


def add_goal(journey_id: int, title: str, *, status: str, owner_id: int | None, values=(), **fields) -> int:
    """A goal row with its stored figures, `values` as measurements a day apart ending yesterday."""
    from webapp.extensions import db
    from webapp.models.goals import Goal, GoalMeasurement

    defaults = dict(
        kpi_metric="median_case_duration_s",
        kpi_source="event_log",
        direction="lower",
        baseline=100.0,
        target=50.0,
        start_on=(NOW - 60 * DAY).date(),
        due_on=(NOW + 30 * DAY).date(),
        review_every_days=14,
        created_at=NOW - 60 * DAY,
    )
    defaults.update(fields)
    goal = Goal(journey_id=journey_id, title=title, status=status, owner_id=owner_id, **defaults)
    if values:
        goal.current_value = values[-1]
        goal.last_measured_at = NOW - DAY
    db.session.add(goal)
    db.session.flush()
    for index, value in enumerate(values):
        at = NOW - (len(values) - index) * DAY
        db.session.add(GoalMeasurement(goal_id=goal.id, at=at, value=value, source=goal.kpi_source))
    db.session.commit()
    return goal.id


def add_event(goal_id: int, kind: str, summary: str, at: datetime, from_status=None, to_status=None) -> None:
    from webapp.extensions import db
    from webapp.models.goals import GoalEvent

    db.session.add(
        GoalEvent(
            goal_id=goal_id, kind=kind, summary=summary, at=at, from_status=from_status, to_status=to_status
        )
    )
    db.session.commit()


@pytest.fixture
def world(app, tenant_a, tenant_b) -> GoalWorld:
    """A's two journeys (customer, employee) with four goals in four statuses, measurements, events."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import CheckIn, Goal

    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        users = user_ids(tenant_a)
        w = GoalWorld(tenant_a.slug, users=users)
        w.journeys["laptop"] = add_journey("Laptop repair", "customer", users["owner"])
        w.journeys["onboarding"] = add_journey("Employee onboarding", "employee", users["owner"])
        w.journeys["archived"] = add_journey("Old archived map", "customer", users["owner"], archived=True)
        w.goals["faster"] = add_goal(
            w.journeys["laptop"],
            "Faster laptop repairs",
            status="on_track",
            owner_id=users["editor"],
            values=(100.0, 90.0, 85.0, 80.0, 70.0),
            progress=0.6,
            expected=0.55,
        )
        w.goals["reopen"] = add_goal(
            w.journeys["laptop"],
            "Fewer reopened repairs",
            status="off_track",
            owner_id=users["owner"],
            kpi_metric="rework_share",
            baseline=0.2,
            target=0.1,
            values=(0.2, 0.22),
            progress=-0.2,
            expected=0.55,
            watermelon="Reopen rate rose from 4% to 9% while the KPI looked fine",
        )
        w.goals["formula"] = add_goal(
            w.journeys["onboarding"],
            '=HYPERLINK("http://evil.example","Click")',
            status="at_risk",
            owner_id=users["viewer"],
            kpi_metric="laptops_ready_on_day_one",
            kpi_source="manual",
            kpi_unit="laptops",
            direction="higher",
            baseline=10.0,
            target=40.0,
            values=(10.0, 12.0, 15.0),
            progress=0.17,
            expected=0.4,
        )
        w.goals["done"] = add_goal(
            w.journeys["onboarding"],
            "Accounts ready on day one",
            status="achieved",
            owner_id=None,
            kpi_metric="cases",
            direction="higher",
            baseline=0.0,
            target=10.0,
            values=(12.0,),
            progress=1.2,
            expected=0.5,
        )
        faster = db.session.get(Goal, w.goals["faster"])
        faster.last_check_in_at = NOW - 2 * DAY
        db.session.add(
            CheckIn(
                goal_id=faster.id, author_id=users["editor"], at=NOW - 2 * DAY, note="On plan", confidence=4
            )
        )
        db.session.commit()
        db.session.remove()
    return w


def viewer_client(make_client, tenant):
    client = make_client()
    login(client, tenant.emails["viewer"])
    return client


def page(client, slug: str, query: str = "", **kwargs) -> str:
    response = client.get(f"/o/{slug}/dashboard{query}", **kwargs)
    assert response.status_code == 200, response.status_code
    return response.get_data(as_text=True)


def cards(html: str) -> dict[int, str]:
    """goal id -> the card's HTML."""
    return {
        int(m.group(1)): m.group(0)
        for m in re.finditer(r'<li class="goal-card[^"]*" data-goal-id="(\d+)".*?</li>', html, re.S)
    }


def group_order(html: str) -> list[str]:
    return re.findall(r'<section class="journey-goals"[^>]*aria-label="Goals of ([^"]+)"', html)


# --- the page -------------------------------------------------------------------------------------------


def test_goals_are_grouped_by_journey_as_cards(world, make_client, tenant_a):
    html = page(viewer_client(make_client, tenant_a), world.slug)
    assert group_order(html) == ["Employee onboarding", "Laptop repair"]
    found = cards(html)
    assert set(found) == set(world.goals.values())

    faster = found[world.goals["faster"]]
    assert 'data-status="on_track"' in faster and ">On track<" in faster  # colour and words
    assert "60% of the way to the target; 55% expected by now" in faster
    assert '<rect class="fill" x="0" y="0" width="60.0"' in faster
    points = re.search(r'<polyline points="([^"]+)"', faster).group(1).split()
    assert len(points) == 5  # one per measurement, oldest first: the line falls as the duration does
    ys = [float(p.split(",")[1]) for p in points]
    assert ys == sorted(ys)
    assert (NOW + 30 * DAY).date().isoformat() in faster  # due
    assert "editor@a.example" in faster  # owner
    assert (NOW - 2 * DAY).strftime("%Y-%m-%d") in faster and "overdue" not in faster  # last check-in
    assert "Median case duration" in faster

    reopen = found[world.goals["reopen"]]
    assert ">Off track<" in reopen and "-20%" in reopen and 'width="0.0"' in reopen  # worse than baseline
    assert "Watermelon warning" in reopen and "Reopen rate rose" in reopen
    assert "none yet" in reopen and "(overdue)" in reopen  # never checked in, created 60 days ago
    formula = found[world.goals["formula"]]
    assert "=HYPERLINK(&#34;http://evil.example&#34;" in formula or "=HYPERLINK(&quot;" in formula
    assert "15 laptops" in formula
    done = found[world.goals["done"]]
    assert ">Achieved<" in done and "Nobody" in done and "One measurement so far" in done
    # Worst first within a journey: off track before on track.
    assert html.index(f'data-goal-id="{world.goals["reopen"]}"') < html.index(
        f'data-goal-id="{world.goals["faster"]}"'
    )


def test_filters_by_status_owner_journey_and_kind(world, make_client, tenant_a):
    client = viewer_client(make_client, tenant_a)
    goals, users = world.goals, world.users
    cases = {
        "?status=off_track": {goals["reopen"]},
        f"?owner={users['editor']}": {goals["faster"]},
        f"?journey={world.journeys['onboarding']}": {goals["formula"], goals["done"]},
        "?kind=customer": {goals["faster"], goals["reopen"]},
        "?kind=employee&status=achieved": {goals["done"]},
        "?status=nonsense&owner=abc&journey=-1": set(goals.values()),  # malformed: ignored
    }
    for query, expected in cases.items():
        assert set(cards(page(client, world.slug, query))) == expected, query

    # The filter menus offer every owner and journey whatever is chosen; the choice stays selected.
    html = page(client, world.slug, "?kind=customer")
    assert f'<option value="{users["viewer"]}">viewer@a.example</option>' in html
    assert '<option value="customer" selected>' in html
    # htmx asks for the body only; it keeps the filters in the CSV links and the export form.
    fragment = page(client, world.slug, "?status=on_track", headers={"HX-Request": "true"})
    assert fragment.lstrip().startswith('<div id="dashboard-body">') and "<html" not in fragment
    assert "goals.csv?status=on_track" in fragment
    assert '<input type="hidden" name="status" value="on_track">' in fragment
    # The portfolio follows the journey and kind filters.
    assert (
        'data-journey-id="{}"'.format(world.journeys["onboarding"])
        not in page(client, world.slug, "?kind=customer").split("portfolio-heading")[1]
    )


def test_what_changed_since_my_last_visit(app, world, make_client, tenant_a):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import DashboardVisit

    goals = world.goals
    add_events = [
        (goals["faster"], "measurement", "New measurement: 70", NOW - 30 * DAY),  # before any visit window
        (goals["faster"], "check_in", "Check-in: on plan (4/5)", NOW - 3 * DAY),
        (
            goals["reopen"],
            "status_change",
            "Status changed to off track",
            NOW - 3 * DAY,
            "at_risk",
            "off_track",
        ),
        (goals["faster"], "measurement", "New measurement: 80", NOW - timedelta(hours=10)),
    ]
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        for args in add_events:
            add_event(*args)
        db.session.remove()
    client = viewer_client(make_client, tenant_a)

    # First visit: the last 7 days.
    html = page(client, world.slug)
    assert "Recent changes" in html and "Your first visit" in html
    # Newest first (the status change was recorded after the check-in of the same moment).
    assert re.findall(r'data-change-kind="(\w+)"', html) == ["measurement", "status_change", "check_in"]
    assert "New measurement: 70" not in html

    def visit_row():
        with app.test_request_context():
            tenancy.activate(tenant_a.organisation_id)
            row = db.session.scalar(
                sa.select(DashboardVisit).where(DashboardVisit.user_id == world.users["viewer"])
            )
            values = (row.previous_visit_at, row.last_visit_at)
            db.session.remove()
            return values

    previous, last = visit_row()
    assert previous is None and abs((last - datetime.now(UTC)).total_seconds()) < 60

    # The member last came two days ago: since then, one measurement (the older events are not listed).
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        db.session.execute(
            sa.update(DashboardVisit)
            .where(DashboardVisit.user_id == world.users["viewer"])
            .values(last_visit_at=NOW - 2 * DAY, previous_visit_at=NOW - 9 * DAY)
        )
        db.session.commit()
        db.session.remove()
    html = page(client, world.slug)
    assert "What changed since your last visit" in html
    assert re.findall(r'data-change-kind="(\w+)"', html) == ["measurement"]
    assert "1 new measurement." in html
    previous, last = visit_row()
    assert previous == NOW - 2 * DAY and last > NOW - timedelta(minutes=1)
    # Reading on (a reload, a filter) keeps the same "since"; within a minute it writes nothing at all.
    again = page(client, world.slug, "?kind=customer", headers={"HX-Request": "true"})
    assert re.findall(r'data-change-kind="(\w+)"', again) == ["measurement"]
    assert visit_row() == (NOW - 2 * DAY, last)
    # Filters narrow the changes to the goals shown.
    onboarding = page(client, world.slug, f"?journey={world.journeys['onboarding']}")
    assert re.findall(r'data-change-kind="(\w+)"', onboarding) == [] and "nothing changed" in onboarding

    # An hour later the previous visit is the last one: nothing changed since.
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        db.session.execute(
            sa.update(DashboardVisit)
            .where(DashboardVisit.user_id == world.users["viewer"])
            .values(last_visit_at=datetime.now(UTC) - timedelta(hours=1))
        )
        db.session.commit()
        db.session.remove()
    html = page(client, world.slug)
    assert re.findall(r'data-change-kind="(\w+)"', html) == [] and "nothing changed" in html
    # Another member's visits are their own: the owner has never been here.
    owner = make_client()
    login(owner, tenant_a.emails["owner"])
    assert "Your first visit" in page(owner, world.slug)


def test_viewers_get_no_write_controls(world, make_client, tenant_a):
    client = viewer_client(make_client, tenant_a)
    html = page(client, world.slug)
    main = html.split('<main id="main"', 1)[1]
    actions = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]+)"', main)
    assert actions and set(actions) == {f"/o/{world.slug}/dashboard/exports"}  # export only (any member may)
    assert set(re.findall(r'hx-post="([^"]+)"', main)) == {f"/o/{world.slug}/dashboard/exports"}
    assert not re.search(r"hx-(put|patch|delete)=", main)
    assert "<textarea" not in main and 'type="text"' not in main
    assert client.post(f"/o/{world.slug}/dashboard").status_code in (400, 405)  # nothing to post to


def test_csv_downloads_are_guarded_against_formula_injection(app, world, make_client, tenant_a):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import Goal, GoalMeasurement

    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        db.session.get(Goal, world.goals["done"]).title = "@SUM(A1:A9)"
        db.session.get(Goal, world.goals["faster"]).watermelon = "-2+3 worse"
        db.session.get(Goal, world.goals["reopen"]).title = "\tTabbed+title"
        db.session.add(
            GoalMeasurement(
                goal_id=world.goals["formula"], at=NOW, value=-5.0, source="manual", note="+cmd|' /C calc'!A0"
            )
        )
        db.session.commit()
        db.session.remove()
    client = viewer_client(make_client, tenant_a)

    response = client.get(f"/o/{world.slug}/dashboard/goals.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert f"{world.slug}-goals-" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    titles = {row["title"] for row in rows}
    assert titles == {
        '\'=HYPERLINK("http://evil.example","Click")',
        "'@SUM(A1:A9)",
        "'\tTabbed+title",
        "Faster laptop repairs",
    }
    faster = next(row for row in rows if row["title"] == "Faster laptop repairs")
    assert faster["watermelon"] == "'-2+3 worse"
    assert (
        faster["status"] == "on_track"
        and faster["current"] == "70.0"
        and faster["owner"] == "editor@a.example"
    )
    assert faster["journey"] == "Laptop repair" and faster["kind"] == "customer"
    reopen = next(row for row in rows if row["title"].startswith("'\t"))
    assert reopen["progress"] == "-0.2"  # a number stays a number, even negative
    # The filters apply to the download.
    filtered = client.get(f"/o/{world.slug}/dashboard/goals.csv?status=achieved").get_data(as_text=True)
    assert [row["title"] for row in csv.DictReader(io.StringIO(filtered))] == ["'@SUM(A1:A9)"]

    measurements = client.get(
        f"/o/{world.slug}/dashboard/measurements.csv?journey={world.journeys['onboarding']}"
    )
    rows = list(csv.DictReader(io.StringIO(measurements.get_data(as_text=True))))
    assert len(rows) == 3 + 1 + 1  # the manual goal's three and the new one, the achieved goal's one
    assert {row["goal"] for row in rows} == {'\'=HYPERLINK("http://evil.example","Click")', "'@SUM(A1:A9)"}
    last = [row for row in rows if row["note"]][0]
    assert last["note"] == "'+cmd|' /C calc'!A0" and last["value"] == "-5.0"


def test_portfolio_shows_conformance_case_duration_trend_and_goal_statuses(app, world, make_client, tenant_a):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.eventlogs import EventLog, LogSummary, MiningRun
    from webapp.models.overlay import JourneyLogLink, MappingVersion, MeasurementSnapshot

    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        journey_id = world.journeys["laptop"]
        for month, (median, conformance, cases) in enumerate(((7200.0, 0.5, 100), (5400.0, 0.75, 120)), 1):
            log = EventLog(
                name=f"Repairs month {month}",
                filename="r.csv",
                file_format="csv",
                storage_key=f"k{month}",
                size_bytes=1,
                sha256="0" * 64,
                status="finished",
            )
            db.session.add(log)
            db.session.flush()
            # An older run, the run over all cases, and a newer filtered run: only the middle one counts.
            for run_median, filters in ((99.0, None), (median, None), (1.0, {"variant": ["A", "B"]})):
                run = MiningRun(
                    event_log_id=log.id, status="finished", input_sha256="0" * 64, filters=filters
                )
                db.session.add(run)
                db.session.flush()
                db.session.add(
                    LogSummary(
                        run_id=run.id,
                        cases=cases,
                        events=cases * 5,
                        activities=5,
                        variants=3,
                        case_duration_median_s=run_median,
                    )
                )
            link = JourneyLogLink(journey_id=journey_id, event_log_id=log.id)
            db.session.add(link)
            db.session.flush()
            version = MappingVersion(link_id=link.id, number=1, activities={})
            db.session.add(version)
            db.session.flush()
            # Month 1 was measured again later with another result: its latest snapshot counts.
            for share in (0.1, conformance) if month == 1 else (conformance,):
                db.session.add(
                    MeasurementSnapshot(
                        journey_id=journey_id,
                        link_id=link.id,
                        event_log_id=log.id,
                        mapping_version_id=version.id,
                        layout=[],
                        definition="d",
                        status="finished",
                        cases=cases,
                        conformance_share=share,
                        period_start=datetime(2025, month, 1, tzinfo=UTC),
                        period_end=datetime(2025, month, 28, tzinfo=UTC),
                        finished_at=NOW - (3 - month) * DAY,
                    )
                )
            db.session.flush()
        db.session.commit()
        db.session.remove()

    html = page(viewer_client(make_client, tenant_a), world.slug)
    portfolio = html.split('id="portfolio-heading"', 1)[1]
    rows = dict(re.findall(r'<tr data-journey-id="(\d+)">(.*?)</tr>', portfolio, re.S))
    assert set(map(int, rows)) == {world.journeys["laptop"], world.journeys["onboarding"]}  # not the archived
    laptop = rows[str(world.journeys["laptop"])]
    assert "75.0%" in laptop and "120 cases to 2025-02-28" in laptop  # the latest log's conformance
    assert "1.5 h" in laptop  # the latest log's median case duration (5,400 s)
    assert "-25% on the previous log" in laptop  # 7,200 s -> 5,400 s
    assert len(re.search(r'<polyline points="([^"]+)"', laptop).group(1).split()) == 2
    assert "1 off track" in laptop and "1 on track" in laptop
    onboarding = rows[str(world.journeys["onboarding"])]
    assert "not measured" in onboarding and "1 at risk" in onboarding and "1 achieved" in onboarding


def test_a_fixed_number_of_queries_whatever_the_number_of_goals(app, world, tenant_a):
    """No per-goal query: 4 goals and 44 goals cost the same number of statements."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.services import dashboard

    def statements() -> int:
        seen = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        with app.test_request_context():
            tenancy.activate(tenant_a.organisation_id, world.users["viewer"])
            sa.event.listen(db.engine, "before_cursor_execute", listener)
            try:
                view = dashboard.open_dashboard(world.users["viewer"], dashboard.Filters())
                assert view.groups
            finally:
                sa.event.remove(db.engine, "before_cursor_execute", listener)
                db.session.remove()
        return len(seen)

    statements()  # the first visit inserts the visit row; later ones update it
    few = statements()
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        for n in range(40):
            add_goal(
                world.journeys["laptop"],
                f"More goal {n}",
                status="at_risk",
                owner_id=None,
                values=(3.0, 2.0, 1.0),
            )
        db.session.remove()
    assert statements() == few <= 14


def test_another_organisation_sees_none_of_it(world, make_client, tenant_b):
    client = make_client()
    login(client, tenant_b.emails["viewer"])
    html = page(client, tenant_b.slug)
    assert cards(html) == {} and "No goals yet" in html and "Laptop repair" not in html
    assert "HYPERLINK" not in client.get(f"/o/{tenant_b.slug}/dashboard/goals.csv").get_data(as_text=True)
    assert client.get(f"/o/{world.slug}/dashboard").status_code == 404


# --- weekly digests -------------------------------------------------------------------------------------


def test_weekly_digests_once_per_member_and_week_visible_in_the_app(app, world, make_client, tenant_a):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import Digest
    from webapp.services import digests

    start, end = digests.period_for(NOW)
    assert end.weekday() == 0 and end.hour == 0 and end - start == timedelta(days=7) and end <= NOW
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        add_event(world.goals["reopen"], "status_change", "Fell behind", start + DAY, "at_risk", "off_track")
        add_event(world.goals["faster"], "measurement", "New measurement: 70", start + 2 * DAY)
        add_event(world.goals["faster"], "check_in", "Too early", start - DAY)  # the week before
        add_event(world.goals["faster"], "check_in", "Too late", end)  # this week
        created = digests.create_weekly(NOW)
        assert sorted(d.user_id for d in created) == sorted(world.users.values())
        assert digests.create_weekly(NOW + DAY) == []  # the same week again: nothing new
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Digest)) == 4
        body = next(d.body for d in created if d.user_id == world.users["owner"])
        assert body["counts"] == {"status_change": 1, "measurement": 1}
        assert [e["summary"] for e in body["events"]] == ["New measurement: 70", "Fell behind"]
        assert [e["mine"] for e in body["events"]] == [False, True]  # the owner owns "reopen"
        assert body["statuses"] == {"off_track": 1, "at_risk": 1, "on_track": 1, "achieved": 1}
        subject, text = digests.mail_text(created[0], "Alpha Services", "https://x.example/d")
        assert subject == "Weekly goals digest: 1 status change, 1 new measurement"
        assert "Fell behind [At risk → Off track]" in text and "https://x.example/d" in text
        mine = next(d.id for d in created if d.user_id == world.users["viewer"])
        others = next(d.id for d in created if d.user_id == world.users["owner"])
        db.session.remove()

    client = viewer_client(make_client, tenant_a)
    listing = client.get(f"/o/{world.slug}/dashboard/digests").get_data(as_text=True)
    assert f"/dashboard/digests/{mine}" in listing and f"/dashboard/digests/{others}" not in listing
    assert "1 status change, 1 new measurement" in listing
    one = client.get(f"/o/{world.slug}/dashboard/digests/{mine}")
    assert one.status_code == 200
    text = one.get_data(as_text=True)
    assert "Fell behind" in text and "Fewer reopened repairs" in text and "your goal" not in text
    assert client.get(f"/o/{world.slug}/dashboard/digests/{others}").status_code == 404  # a colleague's


def test_the_scheduler_enqueues_each_period_once(app, world, tenant_a, tenant_b, redis_url):
    from redis import Redis
    from rq import Queue

    from worker.scheduler import tick

    wednesday = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
    with app.app_context():
        first = tick(wednesday)
        # The goals' sweep once a day for every organisation; a digest run per organisation and week.
        assert sorted(line.split(":")[0] for line in first) == [
            "daily-sweep",
            "weekly-digests",
            "weekly-digests",
        ]
        assert tick(wednesday) == [] and tick(wednesday + timedelta(hours=6)) == []  # same day, same week
        assert [line.split(":")[0] for line in tick(wednesday + DAY)] == ["daily-sweep"]
        next_week = tick(wednesday + 7 * DAY)
        assert sorted(line.split(":")[0] for line in next_week) == [
            "daily-sweep",
            "weekly-digests",
            "weekly-digests",
        ]
    jobs = Queue("default", connection=Redis.from_url(redis_url)).jobs
    weekly = [job for job in jobs if job.func_name == "worker.jobs.dashboard.weekly_digests"]
    assert sorted(job.meta["organisation_id"] for job in weekly) == sorted(
        [tenant_a.organisation_id, tenant_b.organisation_id] * 2
    )


def test_the_weekly_job_twice_makes_one_digest_each(app, world, tenant_a):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import Digest
    from worker.jobs.dashboard import weekly_digests

    with app.app_context():
        assert weekly_digests(organisation_id=tenant_a.organisation_id).startswith(
            "4 digests created, 0 mails"
        )
        assert weekly_digests(organisation_id=tenant_a.organisation_id).startswith("0 digests created")
    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Digest)) == 4
        db.session.remove()
