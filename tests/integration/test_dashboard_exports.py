"""PDF and PNG exports of the dashboard with real processes: gunicorn answers the widget, a real RQ worker
starts headless Chromium and renders the goals and the portfolio as a viewer sees them (with the filters
chosen); another organisation gets 404 for every export URL, and a journey's export job is not reachable
through the dashboard's URLs."""

from __future__ import annotations

import re
import time
import unicodedata

import pytest

from tests.integration.test_journey_exports import Browser, _pdf_text, _png_size, needs_chromium
from tests.servers import rq_worker, stack_env, web_server
from tests.web.test_dashboard import add_goal, add_journey, user_ids


@pytest.fixture
def stack(app_config, app):
    """Web + one worker on the suite's database, Redis and storage."""
    env = stack_env(app_config)
    with web_server(env) as base, rq_worker(env):
        yield base


@pytest.fixture
def goals_of_a(app, tenant_a):
    """Two journeys of A with three goals (rows written directly)."""
    from webapp import tenancy
    from webapp.extensions import db

    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        users = user_ids(tenant_a)
        laptop = add_journey("Laptop repair", "customer", users["owner"])
        onboarding = add_journey("Employee onboarding", "employee", users["owner"])
        add_goal(
            laptop,
            "Faster laptop repairs",
            status="on_track",
            owner_id=users["editor"],
            values=(100.0, 90.0, 80.0),
            progress=0.4,
            expected=0.35,
        )
        add_goal(
            laptop,
            "Fewer reopened repairs",
            status="off_track",
            owner_id=users["owner"],
            kpi_metric="rework_share",
            baseline=0.2,
            target=0.1,
            values=(0.2, 0.25),
            progress=-0.5,
            expected=0.4,
        )
        add_goal(
            onboarding,
            "Accounts ready on day one",
            status="achieved",
            owner_id=None,
            kpi_metric="cases",
            direction="higher",
            baseline=0.0,
            target=10.0,
            values=(12.0,),
            progress=1.2,
        )
        db.session.remove()


def pdf_words(data: bytes) -> str:
    """The PDF's text on one line, ligatures (ﬀ, ﬁ) spelt out."""
    return " ".join(unicodedata.normalize("NFKC", _pdf_text(data)).split())


def export(person: Browser, dashboard: str, fmt: str, **filters) -> tuple[str, str]:
    """Start an export from the dashboard's button (with its filters) and follow the widget."""
    started = person.hx_post(f"{dashboard}/exports", {"fmt": fmt, **filters})
    assert started.status_code == 202, started.text
    job = re.search(r'hx-get="([^"]+/exports/[A-Za-z0-9-]+)"', started.text).group(1)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        widget = person.get(job, headers={"HX-Request": "true"}).text
        state = re.search(r'data-export-state="(\w+)"', widget).group(1)
        if state not in ("queued", "running"):
            return job, widget
        time.sleep(0.3)
    raise AssertionError(f"export {job} did not finish: {widget}")


@needs_chromium
def test_a_viewer_exports_the_dashboard_as_pdf_and_png(stack, tenant_a, tenant_b, goals_of_a):
    viewer = Browser(stack, tenant_a.emails["viewer"])
    dashboard = f"/o/{tenant_a.slug}/dashboard"
    page = viewer.get(dashboard).text
    assert "Export PDF" in page and "Export PNG" in page and 'hx-target="#export-status"' in page

    job, widget = export(viewer, dashboard, "pdf")
    assert 'data-export-state="done"' in widget, widget
    link = re.search(r'href="([^"]+/file)"', widget).group(1)
    assert link == f"{job}/file"
    pdf = viewer.get(link)
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert f"{tenant_a.slug}-dashboard-" in pdf.headers["Content-Disposition"]
    assert pdf.content.startswith(b"%PDF") and b"/MediaBox [0 0 842" in pdf.content  # A4 landscape
    text = pdf_words(pdf.content)
    for drawn in (
        "Goals dashboard",
        "Alpha Services",
        "Laptop repair",
        "Employee onboarding",
        "Faster laptop repairs",
        "Fewer reopened repairs",
        "Accounts ready on day one",
        "Off track",
        "On track",
        "Achieved",
        "Journey portfolio",
    ):
        assert drawn in text, f"{drawn!r} is not in the PDF: {text}"
    assert "What changed" not in text and "Export PDF" not in text  # the reader's own list, the controls

    # With a filter, only the goals it admits.
    _job, widget = export(viewer, dashboard, "pdf", status="off_track")
    filtered = viewer.get(re.search(r'href="([^"]+/file)"', widget).group(1))
    text = pdf_words(filtered.content)
    assert (
        "Fewer reopened repairs" in text
        and "Faster laptop repairs" not in text
        and "status off track" in text
    )

    png_job, widget = export(viewer, dashboard, "png")
    assert 'data-export-state="done"' in widget, widget
    png = viewer.get(f"{png_job}/file")
    assert png.status_code == 200 and png.headers["Content-Type"] == "image/png"
    width, height = _png_size(png.content)
    assert width >= 1400 and height > 400, (width, height)
    assert len(png.content) > 30_000  # drawn, not blank

    assert viewer.hx_post(f"{dashboard}/exports", {"fmt": "docx"}).status_code == 400
    owner = Browser(stack, tenant_a.emails["owner"])
    assert owner.get(link).status_code == 200  # a colleague's export of the same organisation

    # A journey's export job is not a dashboard export.
    journey = owner.new_journey(tenant_a.slug, "Some map")
    started = owner.hx_post(f"{journey}/exports", {"fmt": "png"})
    journey_job = re.search(r"/exports/([A-Za-z0-9-]+)", started.text).group(1)
    assert owner.get(f"{dashboard}/exports/{journey_job}").status_code == 404
    assert owner.get(f"{dashboard}/exports/{journey_job}/file").status_code == 404

    # B's member: 404 for A's export URLs, under A's slug and under B's own.
    intruder = Browser(stack, tenant_b.emails["owner"])
    job_id = job.rsplit("/", 1)[1]
    for path in (job, link, f"{png_job}/file", f"/o/{tenant_b.slug}/dashboard/exports/{job_id}"):
        answer = intruder.get(path)
        assert answer.status_code == 404, f"{path} answered {answer.status_code}"
        assert "Alpha" not in answer.text
    assert intruder.get(f"/o/{tenant_b.slug}/dashboard/exports/{job_id}/file").status_code == 404
    assert intruder.hx_post(f"{dashboard}/exports", {"fmt": "pdf"}).status_code == 404
