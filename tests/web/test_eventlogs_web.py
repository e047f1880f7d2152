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
