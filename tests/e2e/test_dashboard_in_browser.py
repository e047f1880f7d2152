"""An executive (a viewer) opens the goals dashboard in a real browser: the goals grouped by journey with
their status in words and colour, trends and the portfolio; what changed since their last visit; a
filter that swaps the page body in place (htmx) and keeps the URL; no write controls; the print style;
the PDF and PNG exports made by the worker; and the weekly digests page. No console errors, no CSP
violations, labels on every control."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from tests.e2e.test_foundation_in_browser import ACCESSIBILITY_PROBLEMS, accept, invite, settle, sign_up
from tests.e2e.test_journeys_in_browser import WATCH_CSP_DETAILS
from tests.web.test_dashboard import NOW, add_event, add_goal, add_journey

pytestmark = pytest.mark.e2e

ORGANISATION = "Executive Review Co"
OWNER, EXECUTIVE = "cio@review.example", "exec@review.example"


def goals_for(app_config, slug: str) -> dict[str, int]:
    """Two journeys and three goals of the organisation, written as rows (as the goals service would)."""
    from webapp import create_app, tenancy
    from webapp.extensions import db
    from webapp.models import Organisation, User

    app = create_app(app_config, env="test")
    with app.test_request_context():
        organisation = db.session.scalar(sa.select(Organisation).where(Organisation.slug == slug))
        tenancy.activate(organisation.id)
        owner = db.session.scalar(sa.select(User.id).where(User.email == OWNER))
        laptop = add_journey("Laptop repair", "customer", owner)
        onboarding = add_journey("Employee onboarding", "employee", owner)
        goals = {
            "faster": add_goal(
                laptop,
                "Faster laptop repairs",
                status="on_track",
                owner_id=owner,
                values=(100.0, 92.0, 85.0, 80.0),
                progress=0.4,
                expected=0.35,
            ),
            "reopen": add_goal(
                laptop,
                "Fewer reopened repairs",
                status="off_track",
                owner_id=owner,
                kpi_metric="rework_share",
                baseline=0.2,
                target=0.1,
                values=(0.2, 0.24),
                progress=-0.4,
                expected=0.35,
                watermelon="Reopen rate rose while waits fell",
            ),
            "accounts": add_goal(
                onboarding,
                "Accounts ready on day one",
                status="achieved",
                owner_id=None,
                kpi_metric="cases",
                direction="higher",
                baseline=0.0,
                target=10.0,
                values=(4.0, 12.0),
                progress=1.2,
            ),
        }
        add_event(
            goals["reopen"],
            "status_change",
            "Fell behind the plan",
            NOW - timedelta(hours=5),
            "at_risk",
            "off_track",
        )
        add_event(goals["faster"], "measurement", "New measurement: 80 s", NOW - timedelta(hours=3))
        db.session.remove()
    with app.app_context():
        db.engine.dispose()
    return goals


def clean(page: Page, label: str) -> None:
    settle(page)
    assert page.evaluate("() => window.__cspDetails") == [], f"CSP violations for {label}"
    assert page.problems.console_errors == [], f"console errors for {label}"
    assert page.problems.page_errors == [], f"uncaught exceptions for {label}"


def test_an_executive_reads_filters_prints_and_exports_the_dashboard(new_person, stack, app_config):
    owner, executive = new_person("owner"), new_person("executive")
    executive.context.add_init_script(WATCH_CSP_DETAILS)
    slug = sign_up(owner, stack, OWNER, ORGANISATION)
    accept(
        executive, stack, invite(owner, stack, slug, EXECUTIVE, "viewer"), ORGANISATION, EXECUTIVE, "viewer"
    )
    goals = goals_for(app_config, slug)

    page = executive
    page.get_by_role("link", name="Dashboard").click()
    expect(page).to_have_url(stack.url(f"/o/{slug}/dashboard"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Goals dashboard")
    assert page.evaluate(ACCESSIBILITY_PROBLEMS) == [], "dashboard"

    groups = page.locator("section.journey-goals h3")
    expect(groups).to_have_count(2)
    expect(groups.nth(0)).to_contain_text("Employee onboarding")
    expect(groups.nth(1)).to_contain_text("Laptop repair")
    reopen = page.locator(f'li.goal-card[data-goal-id="{goals["reopen"]}"]')
    expect(reopen.locator(".status-badge")).to_have_text("Off track")
    expect(reopen).to_contain_text("Watermelon warning")
    expect(reopen.get_by_role("img", name=re.compile(r"^-40% of the way to the target"))).to_be_visible()
    faster = page.locator(f'li.goal-card[data-goal-id="{goals["faster"]}"]')
    expect(faster.get_by_role("img", name="Trend: 4 measurements, from 100 to 80")).to_be_visible()
    # The status colour is real: white on the status's own dark colour.
    colours = reopen.locator(".status-badge").evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
    )
    assert colours == ["rgb(255, 255, 255)", "rgb(164, 22, 26)"]
    portfolio = page.locator("aside.dashboard-portfolio")
    expect(portfolio.get_by_role("heading", name="Journey portfolio")).to_be_visible()
    expect(portfolio.get_by_role("row").filter(has_text="Laptop repair")).to_contain_text("1 off track")

    # The first visit lists the recent changes, newest first.
    changes = page.locator(".change-list li")
    expect(changes).to_have_count(2)
    expect(changes.nth(0)).to_contain_text("New measurement: 80 s")
    expect(changes.nth(1)).to_contain_text("Fell behind the plan")

    # Read only: the only forms that post are the two export buttons (and the account menu's Log out).
    posting = page.locator("main form[method=post]")
    expect(posting).to_have_count(2)
    assert {posting.nth(i).get_attribute("action") for i in range(2)} == {f"/o/{slug}/dashboard/exports"}

    # A filter swaps the body in place and keeps the URL shareable.
    page.evaluate("() => { window.__sameDocument = 'still here'; }")
    page.get_by_label("Status", exact=True).select_option(label="Off track")
    expect(page).to_have_url(stack.url(f"/o/{slug}/dashboard?status=off_track"))
    expect(page.locator("li.goal-card")).to_have_count(1)
    expect(page.locator("li.goal-card")).to_contain_text("Fewer reopened repairs")
    expect(page.get_by_role("link", name="Goals (CSV)")).to_have_attribute(
        "href", re.compile(r"status=off_track")
    )
    assert page.evaluate("() => window.__sameDocument") == "still here"
    csv_text = page.request.get(stack.url(f"/o/{slug}/dashboard/goals.csv?status=off_track")).text()
    assert "Fewer reopened repairs" in csv_text and "Faster laptop repairs" not in csv_text

    # On paper: no filters, no buttons, no personal list.
    page.emulate_media(media="print")
    expect(page.locator("form.dashboard-filters")).to_be_hidden()
    expect(page.locator(".dashboard-tools")).to_be_hidden()
    expect(page.locator("li.goal-card")).to_be_visible()
    page.emulate_media(media="screen")

    # Exports by the worker, from the filtered view.
    status = page.locator("#export-status")
    page.get_by_role("button", name="Export PDF").click()
    expect(status.get_by_role("link", name="Download PDF")).to_be_visible(timeout=60_000)
    pdf = page.request.get(stack.url(status.get_by_role("link", name="Download PDF").get_attribute("href")))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    page.get_by_role("button", name="Export PNG").click()
    expect(status.get_by_role("link", name="Download PNG")).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        status.get_by_role("link", name="Download PNG").click()
    assert re.fullmatch(rf"{slug}-dashboard-\d{{4}}-\d{{2}}-\d{{2}}\.png", download.value.suggested_filename)
    clean(page, "the executive's dashboard")

    # The weekly digests page (none yet: the first comes after the week ends).
    page.get_by_role("link", name="Your weekly digests").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your weekly digests")
    expect(page.locator("main")).to_contain_text("No digest yet")
    clean(page, "the digests page")
