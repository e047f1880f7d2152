"""Benchmark the journey map editor against the issue's budget, on PostgreSQL with row-level security.

Budget: a journey of 20 stages x 200 steps renders in under 150 ms of server time; a step edit round
trip (the inline form's POST, answered with that step's card and the emotion curve) takes under 50 ms
of server time.
"200 steps" is the whole journey (10 per stage): a journey holds at most 2,000 steps.

What it does:

1. (Re)creates the scratch database `journeylens_bench` on the PostgreSQL server given by --server,
   migrates it with flask_migrate.upgrade as the owner (the role in --server), then runs the app as the
   RLS-bound login role `journeylens_app`, as tests/conftest.py does (--as-owner runs it as the owner).
2. Builds the journey through the services (an organisation, its owner, then import_json of 20 stages,
   the four blueprint lanes, 200 steps with every field filled and a note on every fourth step).
3. Logs in through the real form with Flask's test client and times, after a warm-up:
   - N renders of the editor page (GET /o/<slug>/journeys/<id>);
   - N step edits as the inline form sends them (POST .../steps/<id> with HX-Request and the CSRF
     header; the answer is the step's card with the emotion curve out of band);
   - N live-update polls with nothing changed (204) and N that get the board fragment.
   Server time is measured around the WSGI app (request in, whole body out); the client's total is
   shown beside it, and the SQL statements one request sends (median).

    .venv/bin/python bench/journeys.py                       # 50 of each, prints the table
    .venv/bin/python bench/journeys.py --n 200 --write-results
    .venv/bin/python bench/journeys.py --gc-freeze           # gc.freeze() after start-up (see below)
    .venv/bin/python bench/journeys.py --profile             # pyinstrument over 10 renders
    .venv/bin/python bench/journeys.py --sql                 # the statements of one edit and one poll

--gc-freeze moves everything allocated at start-up into the permanent generation, as a gunicorn
post_fork hook calling gc.freeze() would: without it, a full collection now and then scans the whole
start-up heap and adds ~80 ms to that one request, which is what the p95 of the plain run shows.
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
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("JOURNEYLENS_INSTANCE", tempfile.mkdtemp(prefix="journeylens-bench-"))
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")

import sqlalchemy as sa  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
DATABASE = "journeylens_bench"
APP_ROLE = "journeylens_app"
PASSWORD = "correct horse battery staple 42"  # noqa: S105 (a scratch database's bench user)
BUDGET_RENDER_MS = 150.0
BUDGET_EDIT_MS = 50.0
LANES = ["Actions", "Frontstage", "Backstage", "Support processes"]
CHANNELS = ["web", "email", "phone", "chat", "in_person", "app", "self_service_portal", "other"]


# --- the database ------------------------------------------------------------------------------------


def database_urls(server: str) -> tuple[str, str]:
    """(owner URL, app-role URL) of the scratch database on `server`."""
    server = re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg://", server.rstrip("/"))
    parts = urlsplit(server)
    owner = urlunsplit(parts._replace(path=f"/{DATABASE}"))
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return owner, urlunsplit(parts._replace(netloc=f"{APP_ROLE}@{host}", path=f"/{DATABASE}"))


def fresh_database(owner_url: str) -> str:
    """Drop and create the scratch database; make sure the app role can log in. Returns the server version."""
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


def migrate(app) -> None:
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()


# --- the journey -------------------------------------------------------------------------------------


def journey_data(stages: int, steps: int) -> dict:
    """A journey in the export format: `stages` stages, the blueprint lanes, `steps` steps spread evenly."""
    data = {
        "title": f"Bench journey: {stages} stages x {steps} steps",
        "kind": "customer",
        "state": "current",
        "status": "draft",
        "scenario": "A customer reports a broken laptop and waits for it to be fixed.",
        "tags": ["bench"],
        "lanes": [{"name": lane} for lane in LANES],
        "stages": [{"name": f"Stage {s + 1}", "steps": []} for s in range(stages)],
    }
    for number in range(steps):
        stage = data["stages"][number % stages]
        step = {
            "name": f"Step {number + 1}: the customer does something worth drawing",
            "lane": LANES[(number // stages) % len(LANES)],
            "channel": CHANNELS[number % len(CHANNELS)],
            "emotion": (number % 7) - 3,
            "moment_of_truth": number % 13 == 0,
            "expected_duration_s": 900 * (1 + number % 8),
            "description": "What happens here, in a sentence or two, as a workshop would write it. " * 2,
            "touchpoint": "Service portal",
            "owner_team": "Service desk",
            "notes": [],
        }
        if number % 4 == 0:
            step["notes"].append({"kind": "pain_point", "text": "Waits without knowing what happens next."})
        stage["steps"].append(step)
    return data


def build(app, stages: int, steps: int) -> tuple[str, int, str]:
    """An organisation, its owner and the journey; returns (slug, journey id, owner email)."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.services import Actor, accounts, journeys

    email = "owner@bench.example"
    with app.test_request_context():
        owner = accounts.create_user(email, PASSWORD)
        organisation = accounts.create_organisation("Bench Service Desk", owner, Actor(owner.id))
        tenancy.activate(organisation.id, owner.id)
        journey = journeys.import_json(journey_data(stages, steps), Actor(owner.id))
        board = journeys.board(journey.id)
        assert len(board.stages) == stages and len(board.steps) == steps
        slug, journey_id = organisation.slug, journey.id
        db.session.remove()
    return slug, journey_id, email


# --- timing ------------------------------------------------------------------------------------------


from timing import HEADER, Series, ServerTimer  # noqa: E402  (bench/ is on sys.path when run)


def csrf_token(html: str) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)


class Session:
    def __init__(self, app, timer: ServerTimer, email: str) -> None:
        self.client, self.timer = app.test_client(), timer
        page = self.client.get("/login").get_data(as_text=True)
        answer = self.client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_token(page)},
            follow_redirects=True,
        )
        assert answer.status_code == 200, answer.status_code
        self.token = csrf_token(answer.get_data(as_text=True))

    def timed(self, method: str, url: str, expect: int, **kwargs) -> tuple[float, float, bytes]:
        started = time.perf_counter()
        response = self.client.open(url, method=method, **kwargs)
        client_s = time.perf_counter() - started
        assert response.status_code == expect, f"{method} {url}: {response.status_code}"
        return self.timer.last_s * 1000, client_s * 1000, response.get_data()

    def statements(self) -> int:
        """The SQL statements the last request sent."""
        return self.timer.last_statements


def step_form(number: int, step_id: int, version: int) -> dict:
    """What the inline Edit form of a step posts."""
    return {
        "expected_version": str(version),
        "moment_of_truth_present": "1",
        "name": f"Step renamed in round {number}",
        "description": "Edited in the benchmark.",
        "channel": CHANNELS[number % len(CHANNELS)],
        "touchpoint": "Service portal",
        "owner_team": "Service desk",
        "emotion": str((number % 7) - 3),
        "expected_duration_h": "0.5",
    }


def run(app, slug: str, journey_id: int, email: str, n: int, warmup: int) -> list[Series]:
    from webapp import tenancy
    from webapp.services import journeys

    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    with app.app_context():
        from webapp.extensions import db

        timer.count_statements(db.engine)
    session = Session(app, timer, email)
    url = f"/o/{slug}/journeys/{journey_id}"
    hx = {"HX-Request": "true", "X-CSRFToken": session.token}
    with app.app_context():
        from webapp.models import Organisation

        organisation = db.session.scalar(sa.select(Organisation).where(Organisation.slug == slug))
        tenancy.activate(organisation.id)
        steps = [(s.id, s.version) for s in journeys.board(journey_id).steps]
        db.session.remove()
    versions = dict(steps)
    step_ids = [step_id for step_id, _ in steps]

    def series(name, budget, make_request, count):
        for index in range(warmup):
            make_request(-1 - index)
        server, client, statements, size = [], [], [], 0
        for index in range(count):
            server_ms, client_ms, body = make_request(index)
            server.append(server_ms)
            client.append(client_ms)
            statements.append(session.statements())
            size = len(body)
        return Series(name, server, client, budget, size, statements)

    def render(_index):
        return session.timed("GET", url, 200)

    def edit(index):
        step_id = step_ids[(index * 37) % len(step_ids)]  # spread over stages and lanes
        result = session.timed(
            "POST",
            f"{url}/steps/{step_id}",
            200,
            data=step_form(index, step_id, versions[step_id]),
            headers=hx,
        )
        versions[step_id] += 1
        return result

    def since() -> int:
        body = session.client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
        return int(re.search(r'data-since="(\d+)"', body).group(1))

    results = [series("editor page GET (full page)", BUDGET_RENDER_MS, render, n)]
    results.append(series("step edit POST (HX, answers step + curve)", BUDGET_EDIT_MS, edit, n))
    current = since()
    results.append(
        series(
            "live poll, nothing changed (204)",
            None,
            lambda _i: session.timed(
                "GET", f"{url}/board?since={current}", 204, headers={"HX-Request": "true"}
            ),
            n,
        )
    )
    results.append(
        series(
            "live poll, changed (board fragment)",
            None,
            lambda _i: session.timed("GET", f"{url}/board?since=0", 200, headers={"HX-Request": "true"}),
            n,
        )
    )
    app.wsgi_app = timer.wsgi_app
    return results


def show_sql(app, slug: str, journey_id: int, email: str) -> None:
    """The SQL statements of one step edit and of one live poll with nothing changed, in order."""
    sent: list[str] = []
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    session = Session(app, timer, email)
    url = f"/o/{slug}/journeys/{journey_id}"
    hx = {"HX-Request": "true", "X-CSRFToken": session.token}
    body = session.client.get(url, headers=hx).get_data(as_text=True)
    step_id, version = map(int, re.search(r'data-step-id="(\d+)" data-version="(\d+)"', body).groups())
    since = int(re.search(r'data-since="(\d+)"', body).group(1))
    with app.app_context():
        from webapp.extensions import db

        def record(_connection, _cursor, statement, *_args) -> None:
            sent.append(" ".join(statement.split())[:150])

        sa.event.listen(db.engine, "before_cursor_execute", record)
    for label, method, path, expect, kwargs in (
        ("step edit", "POST", f"{url}/steps/{step_id}", 200, {"data": step_form(0, step_id, version)}),
        ("live poll, nothing changed", "GET", f"{url}/board?since={since + 1}", 204, {}),
    ):
        sent.clear()
        server_ms, _, _ = session.timed(method, path, expect, headers=hx, **kwargs)
        print(f"--- {label}: {len(sent)} statements, {server_ms:.1f} ms ---")
        print("\n".join(sent))
    app.wsgi_app = timer.wsgi_app


def profile(app, slug: str, journey_id: int, email: str) -> None:
    """pyinstrument over 10 renders of the editor page, then over 10 step edits."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        sys.exit("--profile needs pyinstrument: .venv/bin/pip install pyinstrument")
    timer = ServerTimer(app.wsgi_app)
    app.wsgi_app = timer
    session = Session(app, timer, email)
    url = f"/o/{slug}/journeys/{journey_id}"
    hx = {"HX-Request": "true", "X-CSRFToken": session.token}
    body = session.client.get(url, headers=hx).get_data(as_text=True)
    step_id, version = map(int, re.search(r'data-step-id="(\d+)" data-version="(\d+)"', body).groups())
    session.timed("GET", url, 200)
    for label, count in (("renders", 10), ("edits", 10)):
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for index in range(count):
            if label == "renders":
                session.timed("GET", url, 200)
            else:
                session.timed(
                    "POST", f"{url}/steps/{step_id}", 200, data=step_form(index, step_id, version), headers=hx
                )
                version += 1
        profiler.stop()
        print(f"--- {count} {label} ---")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
    app.wsgi_app = timer.wsgi_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_SERVER))
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n", type=int, default=50, help="timed requests of each kind")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--as-owner", action="store_true", help="run the app as the owner (RLS bypassed)")
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() before timing")
    parser.add_argument("--profile", action="store_true", help="pyinstrument over 10 renders, no table")
    parser.add_argument("--sql", action="store_true", help="SQL of one edit and one poll, no table")
    parser.add_argument("--write-results", action="store_true", help="add the table to RESULTS.md")
    args = parser.parse_args(argv)

    owner_url, app_url = database_urls(args.server)
    version = fresh_database(owner_url)
    migrate(make_app(app_url, owner_url))
    app = make_app(owner_url if args.as_owner else app_url, owner_url)
    with app.app_context():
        from webapp.database import rls_bypassed
        from webapp.extensions import db

        with db.engine.connect() as connection:
            role = connection.execute(sa.text("SELECT current_user")).scalar()
            bypassed = rls_bypassed(connection)
    slug, journey_id, email = build(app, args.stages, args.steps)
    if args.profile:
        profile(app, slug, journey_id, email)
        return
    if args.sql:
        show_sql(app, slug, journey_id, email)
        return

    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    results = run(app, slug, journey_id, email, args.n, args.warmup)
    title = (
        f"Journey of {args.stages} stages x {args.steps} steps "
        f"({len(LANES)} lanes, {args.steps // 4} notes); "
        f"PostgreSQL {version.split()[0]} as {role} (RLS {'bypassed' if bypassed else 'in force'}); "
        f"Flask test client, {args.n} timed requests each after {args.warmup} warm-up"
        f"{'; gc.freeze() after start-up' if args.gc_freeze else ''}"
    )
    table = "\n".join([title, "", HEADER, "-" * len(HEADER), *(series.row() for series in results)])
    print(table)
    missed = [s.name for s in results if s.budget_ms and Series.p95(s.server_ms) >= s.budget_ms]
    print("\nbudget (p95 of server time):", "missed by " + ", ".join(missed) if missed else "met")
    if args.write_results:
        write_results(table, argv)


def write_results(table: str, argv: list[str] | None) -> None:
    command = " ".join(["python", "bench/journeys.py", *(argv if argv is not None else sys.argv[1:])])
    machine = (
        f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()[0]:.1f} "
        "(the machine is shared with other engineers' test runs)"
    )
    path = REPO / "bench" / "RESULTS.md"
    results = path.read_text(encoding="utf-8") if path.exists() else ""
    run = f"\n```\n.venv/bin/{command}\n```\n\n{machine}\n\n```\n{table}\n```\n"
    if "\n# Journeys\n" not in f"\n{results}":
        run = (
            "\n# Journeys\n\n"
            "The journey editor against the issue's budget (a 20 stages x 200 steps map renders in under\n"
            "150 ms of server time; a step edit round trip takes under 50 ms on PostgreSQL). Server time is\n"
            "measured around the WSGI app, from the request's arrival to the end of its body; `ok` compares\n"
            "the p95 with the budget. Commands from the repo root, PostgreSQL on 127.0.0.1:5432.\n" + run
        )
        results += run
    else:
        # Other benchmarks have sections after this one: the run goes at the end of "# Journeys".
        start = f"\n{results}".index("\n# Journeys\n")
        following = results.find("\n# ", start + 1)
        end = len(results) if following < 0 else following + 1
        results = results[:end].rstrip("\n") + "\n" + run + ("\n" if following >= 0 else "") + results[end:]
    path.write_text(results, encoding="utf-8")
    print("added to the Journeys section of bench/RESULTS.md")


if __name__ == "__main__":
    main()
