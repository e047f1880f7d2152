"""Two people on one journey map in real browsers: live updates without reloading, presence, a conflict
resolved with "Keep mine", drag and drop of a step and its keyboard alternative, and the PDF/PNG export,
with no console errors or CSP violations (a drop once caused one: htmx re-settled SortableJS's inline
style). The last test pins a fixed bug: a step promised in 10 min could not be saved."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_foundation_in_browser import accept, invite, settle, sign_up

pytestmark = pytest.mark.e2e

ORGANISATION = "Journey Workshop"
TEMPLATE = "IT incident (employee)"
# What a browser may rightly log: the 409 answer that carries the conflict view.
EXPECTED_CONSOLE = re.compile(r"status of 409")

# A fixed product bug, kept as a helper for diagnosis: after a drag,
# SortableJS has left inline styles (transform, transition) on the steps; when htmx swaps in the new
# board it "settles" the attributes of elements with the same id, re-setting `style` with setAttribute,
# which the CSP (style-src 'self') refuses. Harmless to the user, but a violation report on every drop.
# The fix, checked with this test: "attributesToSettle": ["class", "width", "height"] in base.html's
# htmx-config meta tag (or clearing the steps' style in journey-editor.js before the swap).
WATCH_CSP_DETAILS = """
window.__cspDetails = [];
document.addEventListener("securitypolicyviolation", function (event) {
  var target = event.target && event.target.outerHTML ? event.target.outerHTML.slice(0, 60) : "";
  window.__cspDetails.push(
    {directive: event.violatedDirective, source: event.sourceFile || "", target: target});
});
"""


def known_settle_violation(violation: dict) -> bool:
    return (
        violation["directive"] == "style-src-attr"
        and violation["source"].endswith("/static/vendor/htmx/htmx.min.js")
        and violation["target"].startswith('<li class="step')
    )


def known_settle_console_error(message: str) -> bool:
    inline_style = message.startswith(("Applying inline style violates", "Refused to apply inline style"))
    return inline_style and "/static/vendor/htmx/htmx.min.js" in message


def new_journey_from_template(page: Page, stack, slug: str, title: str) -> str:
    """Through the journeys page: New journey, start from the template; returns the map's URL."""
    page.goto(stack.url(f"/o/{slug}/journeys"))
    details = page.locator("details.new-journey")
    if details.get_attribute("open") is None:
        details.locator("summary").click()
    form = details.locator("form", has=page.get_by_role("button", name="Create journey"))
    form.get_by_label("Title").fill(title)
    option = form.locator("#new-template option", has_text=TEMPLATE)
    form.get_by_label("Start from").select_option(label=option.inner_text().strip())
    form.get_by_role("button", name="Create journey").click()
    expect(page).to_have_url(re.compile(re.escape(stack.url(f"/o/{slug}/journeys/")) + r"\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    return page.url


def step(page: Page, name: str):
    return page.locator("#board li.step", has=page.locator(".step-name", has_text=name))


def cell(page: Page, stage: str, lane: str):
    return page.locator(f'#board ul.cell[aria-label="{stage} / {lane}"]')


def open_edit(page: Page, name: str):
    """Open a step's Edit details; returns the step."""
    item = step(page, name)
    item.locator("details.step-edit > summary").click()
    expect(item.locator("details.step-edit")).to_have_attribute("open", "")
    return item


def clean(page: Page, label: str, *, tolerate_settle_bug: bool = False) -> None:
    """No CSP violation and no console error other than the expected ones (since the last load)."""
    settle(page)
    violations = page.evaluate("() => window.__cspDetails")
    if tolerate_settle_bug:
        violations = [v for v in violations if not known_settle_violation(v)]
    assert violations == [], f"CSP violations for {label}"
    errors = [e for e in page.problems.console_errors if not EXPECTED_CONSOLE.search(e)]
    if tolerate_settle_bug:
        errors = [e for e in errors if not known_settle_console_error(e)]
    assert errors == [], f"console errors for {label}"
    assert page.problems.page_errors == [], f"uncaught exceptions for {label}"


@pytest.fixture
def two_editors(new_person, stack):
    """Ann (owner) and Ben (an editor she invited), both signed in to the same organisation."""
    ann, ben = new_person("ann"), new_person("ben")
    for page in (ann, ben):
        page.context.add_init_script(WATCH_CSP_DETAILS)
    ann_email, ben_email = "ann@workshop.example", "ben@workshop.example"
    slug = sign_up(ann, stack, ann_email, ORGANISATION)
    link = invite(ann, stack, slug, ben_email, "editor")
    accept(ben, stack, link, ORGANISATION, ben_email, "editor")
    return ann, ben, ann_email, ben_email, slug


def test_two_editors_see_each_other_resolve_a_conflict_and_move_steps(two_editors, stack):
    ann, ben, ann_email, ben_email, slug = two_editors
    url = new_journey_from_template(ann, stack, slug, "VPN outage, March")
    ben.goto(url)
    expect(ben.get_by_role("heading", level=1)).to_have_text("VPN outage, March")

    # Presence: each sees the other.
    expect(ben.locator("#presence")).to_contain_text(f"Also here: {ann_email}")
    expect(ann.locator("#presence")).to_contain_text(f"Also here: {ben_email}")

    # Ann renames a step inline; Ben sees it within 2 s (one 1.5 s poll) without reloading.
    ben.evaluate("() => { window.__sameDocument = 'still here'; }")
    item = open_edit(ann, "Hits the problem")
    item.get_by_label("Name", exact=True).fill("Laptop cannot reach the VPN")
    item.get_by_role("button", name="Save step").click()
    expect(step(ann, "Laptop cannot reach the VPN")).to_be_visible()
    expect(ben.locator("#board")).to_contain_text("Laptop cannot reach the VPN", timeout=3000)
    expect(step(ben, "Hits the problem")).to_have_count(0)
    assert ben.evaluate("() => window.__sameDocument") == "still here", "Ben's page reloaded"

    # A conflict: both open the same step; Ann saves first; Ben's form still has the old version.
    ann_item = open_edit(ann, "Calls the service desk")
    ben_item = open_edit(ben, "Calls the service desk")
    ann_item.get_by_label("Name", exact=True).fill("Searches the intranet")
    ann_item.get_by_role("button", name="Save step").click()
    expect(step(ann, "Searches the intranet")).to_be_visible()
    ben_item.get_by_label("Name", exact=True).fill("Asks a colleague")
    with ben.expect_response(lambda r: r.request.method == "POST" and "/steps/" in r.url) as stale:
        ben_item.get_by_role("button", name="Save step").click()
    assert stale.value.status == 409
    conflict = ben.locator("#editor-messages .conflict")
    expect(conflict.get_by_role("heading", name="Changed by someone else")).to_be_visible()
    expect(conflict).to_contain_text("Searches the intranet")  # now stored (Ann's)
    expect(conflict).to_contain_text("Asks a colleague")  # yours (Ben's)
    expect(conflict.get_by_role("button", name="Keep mine")).to_be_visible()
    expect(conflict.get_by_role("button", name="Take theirs")).to_be_visible()
    conflict.get_by_role("button", name="Keep mine").click()
    expect(ben.locator("#editor-messages .conflict")).to_have_count(0)
    expect(step(ben, "Asks a colleague")).to_be_visible()
    expect(step(ann, "Asks a colleague")).to_be_visible(timeout=3000)  # Ann sees Ben's value, live
    expect(step(ann, "Searches the intranet")).to_have_count(0)
    clean(ann, "Ann before the moves")
    clean(ben, "Ben after the conflict")

    # Drag and drop (SortableJS): the renamed step goes one lane down, into an empty cell.
    target = cell(ann, "Notice the problem", "Frontstage")
    expect(target.locator("li.step")).to_have_count(0)
    dragged = step(ann, "Laptop cannot reach the VPN").locator(".step-name")
    with ann.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/move")) as moved:
        dragged.drag_to(target)
    assert moved.value.status == 200
    expect(target).to_contain_text("Laptop cannot reach the VPN")
    expect(cell(ben, "Notice the problem", "Frontstage")).to_contain_text(
        "Laptop cannot reach the VPN", timeout=3000
    )
    clean(ann, "Ann after the drag", tolerate_settle_bug=False)
    ann.reload()
    expect(cell(ann, "Notice the problem", "Frontstage")).to_contain_text("Laptop cannot reach the VPN")
    expect(cell(ann, "Notice the problem", "Actions")).not_to_contain_text("Laptop cannot reach the VPN")

    # The keyboard alternative: the Move step form inside Edit, submitted with Enter.
    item = open_edit(ann, "Checks that it works")
    item.get_by_label("Move to stage").select_option(label="Resolve")
    item.get_by_label("and lane").select_option(label="Backstage")
    item.get_by_label("at position").fill("0")
    with ann.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/move")) as moved:
        item.get_by_label("at position").press("Enter")
    assert moved.value.status == 200
    expect(cell(ann, "Resolve", "Backstage").locator("li.step").first).to_contain_text("Checks that it works")
    ann.reload()
    resolved = cell(ann, "Resolve", "Backstage").locator("li.step")
    expect(resolved.first).to_contain_text("Checks that it works")
    expect(resolved.nth(1)).to_contain_text("Fix applied")
    expect(cell(ann, "Confirm and close", "Actions")).not_to_contain_text("Checks that it works")
    expect(cell(ben, "Resolve", "Backstage")).to_contain_text("Checks that it works", timeout=3000)

    clean(ann, "Ann", tolerate_settle_bug=False)  # its console kept the drag's messages
    clean(ben, "Ben")
    assert ben.evaluate("() => window.__sameDocument") == "still here", "Ben's page reloaded"


def test_a_member_exports_the_map_as_pdf_and_png(page, stack):
    page.context.add_init_script(WATCH_CSP_DETAILS)
    slug = sign_up(page, stack, "erin@exports.example", "Export Works")
    new_journey_from_template(page, stack, slug, "Printed VPN map")
    page.get_by_role("button", name="Export PDF").click()
    status = page.locator("#export-status")
    expect(status.get_by_role("link", name="Download PDF")).to_be_visible(timeout=60_000)
    link = status.get_by_role("link", name="Download PDF").get_attribute("href")
    pdf = page.request.get(stack.url(link))
    assert pdf.status == 200 and pdf.body().startswith(b"%PDF")
    page.get_by_role("button", name="Export PNG").click()
    expect(status.get_by_role("link", name="Download PNG")).to_be_visible(timeout=60_000)
    with page.expect_download() as download:
        status.get_by_role("link", name="Download PNG").click()
    assert download.value.suggested_filename == "Printed_VPN_map.png"
    clean(page, "the exporting member")


def test_a_step_promised_in_ten_minutes_can_be_renamed(page, stack):
    slug = sign_up(page, stack, "pat@durations.example", "Duration Works")
    new_journey_from_template(page, stack, slug, "Ten-minute map")
    item = open_edit(page, "Searches the knowledge base")  # promised in 10 min
    item.get_by_label("Name", exact=True).fill("Searches the wiki")
    item.get_by_role("button", name="Save step").click()
    expect(step(page, "Searches the wiki")).to_be_visible(timeout=3000)
