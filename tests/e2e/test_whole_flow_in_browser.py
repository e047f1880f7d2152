"""The whole product in one real browser session, as issue 7 lists it: sign up → a journey from a template →
inline edit and drag and drop → upload a log → its progress bar → the process map → map activities to
steps → the overlay → a goal → the dashboard as a viewer, exported. Every main page is checked for console
errors, CSP violations and basic accessibility (labels, alt text, one h1, contrast of the status colours).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_foundation_in_browser import accept, invite, sign_up
from tests.e2e.test_journeys_in_browser import drag_header, new_journey_from_template, stage_names
from webapp.services.demo import DEMO_ACTIVITY_STEPS
from worker.mining.synthetic import generate_incident_log, write_csv

pytestmark = pytest.mark.e2e

# What a page must not have: unlabelled form controls, images without alt text, other than one h1, and
# status colours whose text does not stand out from its background (WCAG AA: 4.5:1).
ACCESSIBILITY = """
() => {
  const problems = [];
  const luminance = (rgb) => {
    const [r, g, b] = rgb.match(/\\d+(\\.\\d+)?/g).slice(0, 3).map(Number).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const contrast = (a, b) => {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const colour = getComputedStyle(node).backgroundColor;
      if (colour && !colour.startsWith("rgba(0, 0, 0, 0)") && colour !== "transparent") return colour;
    }
    return "rgb(255, 255, 255)";
  };
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (["hidden", "submit", "button"].includes(el.type) || el.closest("[hidden]")) continue;
    const labelled = el.getAttribute("aria-label") || el.getAttribute("aria-labelledby") || el.title
      || el.closest("label") || (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`));
    if (!labelled) problems.push("no label: " + el.outerHTML.slice(0, 90));
  }
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push("no alt: " + img.src);
  }
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) problems.push(`${h1} h1 headings`);
  for (const badge of document.querySelectorAll(".status-badge, .goal-status, .badge")) {
    const ratio = contrast(getComputedStyle(badge).color, background(badge));
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} of "${badge.textContent.trim()}"`);
  }
  return problems;
}
"""


def check(page: Page, what: str) -> None:
    """No accessibility problem, console error, uncaught exception or CSP violation on this page."""
    assert page.evaluate(ACCESSIBILITY) == [], f"accessibility of {what}"
    assert page.problems.console_errors == [], f"console errors on {what}"
    assert page.problems.page_errors == [], f"uncaught exceptions on {what}"
    assert page.evaluate("() => window.__cspViolations || []") == [], f"CSP violations on {what}"


def test_from_sign_up_to_an_exported_dashboard(new_person, stack, tmp_path):
    ann = new_person("ann")
    slug = sign_up(ann, stack, "ann@whole-flow.example", "Whole Flow Co")
    expect(ann.get_by_role("heading", level=1)).to_be_visible()
    check(ann, "the organisation's home")

    # A journey from a template, edited inline and reordered by drag and drop.
    url = new_journey_from_template(ann, stack, slug, "Laptop incidents")
    check(ann, "the journey map")
    # htmx has wired the board once it polls: before that, Enter would submit the rename form natively
    # (a GET of this page) instead of posting it, which a busy machine made happen.
    with ann.expect_response(lambda r: "/board?since=" in r.url):
        pass
    rename = ann.locator("th.stage input[name=name]").first
    rename.fill("Notice it")
    with ann.expect_response(lambda r: "/stages/" in r.url and r.request.method == "POST") as renamed:
        rename.press("Enter")
    assert renamed.value.status == 200, renamed.value.text()[:300]
    expect(ann.locator("th.stage input[name=name]").first).to_have_value("Notice it")
    with ann.expect_response(lambda r: "/stages/" in r.url and r.request.method == "POST"):
        drag_header(ann, "Notice it", onto="Diagnose")
    expect(ann.locator("th.stage input[name=name]").nth(2)).to_have_value("Notice it")
    ann.goto(url)  # what was saved, not what the browser shows
    assert stage_names(ann)[:3] == ["Report", "Diagnose", "Notice it"]

    # Upload a log, watch its progress, see the process map.
    log = generate_incident_log(400, seed=17)
    path = write_csv(log, tmp_path / "servicenow-export.csv")
    ann.get_by_role("navigation", name="Main").get_by_role("link", name="Event logs").click()
    ann.get_by_label("Event log file").set_input_files(str(path))
    ann.get_by_label("Name (optional)").fill("Laptop tickets")
    ann.get_by_role("button", name="Upload").click()
    expect(ann.get_by_role("heading", name="Which column is which?")).to_be_visible(timeout=20_000)
    check(ann, "the mapping form")
    ann.get_by_role("button", name="Confirm and mine").click()
    expect(
        ann.locator("progress").first.or_(ann.get_by_role("heading", name="The measured process"))
    ).to_be_visible()
    expect(ann.get_by_role("heading", name="The measured process")).to_be_visible(timeout=60_000)
    expect(ann.locator("[data-process-map] svg").first).to_be_visible(timeout=15_000)
    check(ann, "the mined log")

    # Map the log's activities to the journey's steps and see the overlay.
    ann.goto(url)
    ann.get_by_role("link", name="Show measured data (data vs story)").click()
    ann.get_by_label("Link a mined log").select_option(label="Laptop tickets")
    ann.get_by_role("button", name="Link and map activities").click()
    expect(ann.get_by_role("heading", level=1)).to_contain_text("Which step is each activity")
    check(ann, "the activity mapping")
    for activity, step_name in DEMO_ACTIVITY_STEPS.items():
        select = ann.get_by_label(activity, exact=True)
        select.select_option(select.locator("option", has_text=step_name).get_attribute("value"))
    ann.get_by_role("button", name="Save mapping and measure").click()
    expect(ann.locator("#evidence")).to_contain_text(f"of {log.truth.n_cases} cases", timeout=30_000)
    expect(ann.locator(".overlay-step .figures").first).to_be_visible()
    expect(ann.locator("#transition-layer path").first).to_be_attached()
    check(ann, "the overlay")

    # A goal on the measured case duration: its first measurement comes from the log at once.
    ann.get_by_role("navigation", name="Main").get_by_role("link", name="Goals").click()
    expect(ann.get_by_role("heading", level=1)).to_have_text("Goals")
    check(ann, "the goals list")
    ann.get_by_role("button", name="New goal").click()
    ann.get_by_label("Title").fill("Fix laptops within two days")
    ann.get_by_label("Journey").select_option(label="Laptop incidents")
    ann.get_by_label("KPI", exact=True).select_option("event_log:median_case_duration_s")
    ann.get_by_label("Which way is better").select_option("lower")
    ann.get_by_label("Target").fill(str(2 * 86400))
    ann.get_by_label("Start").fill((date.today() - timedelta(days=10)).isoformat())
    ann.get_by_label("Due").fill((date.today() + timedelta(days=80)).isoformat())
    ann.get_by_role("button", name="Set goal").click()
    expect(ann.get_by_role("heading", level=1)).to_contain_text("Fix laptops within two days")
    expect(ann.locator(".goal-status").first).to_be_visible()
    check(ann, "the goal")

    # An executive (a viewer) opens the dashboard and exports it.
    link = invite(ann, stack, slug, "erin@whole-flow.example", "viewer")
    erin = new_person("erin")
    accept(erin, stack, link, "Whole Flow Co", "erin@whole-flow.example", "viewer")
    erin.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    expect(erin.get_by_role("heading", level=1)).to_be_visible()
    card = erin.locator("li.goal-card", has_text="Fix laptops within two days")
    expect(card).to_be_visible()
    expect(card.locator(".status-badge")).to_have_text(re.compile(r"On track|At risk|Off track|Achieved"))
    check(erin, "the dashboard")
    erin.get_by_role("button", name="Export PDF").click()
    download = erin.locator("#export-status").get_by_role("link", name="Download PDF")
    expect(download).to_be_visible(timeout=60_000)
    pdf = erin.request.get(stack.url(download.get_attribute("href")))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    check(erin, "the dashboard after its export")
