"""Event logs end to end with real processes: upload (API and forms) → a real RQ worker previews and
mines → figures equal the known answers and pm4py's; bad input fails with reasons; a killed worker's
run is re-driven; cancel, re-mine, duplicate, delete; S3 storage (moto server)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.servers import BIN, ROOT, rq_worker, stack_env, web_server
from tests.support import PASSWORD, csrf_token
from worker.mining.synthetic import generate_incident_log, write_csv, write_xes


def _token(app, tenant, email="editor@a.example") -> str:
    import sqlalchemy as sa

    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, tokens

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return tokens.issue(user, "tests", Actor(None)).value


def _wait(base, token, log_id, until=("finished", "failed"), timeout_s=90) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        body = requests.get(
            f"{base}/api/v1/event-logs/{log_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()
        if body["status"] in until:
            return body
        time.sleep(0.2)
    raise AssertionError(f"log {log_id} did not reach {until} in {timeout_s} s: {body}")


def _upload(base, token, path: Path, **fields) -> requests.Response:
    with open(path, "rb") as handle:
        return requests.post(
            f"{base}/api/v1/event-logs",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": (path.name, handle)},
            data=fields,
            timeout=60,
        )


def _api(base, token, path):
    return requests.get(
        f"{base}/api/v1{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()


@pytest.fixture
def stack(app_config, app):
    """Web + worker on the suite's database and Redis, with a quick reconciler for the fault tests."""
    env = stack_env(app_config, MINING_HEARTBEAT_STALE_S="4", RECONCILE_EVERY_S="1")
    with web_server(env) as base, rq_worker(env) as worker:
        yield {"base": base, "env": env, "worker": worker}


def test_synthetic_csv_via_api_equals_known_answers_and_the_cli(stack, tenant_a, app, tmp_path):
    log = generate_incident_log(400, seed=11)
    path = write_csv(log, tmp_path / "incidents.csv")
    token = _token(app, tenant_a)
    base = stack["base"]
    response = _upload(
        base,
        token,
        path,
        case_column="Number",
        activity_column="Status",
        timestamp_column="sys_updated_on",
        resource_column="Assigned to",
    )
    assert response.status_code == 202 and response.json()["status"] == "uploaded"
    body = _wait(base, token, response.json()["id"])
    assert body["status"] == "finished" and body["progress"] == 100 and body["error"] is None
    truth = log.truth
    assert body["summary"]["cases"] == truth.n_cases and body["summary"]["events"] == truth.n_events
    assert body["summary"]["variants"] == truth.n_variants
    dfg = _api(base, token, f"/event-logs/{body['id']}/dfg")
    assert {(e["source"], e["target"]): e["frequency"] for e in dfg["edges"]} == truth.dfg_counts
    assert dfg["start_activities"] == truth.start_activities and dfg["end_activities"] == truth.end_activities
    activities = _api(base, token, f"/event-logs/{body['id']}/activities")
    assert {a["name"]: a["events"] for a in activities} == truth.activity_counts
    variants = _api(base, token, f"/event-logs/{body['id']}/variants?limit=1000")
    assert {tuple(v["activities"]): v["cases"] for v in variants} == truth.variant_counts
    assert [v["cases"] for v in variants] == sorted((v["cases"] for v in variants), reverse=True)
    # `journeylens mine` gives the same figures without database or Redis.
    cli = subprocess.run(
        [
            str(BIN / "journeylens"),
            "mine",
            str(path),
            "--case",
            "Number",
            "--activity",
            "Status",
            "--timestamp",
            "sys_updated_on",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")},
    )
    mined = json.loads(cli.stdout)
    assert mined["summary"] == body["summary"]
    assert mined["dfg"] == dfg
    assert mined["variants"] == variants
    assert sorted(mined["activities"], key=lambda a: a["name"]) == sorted(activities, key=lambda a: a["name"])


def test_shared_logs_via_api_equal_pm4py(stack, tenant_a, app, shared_eventlogs):
    token = _token(app, tenant_a)
    base = stack["base"]
    cases = {
        "running-example.xes": {},
        "receipt.csv": {
            "case_column": "case:concept:name",
            "activity_column": "concept:name",
            "timestamp_column": "time:timestamp",
        },
        "helpdesk.csv": {
            "case_column": "Case ID",
            "activity_column": "Activity",
            "timestamp_column": "Complete Timestamp",
        },
    }
    ids = {
        name: _upload(base, token, shared_eventlogs / name, **fields).json()["id"]
        for name, fields in cases.items()
    }
    for name, log_id in ids.items():
        body = _wait(base, token, log_id)
        truth = json.loads((shared_eventlogs / f"{name}.truth.json").read_text())
        assert body["status"] == "finished", body
        assert (body["summary"]["cases"], body["summary"]["events"], body["summary"]["variants"]) == (
            truth["n_cases"],
            truth["n_events"],
            truth["n_variants"],
        ), name
        dfg = _api(base, token, f"/event-logs/{log_id}/dfg")
        edges = {(e["source"], e["target"]): e for e in dfg["edges"]}
        for edge in truth["dfg_edges"]:
            mine = edges[(edge["source"], edge["target"])]
            assert mine["frequency"] == edge["count"]
            assert abs(mine["median_s"] - edge["median_s"]) <= 1 and abs(mine["mean_s"] - edge["mean_s"]) <= 1
        assert len(edges) == len(truth["dfg_edges"])
        assert abs(body["summary"]["case_duration_s"]["median"] - truth["throughput_time_s"]["median"]) <= 1
        assert abs(body["summary"]["case_duration_s"]["mean"] - truth["throughput_time_s"]["mean"]) <= 1


def _browser(base: str, email: str) -> requests.Session:
    session = requests.Session()
    token = csrf_token(session.get(base + "/login").text)
    session.post(base + "/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    return session


def test_browser_forms_upload_map_and_see_the_results(stack, tenant_a, app, tmp_path):
    log = generate_incident_log(150, seed=5)
    path = write_csv(log, tmp_path / "servicenow-export.csv")
    base, slug = stack["base"], tenant_a.slug
    editor = _browser(base, "editor@a.example")
    page = editor.get(f"{base}/o/{slug}/eventlogs").text
    with open(path, "rb") as handle:
        uploaded = editor.post(
            f"{base}/o/{slug}/eventlogs",
            files={"file": (path.name, handle)},
            data={"csrf_token": csrf_token(page), "name": "March incidents"},
        )
    assert uploaded.url.startswith(f"{base}/o/{slug}/eventlogs/")
    log_url = uploaded.url
    deadline = time.monotonic() + 30
    while "Which column is which?" not in (show := editor.get(log_url).text) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Which column is which?" in show
    # The proposal picked the ServiceNow-style columns.
    for role, column in (("case", "Number"), ("activity", "Status"), ("timestamp", "sys_updated_on")):
        assert f'<option value="{column}" selected>' in show.split(f'name="{role}"')[1].split("</select>")[0]
    # A wrong mapping is refused with a reason per field, and nothing starts.
    wrong = editor.post(
        f"{log_url}/mapping",
        data={
            "csrf_token": csrf_token(show),
            "case": "Number",
            "activity": "Number",
            "timestamp": "sys_updated_on",
        },
    )
    assert wrong.status_code == 422 and "is chosen for two roles" in wrong.text
    ok = editor.post(
        f"{log_url}/mapping",
        data={
            "csrf_token": csrf_token(show),
            "case": "Number",
            "activity": "Status",
            "timestamp": "sys_updated_on",
            "resource": "Assigned to",
        },
    )
    assert ok.ok
    deadline = time.monotonic() + 60
    while "The measured process" not in (show := editor.get(log_url).text) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert "The measured process" in show and f">{log.truth.n_cases:,}<" in show
    assert "data-process-map" in show and "Bottlenecks" in show and "Variants" in show
    graph = editor.get(f"{log_url}/map.json").json()
    assert {(e["source"], e["target"]): e["frequency"] for e in graph["edges"]} == log.truth.dfg_counts
    # The next upload with the same columns gets the confirmed mapping back.
    listing = editor.get(f"{base}/o/{slug}/eventlogs").text
    assert "March incidents" in listing and "finished" in listing
    # A viewer sees the results but may not upload.
    viewer = _browser(base, "viewer@a.example")
    assert "The measured process" in viewer.get(log_url).text
    page = viewer.get(f"{base}/o/{slug}/eventlogs").text
    with open(path, "rb") as handle:
        refused = viewer.post(
            f"{base}/o/{slug}/eventlogs",
            files={"file": (path.name, handle)},
            data={"csrf_token": csrf_token(page)},
        )
    assert refused.status_code == 403


def test_bad_files_fail_with_reasons_and_keep_the_upload(stack, tenant_a, app, tmp_path):
    token = _token(app, tenant_a)
    base = stack["base"]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    response = _upload(base, token, empty)
    assert response.status_code == 422 and "empty" in response.json()["error"]["message"]
    wrong_type = tmp_path / "report.docx"
    wrong_type.write_bytes(b"PK\x03\x04 not a log")
    response = _upload(base, token, wrong_type)
    assert response.status_code == 422 and "Upload CSV or TSV" in response.json()["error"]["message"]
    junk = tmp_path / "junk.csv"
    junk.write_bytes(os.urandom(50_000))
    laughs = tmp_path / "laughs.xes"
    laughs.write_text(
        '<?xml version="1.0"?><!DOCTYPE log [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        '<log><trace><string key="concept:name" value="&b;"/></trace></log>'
    )
    header_only = tmp_path / "header-only.csv"
    header_only.write_text("case,activity,timestamp\n")
    wrong_columns = tmp_path / "wrong-columns.csv"
    wrong_columns.write_text("case,activity,timestamp\n1,Logged,2024-01-01 10:00:00\n")
    ids = {
        "junk": _upload(base, token, junk).json()["id"],
        "laughs": _upload(base, token, laughs).json()["id"],
        "header": _upload(
            base,
            token,
            header_only,
            case_column="case",
            activity_column="activity",
            timestamp_column="timestamp",
        ).json()["id"],
        "wrong": _upload(
            base,
            token,
            wrong_columns,
            case_column="Number",
            activity_column="activity",
            timestamp_column="timestamp",
        ).json()["id"],
    }
    for label, log_id in ids.items():
        body = _wait(base, token, log_id, timeout_s=30)
        assert body["status"] == "failed", (label, body)
        assert body["error"] and len(body["error"]) > 20, (label, body)
    assert (
        "DOCTYPE" in _wait(base, token, ids["laughs"])["error"]
        or "entit" in _wait(base, token, ids["laughs"])["error"].lower()
    )
    assert (
        "'Number'" in _wait(base, token, ids["wrong"])["error"]
        and "'case'" in _wait(base, token, ids["wrong"])["error"]
    )
    # The failed uploads are kept: the log page still offers them.
    editor = _browser(base, "editor@a.example")
    page = editor.get(f"{base}/o/{tenant_a.slug}/eventlogs/{ids['wrong']}").text
    assert "Mining failed." in page and "Delete log" in page


def test_duplicate_cancel_remine_and_delete(stack, tenant_a, app, tmp_path):
    from webapp.storage import storage_from_url

    log = generate_incident_log(200, seed=2)
    path = write_csv(log, tmp_path / "incidents.csv")
    token = _token(app, tenant_a)
    base = stack["base"]
    fields = {"case_column": "Number", "activity_column": "Status", "timestamp_column": "sys_updated_on"}
    first = _wait(base, token, _upload(base, token, path, **fields).json()["id"])
    second_id = _upload(base, token, path, **fields).json()["id"]
    second = _wait(base, token, second_id)
    assert second["duplicate_of"] == first["id"]
    editor = _browser(base, "editor@a.example")
    page = editor.get(f"{base}/o/{tenant_a.slug}/eventlogs/{second_id}").text
    assert "This file is identical to" in page
    # Mine again: same figures.
    remined = editor.post(
        f"{base}/o/{tenant_a.slug}/eventlogs/{second_id}/remine", data={"csrf_token": csrf_token(page)}
    )
    assert remined.ok
    again = _wait(base, token, second_id)
    assert again["summary"] == second["summary"]
    # Delete removes the file and the results.
    with app.app_context():
        from webapp import tenancy
        from webapp.services import eventlogs

        tenancy.activate(tenant_a.organisation_id)
        key = eventlogs.get(second_id).storage_key
    storage = storage_from_url(app.config["STORAGE_URL"])
    assert storage.exists(key)
    editor.post(
        f"{base}/o/{tenant_a.slug}/eventlogs/{second_id}/delete", data={"csrf_token": csrf_token(page)}
    )
    assert not storage.exists(key)
    missing = requests.get(
        f"{base}/api/v1/event-logs/{second_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert missing.status_code == 404


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the governor reads Linux's /proc")
def test_a_mining_horse_pauses_while_the_machine_is_busy_and_then_finishes_the_same(
    app_config, app, tenant_a, tmp_path
):
    """worker/governor.py in a real worker: while other processes keep the CPUs busy, the mining horse
    is stopped (state T; scheduling alone never stops a process) and the log's progress widget says
    why mining is slow; once they end it runs on and the run's figures are the log's."""
    log = generate_incident_log(40_000, seed=9)
    path = write_xes(log, tmp_path / "big.xes")
    token = _token(app, tenant_a)
    env = stack_env(app_config, WORKER_YIELD_CPU="1", WORKER_YIELD_FLOOR="0.02")
    with (
        _cpus_busy_but_one() as busy,
        web_server(env) as base,
        rq_worker(env, log_path=tmp_path / "worker.log") as worker,
    ):
        log_id = _upload(base, token, path).json()["id"]
        _wait(base, token, log_id, until=("running",), timeout_s=60)
        assert _paused_horse(worker.pid), "the mining horse was never paused while the CPUs were busy"
        widget = _widget_saying(base, tenant_a.slug, log_id, "mining gives way to it")
        assert re.search(r"paused\s+\d+ s of the \d+ s so far", widget), widget
        assert 'value="' in widget  # the progress bar is still there
        assert _api(base, token, f"/event-logs/{log_id}")["paused_s"] >= 2  # and so does the API
        for process in busy:
            process.kill()
        body = _wait(base, token, log_id, timeout_s=90)
    assert body["status"] == "finished", body
    assert body["summary"]["events"] == log.truth.n_events and body["summary"]["cases"] == log.truth.n_cases
    assert "paused" in (tmp_path / "worker.log").read_text()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="the governor reads Linux's /proc")
def test_a_worker_killed_while_its_horse_is_paused_leaves_no_stopped_horse_and_the_run_is_redriven(
    app_config, app, tenant_a, tmp_path
):
    """SIGKILL the worker while the governor has its horse stopped: nobody is left to continue it, so
    the kernel's rule for orphaned process groups (SIGHUP, SIGCONT) must end it; the reconciler of the
    next worker then mines the log again, with the same figures."""
    log = generate_incident_log(40_000, seed=9)
    path = write_xes(log, tmp_path / "big.xes")
    token = _token(app, tenant_a)
    env = stack_env(app_config, WORKER_YIELD_CPU="1", MINING_HEARTBEAT_STALE_S="4", RECONCILE_EVERY_S="1")
    with web_server(env) as base:
        with _cpus_busy_but_one():
            worker = subprocess.Popen(
                [str(BIN / "journeylens"), "worker"], env=env, cwd=ROOT, start_new_session=True
            )
            try:
                log_id = _upload(base, token, path).json()["id"]
                _wait(base, token, log_id, until=("running",), timeout_s=60)
                horse = _paused_horse(worker.pid)
                assert horse, "the mining horse was never paused while the CPUs were busy"
                os.killpg(worker.pid, signal.SIGKILL)  # the worker and RQ's scheduler, not the horse
                worker.wait()
                horse.wait(10)  # ended (psutil.TimeoutExpired: still stopped, with nobody to continue it)
            finally:
                with contextlib.suppress(ProcessLookupError):  # nothing of it may outlive the test
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        with rq_worker(stack_env(app_config, MINING_HEARTBEAT_STALE_S="4", RECONCILE_EVERY_S="1")):
            body = _wait(base, token, log_id, timeout_s=120)
    assert body["status"] == "finished", body
    assert body["summary"]["events"] == log.truth.n_events and body["summary"]["cases"] == log.truth.n_cases


@contextlib.contextmanager
def _cpus_busy_but_one():
    """Busy loops on every CPU but one: the machine is busy, and the worker, which runs under
    SCHED_IDLE, still finds a CPU to take the job and start mining."""
    busy = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(max(1, (os.cpu_count() or 2) - 1))
    ]
    try:
        yield busy
    finally:
        for process in busy:
            process.kill()
            process.wait()


def _widget_saying(base: str, slug: str, log_id: int, words: str, timeout_s: float = 30) -> str:
    """The log's progress widget (as the page polls it, signed in as an editor of A) once it says
    `words`; fails with the last one seen."""
    session = requests.Session()
    token = csrf_token(session.get(base + "/login").text)
    session.post(
        base + "/login", data={"email": "editor@a.example", "password": PASSWORD, "csrf_token": token}
    )
    deadline = time.monotonic() + timeout_s
    while True:
        widget = session.get(
            f"{base}/o/{slug}/eventlogs/{log_id}/status", headers={"HX-Request": "true"}, timeout=10
        ).text
        if words in widget or time.monotonic() > deadline:
            assert words in widget, widget
            return widget
        time.sleep(0.5)


def _paused_horse(worker_pid: int, timeout_s: float = 20) -> psutil.Process | None:
    """The worker's child once seen stopped (SIGSTOP) within `timeout_s`, or None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for horse in psutil.Process(worker_pid).children():
            if _status(horse) == psutil.STATUS_STOPPED:
                return horse
        time.sleep(0.05)
    return None


def _status(process: psutil.Process) -> str | None:
    try:
        return process.status()
    except psutil.Error:
        return None


def test_a_killed_worker_never_leaves_a_run_running(app_config, app, tenant_a, tmp_path):
    """SIGKILL the worker mid-mining: a new worker's reconciler re-drives the run, which then finishes
    with the same figures; past the attempt limit it would fail with a reason."""
    log = generate_incident_log(40_000, seed=9)
    path = write_xes(log, tmp_path / "big.xes")
    token = _token(app, tenant_a)
    env = stack_env(app_config, MINING_HEARTBEAT_STALE_S="4", RECONCILE_EVERY_S="1")
    with web_server(env) as base:
        worker = subprocess.Popen(
            [str(BIN / "journeylens"), "worker"], env=env, cwd=ROOT, start_new_session=True
        )
        try:
            log_id = _upload(base, token, path).json()["id"]
            _wait(base, token, log_id, until=("running",), timeout_s=60)
            # The worker, its scheduler and its work horse (which RQ puts in a process group of its own).
            everyone = [psutil.Process(worker.pid), *psutil.Process(worker.pid).children(recursive=True)]
            for process in everyone:
                process.send_signal(signal.SIGKILL)
            worker.wait()
            killed_at = time.monotonic()
            assert _api(base, token, f"/event-logs/{log_id}")["status"] == "running"
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        with rq_worker(env):
            body = _wait(base, token, log_id, timeout_s=120)
            assert time.monotonic() - killed_at < 120
    assert body["status"] == "finished", body
    assert body["summary"]["events"] == log.truth.n_events and body["summary"]["cases"] == log.truth.n_cases
    with app.app_context():
        from webapp import tenancy
        from webapp.services import eventlogs

        tenancy.activate(tenant_a.organisation_id)
        run = eventlogs.latest_run(eventlogs.get(log_id))
        assert run.attempt == 2


def test_uploads_can_live_in_an_s3_bucket(app_config, app, tenant_a, tmp_path):
    """Storage in an S3-compatible bucket (a moto server on loopback stands in for S3)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from webapp.embedded_redis import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        credentials = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="journeylens-uploads")
        env = stack_env(
            app_config,
            STORAGE_URL="s3://journeylens-uploads/tenants",
            S3_ENDPOINT_URL=endpoint,
            **credentials,
        )
        log = generate_incident_log(100, seed=4)
        path = write_csv(log, tmp_path / "incidents.csv")
        token = _token(app, tenant_a)
        with web_server(env) as base, rq_worker(env):
            response = _upload(
                base,
                token,
                path,
                case_column="Number",
                activity_column="Status",
                timestamp_column="sys_updated_on",
            )
            body = _wait(base, token, response.json()["id"])
        assert body["status"] == "finished" and body["summary"]["events"] == log.truth.n_events
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="journeylens-uploads")["Contents"]]
        assert len(keys) == 1 and keys[0].startswith(f"tenants/org-{tenant_a.organisation_id}/")
    finally:
        server.stop()


def test_cancel_keeps_the_upload_and_the_same_columns_get_the_same_mapping(stack, tenant_a, app, tmp_path):
    base, slug = stack["base"], tenant_a.slug
    token = _token(app, tenant_a)
    big = write_xes(generate_incident_log(40_000, seed=3), tmp_path / "big.xes")
    log_id = _upload(base, token, big).json()["id"]
    _wait(base, token, log_id, until=("running",), timeout_s=60)
    editor = _browser(base, "editor@a.example")
    page = editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text
    assert "Cancel" in page
    editor.post(f"{base}/o/{slug}/eventlogs/{log_id}/cancel", data={"csrf_token": csrf_token(page)})
    body = _wait(base, token, log_id, until=("failed",), timeout_s=30)
    assert "cancelled" in body["error"] and body["summary"] is None
    page = editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text
    editor.post(f"{base}/o/{slug}/eventlogs/{log_id}/remine", data={"csrf_token": csrf_token(page)})
    assert _wait(base, token, log_id, timeout_s=90)["status"] == "finished"

    # Two CSV exports with the same columns: the mapping confirmed for the first is proposed for the second.
    first = write_csv(generate_incident_log(50, seed=1), tmp_path / "january.csv")
    second = write_csv(generate_incident_log(50, seed=2), tmp_path / "february.csv")
    mapping = {
        "case_column": "Number",
        "activity_column": "Status",
        "timestamp_column": "sys_updated_on",
        "resource_column": "Channel",
    }
    _wait(base, token, _upload(base, token, first, **mapping).json()["id"])
    second_id = _upload(base, token, second).json()["id"]
    deadline = time.monotonic() + 30
    while "Which column is which?" not in (page := editor.get(f"{base}/o/{slug}/eventlogs/{second_id}").text):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert "the mapping you confirmed for a file with the same columns" in page
    resource_select = page.split('name="resource"')[1].split("</select>")[0]
    assert '<option value="Channel" selected>' in resource_select


def test_filters_re_mine_the_chosen_cases_in_the_background(stack, tenant_a, app, tmp_path):
    import polars as pl

    log = generate_incident_log(300, seed=8)
    path = write_csv(log, tmp_path / "incidents.csv")
    base, slug = stack["base"], tenant_a.slug
    token = _token(app, tenant_a)
    log_id = _upload(
        base, token, path, case_column="Number", activity_column="Status", timestamp_column="sys_updated_on"
    ).json()["id"]
    whole = _wait(base, token, log_id)
    editor = _browser(base, "editor@a.example")
    page = editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text
    assert "Filter the cases" in page and 'name="attr:Priority"' in page
    response = editor.post(
        f"{base}/o/{slug}/eventlogs/{log_id}/filter",
        data={"csrf_token": csrf_token(page), "attr:Priority": ["1", "2"]},
    )
    assert response.ok
    deadline = time.monotonic() + 60
    while "Filtered:" not in (page := editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text):
        assert time.monotonic() < deadline, "the filtered run did not finish"
        time.sleep(0.3)
    first_priority = log.events.group_by("Number").agg(pl.col("Priority").first().cast(pl.String))
    wanted = first_priority.filter(pl.col("Priority").is_in(["1", "2"])).height
    assert "Priority is 1 or 2" in page and f">{wanted:,}<" in page
    assert "Show all cases" in page
    # The API keeps answering with all cases.
    assert _api(base, token, f"/event-logs/{log_id}")["summary"] == whole["summary"]
    # A filter that matches nothing fails with a reason, and all cases are still one click away.
    page = editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text
    editor.post(
        f"{base}/o/{slug}/eventlogs/{log_id}/filter",
        data={"csrf_token": csrf_token(page), "start": "2031-01-01"},
    )
    deadline = time.monotonic() + 60
    while "The filtered mining failed." not in (
        page := editor.get(f"{base}/o/{slug}/eventlogs/{log_id}").text
    ):
        assert time.monotonic() < deadline, "the empty filter did not fail"
        time.sleep(0.3)
    assert "No case matches these filters" in page
    assert _api(base, token, f"/event-logs/{log_id}")["status"] == "finished"  # the log's own results stand
    bad = editor.post(
        f"{base}/o/{slug}/eventlogs/{log_id}/filter", data={"csrf_token": csrf_token(page), "start": "soon"}
    )
    assert "is not a date" in bad.text
