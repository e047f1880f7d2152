"""An analyst in a real browser: upload a log (progress bar), confirm the mapping, watch mining, see the
process map, variants and histogram — with no console errors or CSP violations."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_foundation_in_browser import sign_up
from worker.mining.synthetic import generate_incident_log, write_csv

pytestmark = pytest.mark.e2e


def test_upload_map_mine_and_see_the_process_map(page: Page, stack, tmp_path):
    log = generate_incident_log(300, seed=21)
    path = write_csv(log, tmp_path / "servicenow-incidents.csv")
    slug = sign_up(page, stack, "analyst@mapping.example", "Mapping Co")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Event logs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Event logs")
    expect(page.locator("main")).to_contain_text("No event logs yet")
    page.get_by_label("Event log file").set_input_files(str(path))
    page.get_by_label("Name (optional)").fill("Q1 incidents")
    page.get_by_role("button", name="Upload").click()

    # htmx redirects to the log's page; the worker reads the head and proposes a mapping.
    expect(page).to_have_url(re.compile(re.escape(stack.url(f"/o/{slug}/eventlogs/")) + r"\d+$"))
    expect(page.get_by_role("heading", name="Which column is which?")).to_be_visible(timeout=20_000)
    expect(page.locator("#map-case")).to_have_value("Number")
    expect(page.locator("#map-activity")).to_have_value("Status")
    expect(page.locator("#map-timestamp")).to_have_value("sys_updated_on")
    expect(page.locator("label[for=map-timestamp]")).to_contain_text("Timestamp")
    expect(page.locator("table.preview")).to_contain_text("INC")
    page.get_by_role("button", name="Confirm and mine").click()

    # Progress, then the results appear without the user reloading.
    expect(page.get_by_role("heading", name="The measured process")).to_be_visible(timeout=60_000)
    expect(page.locator(".kpis")).to_contain_text(f"{log.truth.n_cases:,}")
    expect(page.locator(".kpis")).to_contain_text(f"{log.truth.n_events:,}")

    # The process map: one node per activity plus start and end, drawn by the vendored layout.
    graph = page.locator("[data-process-map] svg").first
    expect(graph).to_be_visible(timeout=15_000)
    expect(page.locator("[data-process-map]")).to_contain_text("Logged")
    expect(page.locator("[data-process-map] .pm-node[data-activity]")).to_have_count(log.truth.n_activities)
    expect(page.locator("[data-process-map] .pm-node[data-terminal]")).to_have_count(2)
    page.get_by_role("button", name="Performance").click()
    expect(page.locator("[data-process-map]")).to_contain_text(re.compile(r"\d+(\.\d)? (h|min|d)"))

    expect(page.locator("ol.variants li").first).to_contain_text("cases")
    expect(page.locator("svg.histogram rect").first).to_be_attached()
    assert page.problems.console_errors == [] and page.problems.page_errors == []
    assert page.evaluate("() => window.__cspViolations || []") == []

    # The list shows the log as finished.
    page.goto(stack.url(f"/o/{slug}/eventlogs"))
    expect(page.locator("table.logs")).to_contain_text("Q1 incidents")
    expect(page.locator("table.logs")).to_contain_text("finished")
