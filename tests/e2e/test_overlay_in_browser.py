"""Data vs story in a real browser, on the seeded demo journey: a viewer sees measured figures on the
map (heat, transitions drawn, promises, ghosts, shadows, departures with a case timeline); an editor
changes the activity mapping and watches the measurement's progress bar turn into new figures."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.integration.test_cli import journeylens

pytestmark = pytest.mark.e2e

DEMO_PASSWORD = "journeylens-demo"


def _log_in(page: Page, stack, email: str) -> None:
    page.goto(stack.url("/login"))
    form = page.locator("main form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(DEMO_PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


@pytest.fixture(scope="module")
def demo(stack, app_config):
    journeylens(app_config, "seed-demo")
    return "demo-service-desk"


def test_a_viewer_sees_the_measured_overlay_on_the_seeded_journey(new_person, stack, demo):
    page = new_person("viewer")
    _log_in(page, stack, "viewer@journeylens.example")
    page.goto(stack.url(f"/o/{demo}/journeys"))
    page.get_by_role("link", name="IT incident (employee)").first.click()
    page.get_by_role("link", name="Show measured data (data vs story)").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Data vs story")

    expect(page.locator("#evidence")).to_contain_text("of 2000 cases")
    expect(page.locator(".overlay-step.heat-5").first).to_be_visible()  # the worst step on the chosen metric
    expect(page.locator(".overlay-step .figures").first).to_contain_text("reached")
    # The measured transitions are drawn as curves between the step cards by overlay.js.
    expect(page.locator("#transition-layer path").first).to_be_attached()
    assert page.locator("#transition-layer path").count() >= 5
    expect(page.locator(".overlay-step.ghost").first).to_be_visible()  # "Hits the problem" is never logged
    expect(page.locator("#ghosts-shadows")).to_contain_text("Reopen")
    expect(page.locator("#ghosts-shadows")).not_to_contain_text("Add to map")  # viewers don't edit

    # A departure's example case opens its timeline in place (htmx), marking events off the map.
    page.locator("ul.departures a").first.click()
    expect(page.locator("#case-timeline article")).to_be_visible()
    expect(page.locator("#case-timeline")).to_contain_text("Logged")

    # Another heat metric and business time, from the controls.
    page.get_by_label("Heat colour").select_option("rework_share")
    page.get_by_label("Durations in").select_option("business")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#evidence")).to_contain_text("durations in business time")

    assert page.problems.console_errors == [] and page.problems.page_errors == []
    assert page.evaluate("() => window.__cspViolations || []") == []


def test_an_editor_remaps_an_activity_and_watches_the_new_measurement(new_person, stack, demo):
    page = new_person("editor")
    _log_in(page, stack, "editor@journeylens.example")
    page.goto(stack.url(f"/o/{demo}/journeys"))
    page.get_by_role("link", name="IT incident (employee)").first.click()
    page.get_by_role("link", name="Show measured data (data vs story)").click()
    expect(page.locator("#ghosts-shadows")).to_contain_text("Reopen")

    page.get_by_role("link", name="Edit mapping").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Which step is each activity")
    reopen = page.get_by_label("Reopen")
    choice = reopen.locator("option", has_text="Agent diagnoses remotely").get_attribute("value")
    reopen.select_option(choice)
    page.get_by_role("button", name="Save mapping and measure").click()

    # Back on the overlay: a progress bar while the worker measures, then the page shows the new figures.
    expect(page.locator(".flash")).to_contain_text("Mapping version 2 saved")
    expect(page.locator("#evidence")).to_contain_text("mapping version 2", timeout=30_000)
    expect(page.locator("#ghosts-shadows")).not_to_contain_text("Reopen")
    assert page.problems.console_errors == [] and page.problems.page_errors == []
    assert page.evaluate("() => window.__cspViolations || []") == []
