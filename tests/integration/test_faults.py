"""Faults under real processes (gunicorn, an RQ worker, PostgreSQL, a Redis of the test's own):

- Redis restarted while the app runs: pages keep answering (never a 500), uploads made meanwhile are
  kept, the user is told that their reading waits, and once Redis is back the reconciler queues them and
  they are mined. The Redis here keeps nothing across the restart, so jobs it held are lost too.
- PostgreSQL connections dropped (pg_terminate_backend on the app role's connections, as the owner) and
  refused for a moment: answers are 503 "try again" pages or API errors, never 500, and the app recovers
  on its own.
- Two users saving the same step 100 times each, at the same time, each with the version they last saw:
  every save succeeds or is refused with a 409 conflict; the versions and the stored value show that no
  successful save was lost.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from redis import Redis

from tests.integration.test_eventlogs import _token, _upload, _wait
from tests.integration.test_worker import _session_for
from tests.servers import rq_worker, stack_env, web_server
from tests.support import SMALL_JOURNEY, csrf_token
from webapp.embedded_redis import free_port, redis_server_binary

# A hammering thread that dies (a connection error, a failed login) fails the test instead of thinning it.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")

CSV = b"case,activity,time\n" + b"".join(
    f"{c},Logged,2024-01-0{1 + c % 5}T10:00:00\n{c},Solved,2024-01-0{1 + c % 5}T12:00:00\n".encode()
    for c in range(1, 21)
)


# --- a Redis of our own, stopped and started on one port -----------------------------------------------


class RedisProcess:
    """redis-server on 127.0.0.1:`port`, without persistence (a restart forgets every job)."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir, self.port, self.process = data_dir, port, None
        data_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or redis_server_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while _redis_down(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _redis_down(port: int) -> bool:
    try:
        Redis(port=port, socket_connect_timeout=0.2).ping()
    except Exception:
        return True
    return False


@pytest.mark.postgres
def test_redis_restarts_while_the_app_runs(app, app_config, tenant_a, tmp_path):
    port = free_port()
    env = stack_env(
        app_config,
        REDIS_URL=f"redis://127.0.0.1:{port}/0",
        MINING_HEARTBEAT_STALE_S="10",
        RECONCILE_EVERY_S="1",
    )
    token = _token(app, tenant_a)
    slug = tenant_a.slug
    redis = RedisProcess(tmp_path / "redis", port)
    redis.start()
    try:
        with web_server(env) as base:
            editor = _session_for(base, tenant_a.emails["editor"])
            journey = requests.post(
                f"{base}/api/v1/journeys",
                json=SMALL_JOURNEY,
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            ).json()["id"]
            redis.stop()
            assert _redis_down(port)

            # Pages, partials, a login and the API answer as usual; only readiness says Redis is away.
            pages = [
                f"/o/{slug}/",
                f"/o/{slug}/journeys",
                f"/o/{slug}/journeys/{journey}",
                f"/o/{slug}/journeys/{journey}/board",
                f"/o/{slug}/eventlogs",
                f"/o/{slug}/goals",
                f"/o/{slug}/dashboard",
                f"/o/{slug}/members",
                f"/o/{slug}/inbox",
            ]
            for page in pages:
                response = editor.get(base + page)
                assert response.status_code == 200, f"{page} answered {response.status_code}"
            presence = editor.get(
                f"{base}/o/{slug}/journeys/{journey}/presence", headers={"HX-Request": "true"}
            )
            assert presence.status_code in (200, 503), presence.status_code  # who else is here lives in Redis
            assert _session_for(base, tenant_a.emails["viewer"]).get(f"{base}/o/{slug}/").status_code == 200
            assert requests.get(f"{base}/readyz", timeout=30).json()["redis"] == "unavailable"

            # An upload through the form is kept, and the user is told its reading waits.
            form = editor.get(f"{base}/o/{slug}/eventlogs").text
            uploaded = editor.post(
                f"{base}/o/{slug}/eventlogs",
                data={"name": "During the outage", "csrf_token": csrf_token(form)},
                files={"file": ("outage.csv", CSV)},
            )
            assert uploaded.status_code == 200 and re.search(r"/eventlogs/\d+$", uploaded.url), (
                uploaded.status_code
            )
            assert "Background work is paused" in uploaded.text and "The file is saved" in uploaded.text
            form_log = int(uploaded.url.rsplit("/", 1)[1])
            # An upload through the API, with its mapping, is kept and says so too.
            source = tmp_path / "api-outage.csv"
            source.write_bytes(CSV)
            answer = _upload(
                base, token, source, case_column="case", activity_column="activity", timestamp_column="time"
            )
            assert answer.status_code == 202 and "paused" in answer.json()["message"]
            api_log = answer.json()["id"]

            # Redis comes back on the same port, empty; a worker starts.
            redis.start()
            with rq_worker(env):
                mined = _wait(base, token, api_log, timeout_s=90)
                assert mined["status"] == "finished", mined
                assert mined["summary"]["cases"] == 20 and mined["summary"]["events"] == 40
                # The form's upload was read; its mapping is confirmed as usual and it is mined.
                deadline = time.monotonic() + 60
                while "Confirm" not in (page := editor.get(f"{base}/o/{slug}/eventlogs/{form_log}").text):
                    assert time.monotonic() < deadline, "the upload made during the outage was never read"
                    time.sleep(0.5)
                confirmed = editor.post(
                    f"{base}/o/{slug}/eventlogs/{form_log}/mapping",
                    data={
                        "case": "case",
                        "activity": "activity",
                        "timestamp": "time",
                        "csrf_token": csrf_token(page),
                    },
                )
                assert confirmed.status_code == 200
                assert _wait(base, token, form_log, timeout_s=90)["status"] == "finished"
    finally:
        redis.stop()


# --- PostgreSQL connections dropped and refused ----------------------------------------------------------


def _owner_engine(app_config):
    return sa.create_engine(
        app_config["DATABASE_MIGRATION_URL"], poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
    )


def _terminate_app_connections(app_config) -> int:
    """pg_terminate_backend on the app role's connections to this database only (as the owner), waiting
    (up to 5 s each) until each backend has gone: without the timeout it only signals, and a request
    right after could still find the connection alive at checkout and lose it mid-statement."""
    engine = _owner_engine(app_config)
    with engine.connect() as connection:
        killed = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE usename = :role AND datname = current_database() AND pid <> pg_backend_pid()"
            ),
            {"role": app_config["DATABASE_APP_ROLE"]},
        ).scalar()
    engine.dispose()
    return killed


@contextmanager
def _connections_refused(app_config):
    """The app role may not connect to this database (only this one) for the duration."""
    engine = _owner_engine(app_config)
    role = app_config["DATABASE_APP_ROLE"]
    with engine.connect() as connection:
        database = connection.execute(sa.text("SELECT current_database()")).scalar()
        connection.execute(sa.text(f'REVOKE CONNECT ON DATABASE "{database}" FROM PUBLIC, {role}'))
        try:
            assert not connection.execute(
                sa.text("SELECT has_database_privilege(:role, current_database(), 'CONNECT')"), {"role": role}
            ).scalar()
            _terminate_app_connections(app_config)
            yield
        finally:
            connection.execute(sa.text(f'GRANT CONNECT ON DATABASE "{database}" TO PUBLIC'))
    engine.dispose()


def _assert_try_again(response, what: str) -> None:
    assert response.status_code == 503, f"{what} answered {response.status_code}"
    assert response.headers.get("Retry-After"), what
    if "/api/" in what:
        assert response.json()["error"]["code"] == "unavailable", what
    else:
        assert "Try again in a moment" in response.text and "try again" in response.text, what


@pytest.mark.postgres
def test_dropped_database_connections_answer_503_then_recover(app, app_config, tenant_a):
    token = _token(app, tenant_a)
    env = stack_env(app_config)
    slug = tenant_a.slug
    with web_server(env) as base:
        editor = _session_for(base, tenant_a.emails["editor"])
        api = {"Authorization": f"Bearer {token}"}
        urls = [
            f"/o/{slug}/",
            f"/o/{slug}/journeys",
            f"/o/{slug}/eventlogs",
            f"/o/{slug}/members",
            "/api/v1/me",
        ]

        def get(url):
            return editor.get(base + url, headers=api if url.startswith("/api/") else {}, timeout=30)

        for url in urls:
            assert get(url).status_code == 200, url
        # Killed while idle in the pool: the next checkout's ping notices, nobody else does.
        assert _terminate_app_connections(app_config) >= 1
        for url in urls:
            assert get(url).status_code == 200, url

        # Killed again and again under load: each answer is the page or a 503 "try again", never a 500.
        statuses: list[tuple[str, int, str]] = []
        stop = threading.Event()

        def hammer(session):
            while not stop.is_set():
                for url in urls:
                    response = session.get(
                        base + url, headers=api if url.startswith("/api/") else {}, timeout=30
                    )
                    statuses.append((url, response.status_code, response.text))

        viewers = [_session_for(base, tenant_a.emails["viewer"]) for _ in range(3)]
        threads = [threading.Thread(target=hammer, args=(viewer,)) for viewer in viewers]
        for thread in threads:
            thread.start()
        for _ in range(8):
            time.sleep(0.25)
            _terminate_app_connections(app_config)
        stop.set()
        for thread in threads:
            thread.join(60)
        assert len(statuses) > 20
        for url, status, text in statuses:
            assert status in (200, 503), f"{url} answered {status}"
            if status == 503:
                assert "try again" in text.lower(), url

        # Refused for a moment: every answer says to try again, pages and API alike.
        with _connections_refused(app_config):
            for url in urls:
                _assert_try_again(get(url), url)
            login_page = requests.get(base + "/login", timeout=30)
            assert login_page.status_code == 200  # a page that needs no database still works
            signed_out = requests.post(
                base + "/login",
                data={"email": "x@y.example", "password": "x", "csrf_token": csrf_token(login_page.text)},
                cookies=login_page.cookies,
                timeout=30,
            )
            _assert_try_again(signed_out, "POST /login")
            assert requests.get(base + "/readyz", timeout=30).status_code == 503

        # And it recovers on its own.
        deadline = time.monotonic() + 10
        while get(urls[0]).status_code != 200:
            assert time.monotonic() < deadline, "the app did not recover within 10 s"
            time.sleep(0.2)
        for url in urls:
            assert get(url).status_code == 200, url


# --- two users saving one step --------------------------------------------------------------------------

SAVES_EACH = 100


def _step_version(html: str, step_id: int) -> int | None:
    match = re.search(rf'id="step-{step_id}"[^>]*data-version="(\d+)"', html)
    return int(match.group(1)) if match else None


@pytest.mark.postgres
def test_two_users_saving_one_step_lose_nothing_without_a_conflict(app, app_config, tenant_a):
    token = _token(app, tenant_a)
    env = stack_env(app_config)
    slug = tenant_a.slug
    owner_engine = _owner_engine(app_config)
    with web_server(env) as base:
        journey = requests.post(
            f"{base}/api/v1/journeys",
            json=SMALL_JOURNEY,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["id"]
        with owner_engine.connect() as connection:
            step_id, initial = connection.execute(
                sa.text(
                    "SELECT s.id, s.version FROM steps s JOIN stages st ON st.id = s.stage_id "
                    "WHERE st.journey_id = :j ORDER BY s.id LIMIT 1"
                ),
                {"j": journey},
            ).one()
        url = f"{base}/o/{slug}/journeys/{journey}/steps/{step_id}"
        results: dict[str, list] = {"owner": [], "editor": []}
        start = threading.Barrier(2)

        def save_many(who: str, email: str):
            session = _session_for(base, email)
            page = session.get(f"{base}/o/{slug}/journeys/{journey}").text
            token = csrf_token(page)
            version = _step_version(page, step_id)
            start.wait(30)
            for attempt in range(SAVES_EACH):
                value = f"{who} save {attempt}"
                response = session.post(
                    url,
                    data={"name": value, "expected_version": str(version), "csrf_token": token},
                    headers={"HX-Request": "true", "X-CSRFToken": token},
                    timeout=30,
                )
                if response.status_code == 200:
                    saved = _step_version(response.text, step_id)
                    results[who].append(("saved", value, version, saved))
                    version = saved
                elif response.status_code == 409:
                    stored = re.search(r'name="expected_version" value="(\d+)"', response.text)
                    results[who].append(("conflict", value, version, int(stored.group(1))))
                    version = int(stored.group(1))  # what the conflict shows is what the user saw last
                else:
                    results[who].append(("other", value, version, response.status_code))

        threads = [
            threading.Thread(target=save_many, args=("owner", tenant_a.emails["owner"])),
            threading.Thread(target=save_many, args=("editor", tenant_a.emails["editor"])),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)
    with owner_engine.connect() as connection:
        final_name, final_version = connection.execute(
            sa.text("SELECT name, version FROM steps WHERE id = :s"), {"s": step_id}
        ).one()
        history = connection.execute(
            sa.text(
                "SELECT count(*) FROM journey_changes "
                "WHERE entity = 'step' AND entity_id = :s AND action = 'update'"
            ),
            {"s": step_id},
        ).scalar()
    owner_engine.dispose()
    outcomes = results["owner"] + results["editor"]
    others = [o for o in outcomes if o[0] == "other"]
    assert others == [], f"saves neither stored nor refused: {others[:5]}"
    saves = [o for o in outcomes if o[0] == "saved"]
    conflicts = [o for o in outcomes if o[0] == "conflict"]
    assert len(saves) + len(conflicts) == 2 * SAVES_EACH
    assert saves and conflicts, "the two users never met: the test proved nothing"
    # Each successful save was based on the version before it and made the next one: no save was
    # written over without a conflict shown.
    assert sorted(new for _, _, _, new in saves) == list(range(initial + 1, initial + len(saves) + 1))
    assert all(new == based_on + 1 for _, _, based_on, new in saves)
    assert final_version == initial + len(saves)
    assert final_name == max(saves, key=lambda save: save[3])[1]  # the last successful write is stored
    assert history == len(saves)  # and each one is in the history
