"""Benchmark the executive dashboard against the issue's budget, on PostgreSQL with row-level security.

Budget: the dashboard of 200 goals takes under 200 ms of server time.

What it does:

1. (Re)creates the scratch database `journeylens_bench_dashboard` on the PostgreSQL server given by
   --server, migrates it as the owner (the role in --server), then runs the app as the RLS-bound login
   role `journeylens_app`, as tests/conftest.py does.
2. Builds an organisation with an owner and a viewer (the executive), --journeys journeys (half customer,
   half employee) each linked to --logs mined logs with a finished measurement (conformance, the log's
   median case duration), and --goals goals spread over them, each with --measurements measurements,
   a check-in on every other goal, and a week of goal events (a status change, a measurement and a
   check-in per goal). Goals are rows written directly, with their stored figures filled in, as the
   goals service leaves them. Then ANALYZE, as autovacuum would soon after (see `analyze`).
3. Logs the viewer in through the real form with Flask's test client and times, after a warm-up:
   - the dashboard page (GET /o/<slug>/dashboard: 200 cards with sparklines, the portfolio, what
     changed since the previous visit; each open also updates the viewer's visit row);
   - the same with a filter, as htmx asks for it (the body fragment);
   - the goals CSV and the measurements CSV.
   Server time is measured around the WSGI app (request in, whole body out); the client's total and the
   SQL statements per request are shown beside it.

    .venv/bin/python bench/dashboard.py                      # 50 of each, prints the table
    .venv/bin/python bench/dashboard.py --n 100 --write-results
    .venv/bin/python bench/dashboard.py --profile            # pyinstrument over 10 dashboard renders
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("JOURNEYLENS_INSTANCE", tempfile.mkdtemp(prefix="journeylens-bench-"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")

import sqlalchemy as sa  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "journeylens_bench_dashboard"
APP_ROLE = "journeylens_app"
PASSWORD = "correct horse battery staple 42"  # noqa: S105 (a scratch database's bench user)
BUDGET_MS = 200.0
STATUSES = ("on_track", "at_risk", "off_track", "achieved", "missed", "no_data")
KPIS = ("median_case_duration_s", "conformance_share", "rework_share", "cases", "nps")


# --- the database ------------------------------------------------------------------------------------


def database_urls(server: str) -> tuple[str, str]:
    """(owner URL, app-role URL) of the scratch database on `server`."""
    server = re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg://", server.rstrip("/"))
    parts = urlsplit(server)
    owner = urlunsplit(parts._replace(path=f"/{DATABASE}"))
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return owner, urlunsplit(parts._replace(netloc=f"{APP_ROLE}@{host}", path=f"/{DATABASE}"))


def fresh_database(owner_url: str) -> str:
    """Drop and create the scratch database; make sure the app role can log in. Returns the version."""
    parts = urlsplit(owner_url)
    assert parts.path == f"/{DATABASE}", "the benchmark only ever drops its own scratch database"
    admin = sa.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        connection.execute(sa.text(f'CREATE DATABASE "{DATABASE}"'))
        role = connection.execute(
            sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
        ).scalar()
        if role is None:
            connection.execute(sa.text(f"CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"))
        elif not role:
            connection.execute(sa.text(f"ALTER ROLE {APP_ROLE} LOGIN"))
        version = connection.execute(sa.text("SHOW server_version")).scalar()
    admin.dispose()
    return version


def make_app(app_url: str, owner_url: str):
    from webapp import create_app

    config = {
        "SQLALCHEMY_DATABASE_URI": app_url,
        "DATABASE_MIGRATION_URL": owner_url,
        "DATABASE_APP_ROLE": APP_ROLE,
        "REDIS_URL": None,
        "RATELIMIT_ENABLED": False,
        "STORAGE_URL": f"file://{os.environ['JOURNEYLENS_INSTANCE']}/uploads",
    }
    return create_app(config, env="development")


def analyze(owner_url: str) -> None:
    """Planner statistics, as autovacuum gathers them in a live database soon after rows arrive. Without
    them PostgreSQL guesses one row per table and nests loops: the filtered dashboard's event count then
    takes ~300 ms instead of under 1 ms."""
    engine = sa.create_engine(owner_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
    engine.dispose()


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


# --- the organisation's goals ------------------------------------------------------------------------


@dataclass
class Built:
    slug: str
    viewer_email: str
    goals: int
    measurements: int
    events: int
    journeys: int
    snapshots: int


def build(app, journeys: int, goals: int, measurements: int, logs: int) -> Built:
    """An organisation with journeys, measured logs, goals, measurements, check-ins and a week of events."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Role
    from webapp.models.eventlogs import EventLog, LogSummary, MiningRun
    from webapp.models.goals import CheckIn, DashboardVisit, Goal, GoalEvent, GoalMeasurement
    from webapp.models.journeys import Journey
    from webapp.models.overlay import JourneyLogLink, MappingVersion, MeasurementSnapshot
    from webapp.services import Actor, accounts

    now = datetime.now(UTC)
    with app.test_request_context():
        owner = accounts.create_user("owner@bench.example", PASSWORD)
        organisation = accounts.create_organisation("Bench Service Desk", owner, Actor(owner.id))
        tenancy.activate(organisation.id, owner.id)
        members = [owner.id]
        for number in range(5):
            user = accounts.create_user(f"manager{number}@bench.example", PASSWORD)
            accounts.add_member(user, Role.EDITOR, Actor(owner.id))
            members.append(user.id)
        viewer = accounts.create_user("executive@bench.example", PASSWORD)
        accounts.add_member(viewer, Role.VIEWER, Actor(owner.id))
        db.session.commit()

        journey_ids = []
        for number in range(journeys):
            journey = Journey(
                title=f"Journey {number + 1:02d}: {'customer' if number % 2 == 0 else 'employee'} service",
                kind="customer" if number % 2 == 0 else "employee",
                owner_id=owner.id,
            )
            db.session.add(journey)
            db.session.flush()
            journey_ids.append(journey.id)
        snapshots = 0
        for journey_number, journey_id in enumerate(journey_ids):
            for log_number in range(logs):
                log = EventLog(
                    name=f"Log {journey_number}-{log_number}",
                    filename="log.csv",
                    file_format="csv",
                    storage_key=f"bench/{journey_number}-{log_number}",
                    size_bytes=1,
                    sha256="0" * 64,
                    status="finished",
                )
                db.session.add(log)
                db.session.flush()
                run = MiningRun(event_log_id=log.id, status="finished", input_sha256="0" * 64)
                db.session.add(run)
                db.session.flush()
                db.session.add(
                    LogSummary(
                        run_id=run.id,
                        cases=1000,
                        events=7000,
                        activities=20,
                        variants=100,
                        case_duration_median_s=86400.0 * (3 - log_number * 0.3),
                    )
                )
                link = JourneyLogLink(journey_id=journey_id, event_log_id=log.id)
                db.session.add(link)
                db.session.flush()
                version = MappingVersion(link_id=link.id, number=1, activities={})
                db.session.add(version)
                db.session.flush()
                end = now - timedelta(days=30 * (logs - log_number))
                db.session.add(
                    MeasurementSnapshot(
                        journey_id=journey_id,
                        link_id=link.id,
                        event_log_id=log.id,
                        mapping_version_id=version.id,
                        layout=[],
                        definition="bench",
                        status="finished",
                        cases=1000,
                        conformance_share=0.5 + 0.1 * log_number,
                        period_start=end - timedelta(days=30),
                        period_end=end,
                        finished_at=end,
                        details={"case_timelines": {}},
                    )
                )
                snapshots += 1
        db.session.commit()

        goal_rows, measurement_rows, check_ins, event_rows = [], [], [], []
        for number in range(goals):
            status = STATUSES[number % len(STATUSES)]
            goal = Goal(
                title=f"Goal {number + 1:03d}: bring the figure where the business needs it",
                why="Because the business asked for it.",
                owner_id=members[number % len(members)],
                journey_id=journey_ids[number % len(journey_ids)],
                kpi_metric=KPIS[number % len(KPIS)],
                kpi_source="survey" if KPIS[number % len(KPIS)] == "nps" else "event_log",
                direction="lower" if number % 2 == 0 else "higher",
                baseline=100.0,
                target=50.0 if number % 2 == 0 else 150.0,
                start_on=(now - timedelta(days=120)).date(),
                due_on=(now + timedelta(days=60 + number % 90)).date(),
                status=status,
                current_value=80.0,
                progress=0.4,
                expected=0.6,
                last_measured_at=now - timedelta(days=1),
                last_check_in_at=now - timedelta(days=3) if number % 2 == 0 else None,
                watermelon="Rework grew from 5% to 8%" if number % 17 == 0 else None,
            )
            goal_rows.append(goal)
        db.session.add_all(goal_rows)
        db.session.flush()
        for number, goal in enumerate(goal_rows):
            for index in range(measurements):
                measurement_rows.append(
                    GoalMeasurement(
                        goal_id=goal.id,
                        at=now - timedelta(days=7 * (measurements - index)),
                        value=100.0 - index * 1.5 + (index * 7 + number) % 5,
                        source=goal.kpi_source,
                    )
                )
            if number % 2 == 0:
                check_ins.append(
                    CheckIn(
                        goal_id=goal.id,
                        author_id=goal.owner_id,
                        at=now - timedelta(days=3),
                        note="ok",
                        confidence=3,
                    )
                )
            for hours, kind, summary in (
                (70, "status_change", "Status changed"),
                (50, "measurement", "New measurement: 80"),
                (30, "check_in", "Check-in: on plan (3/5)"),
            ):
                event_rows.append(
                    GoalEvent(
                        goal_id=goal.id,
                        kind=kind,
                        summary=summary,
                        at=now - timedelta(hours=hours + number % 10),
                        from_status="on_track" if kind == "status_change" else None,
                        to_status=goal.status if kind == "status_change" else None,
                    )
                )
        db.session.add_all(measurement_rows + check_ins + event_rows)
        # The executive last came four days ago (and not within the last half hour).
        db.session.add(
            DashboardVisit(
                user_id=viewer.id,
                previous_visit_at=now - timedelta(days=8),
                last_visit_at=now - timedelta(days=4),
            )
        )
        db.session.commit()
        built = Built(
            organisation.slug,
            viewer.email,
            len(goal_rows),
            len(measurement_rows),
            len(event_rows),
            len(journey_ids),
            snapshots,
        )
        db.session.remove()
    return built


# --- timing ------------------------------------------------------------------------------------------


from timing import HEADER, Series, ServerTimer  # noqa: E402  (bench/ is on sys.path when run)


class Session:
    """The executive at a browser: logged in through the real form."""

    def __init__(self, app, timer: ServerTimer, email: str) -> None:
        self.client, self.timer = app.test_client(), timer
        page = self.client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
        answer = self.client.post(
            "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}, follow_redirects=True
        )
        assert answer.status_code == 200, answer.status_code

    def timed(self, url: str, **kwargs) -> tuple[float, float, bytes]:
        started = time.perf_counter()
        response = self.client.get(url, **kwargs)
        client_s = time.perf_counter() - started
        assert response.status_code == 200, f"{url}: {response.status_code}"
        return self.timer.last_s * 1000, client_s * 1000, response.get_data()


def run(app, built: Built, n: int, warmup: int) -> list[Series]:
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    with app.app_context():
        from webapp.extensions import db

        timer.count_statements(db.engine)
    session = Session(app, timer, built.viewer_email)
    base = f"/o/{built.slug}/dashboard"
    first = session.client.get(base).get_data(as_text=True)
    shown = len(re.findall(r'class="goal-card ', first))
    lines = len(re.findall(r"<polyline ", first))
    changes = len(re.findall(r"data-change-kind=", first))
    assert shown == built.goals, f"{shown} cards for {built.goals} goals"

    def series(name: str, url: str, budget: float | None, **kwargs) -> Series:
        for _ in range(warmup):
            session.timed(url, **kwargs)
        server, client, statements, size = [], [], [], 0
        for _ in range(n):
            server_ms, client_ms, body = session.timed(url, **kwargs)
            server.append(server_ms)
            client.append(client_ms)
            statements.append(timer.last_statements)
            size = len(body)
        return Series(name, server, client, budget, size, statements)

    results = [
        series(f"dashboard GET, {built.goals} goals (full page)", base, BUDGET_MS),
        series(
            "dashboard filtered by kind (HX fragment)",
            f"{base}?kind=customer",
            BUDGET_MS,
            headers={"HX-Request": "true"},
        ),
        series("goals CSV", f"{base}/goals.csv", None),
        series("measurements CSV", f"{base}/measurements.csv", None),
    ]
    app.wsgi_app = timer.wsgi_app
    print(
        f"page check: {shown} goal cards, {lines} sparklines, "
        f"{changes} changes listed since the previous visit"
    )
    return results


def profile(app, built: Built) -> None:
    """pyinstrument over 10 renders of the dashboard."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    session = Session(app, timer, built.viewer_email)
    url = f"/o/{built.slug}/dashboard"
    session.timed(url)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for _ in range(10):
        session.timed(url)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    app.wsgi_app = timer.wsgi_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_SERVER))
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--journeys", type=int, default=20)
    parser.add_argument("--measurements", type=int, default=20, help="per goal")
    parser.add_argument("--logs", type=int, default=3, help="measured logs per journey")
    parser.add_argument("--n", type=int, default=50, help="timed requests of each kind")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before timing")
    parser.add_argument("--profile", action="store_true", help="pyinstrument over 10 renders, no table")
    parser.add_argument("--write-results", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args(argv)

    owner_url, app_url = database_urls(args.server)
    version = fresh_database(owner_url)
    migrate(make_app(app_url, owner_url))
    app = make_app(app_url, owner_url)
    with app.app_context():
        from webapp.database import rls_bypassed
        from webapp.extensions import db

        with db.engine.connect() as connection:
            role = connection.execute(sa.text("SELECT current_user")).scalar()
            bypassed = rls_bypassed(connection)
    built = build(app, args.journeys, args.goals, args.measurements, args.logs)
    analyze(owner_url)
    if args.profile:
        profile(app, built)
        return
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    results = run(app, built, args.n, args.warmup)
    title = (
        f"{built.goals} goals x {args.measurements} measurements ({built.measurements} rows) across "
        f"{built.journeys} journeys with {built.snapshots} measured logs; {built.events} goal events in the "
        f"last week; PostgreSQL {version.split()[0]} as {role} "
        f"(RLS {'bypassed' if bypassed else 'in force'}); "
        f"Flask test client as a viewer, {args.n} timed requests each after {args.warmup} warm-up"
        f"{'; gc.freeze() after start-up' if args.gc_freeze else ''}"
    )
    table = "\n".join([title, "", HEADER, "-" * len(HEADER), *(series.row() for series in results)])
    print(table)
    missed = [s.name for s in results if s.budget_ms and Series.p95(s.server_ms) >= s.budget_ms]
    print("\nbudget (p95 of server time):", "missed by " + ", ".join(missed) if missed else "met")
    if args.write_results:
        write_results(table, argv)


def write_results(table: str, argv: list[str] | None) -> None:
    command = " ".join(["python", "bench/dashboard.py", *(argv if argv is not None else sys.argv[1:])])
    machine = (
        f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f} "
        "(the machine is shared with other engineers' test runs)"
    )
    path = REPO / "bench" / "RESULTS.md"
    intro = ""
    if "\n# Dashboard\n" not in (path.read_text(encoding="utf-8") if path.exists() else ""):
        intro = (
            "\n# Dashboard\n\n"
            "The executive dashboard against the issue's budget (under 200 ms of server time for 200\n"
            "goals). Server time is measured around the WSGI app, from the request's arrival to the end of\n"
            "its body; `ok` compares the p95 with the budget; SQL is the statements per request (the same\n"
            "whatever the number of goals). The docstring of `bench/dashboard.py` describes the data.\n"
        )
    text = f"{intro}\n```\n.venv/bin/{command}\n```\n\n{machine}\n\n```\n{table}\n```\n"
    with open(path, "a", encoding="utf-8") as results:
        results.write(text)
    print("appended to bench/RESULTS.md")


if __name__ == "__main__":
    main()
