"""Event-log pages through the test client: size limit, unknown types, viewers, and the web process
never loading the miner."""

from __future__ import annotations

import io
import subprocess
import sys

import sqlalchemy as sa

from tests.support import csrf_token, login


def _upload(client, slug, name: str, data: bytes):
    page = client.get(f"/o/{slug}/eventlogs").get_data(as_text=True)
    return client.post(
        f"/o/{slug}/eventlogs",
        data={"csrf_token": csrf_token(page), "file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def _logs(app, tenant):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import EventLog

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        return db.session.scalars(sa.select(EventLog)).all()


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(app, tenant_a, client, tmp_path):
    storage = tmp_path / "uploads"
    app.config.update(MAX_UPLOAD_BYTES=1000, STORAGE_URL=f"file://{storage}")
    login(client, "editor@a.example")
    response = _upload(client, tenant_a.slug, "huge.csv", b"case,activity,time\n" + b"1,A,2024-01-01\n" * 200)
    html = response.get_data(as_text=True)
    assert "larger than the limit" in html
    assert _logs(app, tenant_a) == []
    assert not storage.exists() or not any(p.is_file() for p in storage.rglob("*"))


def test_unknown_file_types_and_empty_files_are_refused_with_reasons(app, tenant_a, client):
    login(client, "editor@a.example")
    assert "Upload CSV or TSV" in _upload(client, tenant_a.slug, "slides.pptx", b"PK..").get_data(
        as_text=True
    )
    assert "The file is empty" in _upload(client, tenant_a.slug, "empty.csv", b"").get_data(as_text=True)
    assert _logs(app, tenant_a) == []


def test_an_upload_is_recorded_with_its_hash_and_flagged_when_repeated(app, tenant_a, client):
    login(client, "editor@a.example")
    data = b"case,activity,time\n1,Logged,2024-01-01 10:00:00\n"
    first = _upload(client, tenant_a.slug, "a.csv", data)
    assert "Reading the first rows of a.csv" in first.get_data(as_text=True)
    second = _upload(client, tenant_a.slug, "b.csv", data).get_data(as_text=True)
    assert "This file is identical to" in second
    logs = _logs(app, tenant_a)
    import hashlib

    assert {log.sha256 for log in logs} == {hashlib.sha256(data).hexdigest()}
    assert logs[1].duplicate_of_id == logs[0].id


def test_viewers_see_no_upload_form(app, tenant_a, client):
    login(client, "viewer@a.example")
    page = client.get(f"/o/{tenant_a.slug}/eventlogs").get_data(as_text=True)
    assert "No event logs yet" in page and "Upload a log" not in page


def test_the_web_process_never_loads_the_miner():
    code = (
        "import sys\n"
        "from webapp import create_app\n"
        "app = create_app({'SQLALCHEMY_DATABASE_URI': 'sqlite://'}, env='test')\n"
        "client = app.test_client(); client.get('/login'); client.get('/healthz')\n"
        "import webapp.wsgi\n"
        "heavy = ('polars', 'pm4py', 'pandas', 'worker.mining', 'worker.jobs')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _running_run(app, tenant) -> tuple[int, str]:
    """A log whose mining run a worker has begun (as far as the database can tell): (log id, job id)."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, eventlogs

    with app.test_request_context():
        tenancy.activate(tenant.organisation_id)
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        data = b"case,activity,time\n1,Logged,2024-01-01 09:00\n1,Closed,2024-01-01 10:00\n"
        log = eventlogs.upload("slow.csv", io.BytesIO(data), Actor(owner.id), "Slow log")
        log.mapping = {"case": "case", "activity": "activity", "timestamp": "time"}
        run = eventlogs.start_run(log, enqueue=False)
        run.rq_job_id = f"mining-run-{run.id}-0"
        db.session.commit()
        eventlogs.begin_run(run.id)
        log_id, job_id = log.id, run.rq_job_id
        db.session.remove()
    return log_id, job_id


def test_the_progress_widget_and_the_api_say_when_mining_gives_way_to_a_busy_site(app, tenant_a, client):
    """The worker's governor publishes how long a horse has paused (worker/governor.py); the widget the
    page polls and the API tell it, say nothing while there is nothing to tell, and still answer with
    Redis away."""
    from redis import Redis

    from webapp.queue import gave_way_key

    log_id, job_id = _running_run(app, tenant_a)
    token = _token(app, tenant_a)
    login(client, tenant_a.emails["owner"])

    def widget() -> str:
        answer = client.get(f"/o/{tenant_a.slug}/eventlogs/{log_id}/status", headers={"HX-Request": "true"})
        assert answer.status_code == 200
        return " ".join(answer.get_data(as_text=True).split())

    def paused_s():
        answer = client.get(f"/api/v1/event-logs/{log_id}", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        return answer.get_json()["paused_s"]

    assert "Mining" in widget() and "gives way" not in widget() and paused_s() is None
    redis = Redis.from_url(app.config["REDIS_URL"])
    redis.hset(gave_way_key(job_id), mapping={"paused_s": 1.2, "elapsed_s": 1.5, "paused": 1})
    assert "gives way" not in widget()  # a moment's pause is not worth a word
    redis.hset(gave_way_key(job_id), mapping={"paused_s": 41.6, "elapsed_s": 47.9, "paused": 1})
    assert "mining gives way to it: paused 42 s of the 48 s so far (paused now)" in widget()
    assert "<progress" in widget() and paused_s() == 41.6
    redis.hset(gave_way_key(job_id), mapping={"paused_s": 43.0, "elapsed_s": 52.0, "paused": 0})
    assert "paused 43 s of the 52 s so far." in widget()

    redis_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    app.extensions.pop("journeylens_redis", None)
    try:
        assert "Mining" in widget() and "gives way" not in widget() and paused_s() is None
    finally:
        app.config["REDIS_URL"] = redis_url
        app.extensions.pop("journeylens_redis", None)


def _token(app, tenant) -> str:
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, tokens

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        return tokens.issue(owner, "tests", Actor(None)).value
