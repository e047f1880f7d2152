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


def owner_and_member(new_person, stack, organisation: str, owner: str, member: str, role: str):
    """`owner` signs up `organisation` and invites `member` with `role`; both signed in, pages watched
    for CSP violations. Returns (owner page, member page, owner email, member email, slug)."""
    first, second = new_person(owner), new_person(member)
    for page in (first, second):
        page.context.add_init_script(WATCH_CSP_DETAILS)
    domain = organisation.lower().replace(" ", "-") + ".example"
    first_email, second_email = f"{owner}@{domain}", f"{member}@{domain}"
    slug = sign_up(first, stack, first_email, organisation)
    link = invite(first, stack, slug, second_email, role)
    accept(second, stack, link, organisation, second_email, role)
    return first, second, first_email, second_email, slug


@pytest.fixture
def two_editors(new_person, stack):
    """Ann (owner) and Ben (an editor she invited), both signed in to the same organisation."""
    return owner_and_member(new_person, stack, ORGANISATION, "ann", "ben", "editor")


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


def stage_names(page: Page) -> list[str]:
    """The stage headers left to right, as the map draws them now."""
    return [
        value.strip()
        for value in page.locator("#board thead th.stage input[name=name]").evaluate_all(
            "(inputs) => inputs.map((input) => input.value)"
        )
    ]


def stage_header(page: Page, name: str):
    return page.locator("#board thead th.stage", has=page.locator(f'input[name=name][value="{name}"]'))


def drag_header(page: Page, name: str, onto: str) -> None:
    """Drag a stage header by its grip onto the right half of another header, as a person would: press,
    move in small steps, rest, release (SortableJS ignores moves while its 120 ms animation runs)."""
    grip = stage_header(page, name).locator(".stage-grip").bounding_box()
    target = stage_header(page, onto).bounding_box()
    start_x, start_y = grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2
    end_x, end_y = target["x"] + target["width"] * 0.8, target["y"] + target["height"] / 2
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x + 10, start_y, steps=3)
    page.mouse.move(end_x, end_y, steps=20)
    page.wait_for_timeout(300)
    page.mouse.move(end_x + 5, end_y, steps=2)
    page.wait_for_timeout(300)
    page.mouse.up()


@pytest.fixture
def two_stage_editors(new_person, stack):
    """Ann (owner) and Ben (an editor) of an organisation of their own (the module shares one database)."""
    return owner_and_member(new_person, stack, "Stage Works", "ann", "ben", "editor")


def test_stages_are_dragged_into_place_live_and_a_stale_drag_shows_the_conflict(two_stage_editors, stack):
    ann, ben, _, _, slug = two_stage_editors
    url = new_journey_from_template(ann, stack, slug, "Printer jam, April")
    ben.goto(url)
    original = ["Notice the problem", "Report", "Diagnose", "Resolve", "Confirm and close"]
    assert stage_names(ann) == original

    # Ann drags "Notice the problem" past "Diagnose": one POST of the stage's move, the board redrawn.
    with ann.expect_response(lambda r: r.request.method == "POST" and "/stages/" in r.url) as moved:
        drag_header(ann, "Notice the problem", onto="Diagnose")
    assert moved.value.status == 200
    assert "action=move" in moved.value.request.post_data and "position=2" in moved.value.request.post_data
    dragged = ["Report", "Diagnose", "Notice the problem", "Resolve", "Confirm and close"]
    expect(ann.locator("#board thead th.stage input[name=name]").nth(2)).to_have_value("Notice the problem")
    assert stage_names(ann) == dragged
    # Ben sees it within 2 s (one 1.5 s poll), without a reload; so does a fresh page.
    expect(ben.locator("#board thead th.stage input[name=name]").nth(2)).to_have_value(
        "Notice the problem", timeout=3000
    )
    assert stage_names(ben) == dragged
    ann.reload()
    assert stage_names(ann) == dragged

    # The buttons stay as the keyboard alternative: Ann moves "Resolve" left with ◀ and Enter.
    ann.get_by_role("button", name="Move stage Resolve left").focus()
    with ann.expect_response(lambda r: r.request.method == "POST" and "/stages/" in r.url) as moved:
        ann.keyboard.press("Enter")
    assert moved.value.status == 200
    expect(ann.locator("#board thead th.stage input[name=name]").nth(2)).to_have_value("Resolve")

    # A stale drag: Ben's map stops updating (his polls answered "nothing new"), Ann moves "Report"
    # with a button, then Ben drags his stale "Report": refused with the conflict view, nothing moved.
    ben.route(re.compile(r"/board\?since="), lambda route: route.fulfill(status=204))
    expect(ben.locator("#board thead th.stage input[name=name]").first).to_have_value("Report", timeout=3000)
    ann.get_by_role("button", name="Move stage Report right").click()
    expect(ann.locator("#board thead th.stage input[name=name]").nth(1)).to_have_value("Report")
    with ben.expect_response(lambda r: r.request.method == "POST" and "/stages/" in r.url) as stale:
        drag_header(ben, "Report", onto="Resolve")
    assert stale.value.status == 409
    conflict = ben.locator("#editor-messages .conflict")
    expect(conflict.get_by_role("heading", name="Changed by someone else")).to_be_visible()
    expect(conflict).to_contain_text("so it was not moved")
    ben.unroute(re.compile(r"/board\?since="))
    conflict.get_by_role("button", name="Take theirs").click()
    expect(ben.locator("#editor-messages .conflict")).to_have_count(0)
    theirs = ["Diagnose", "Report", "Resolve", "Notice the problem", "Confirm and close"]
    expect(ben.locator("#board thead th.stage input[name=name]").nth(1)).to_have_value("Report")
    assert stage_names(ben) == stage_names(ann) == theirs
    clean(ann, "Ann after dragging stages")
    clean(ben, "Ben after the stale drag")


@pytest.fixture
def owner_and_viewer(new_person, stack):
    """Cleo (owner) and Dev (a viewer she invited), both signed in to the same organisation."""
    return owner_and_member(new_person, stack, "Comment Works", "cleo", "dev", "viewer")


def post_comment(page: Page, body: str, about: str | None = None) -> None:
    form = page.locator("#comments form.new-thread")
    if about is not None:
        form.get_by_label("About").select_option(label=about)
    form.get_by_label("New comment").fill(body)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/comments")) as sent:
        form.get_by_role("button", name="Comment").click()
    assert sent.value.status == 200


def test_comments_and_the_inbox_count_appear_live_for_another_viewer(owner_and_viewer, stack):
    cleo, dev, _, dev_email, slug = owner_and_viewer
    url = new_journey_from_template(cleo, stack, slug, "Badge reader broken")
    dev.goto(url)
    expect(dev.locator("#comment-threads")).to_contain_text("No open threads")
    dev.evaluate("() => { window.__sameDocument = 'still here'; }")
    expect(dev.locator("#inbox-link .badge")).to_have_count(0)

    # On the journey, mentioning Dev: the thread and Dev's unread count appear within 2 s.
    post_comment(cleo, f"Is the first step right, @{dev_email}?")
    thread = dev.locator("#comment-threads .comment-thread", has_text="Is the first step right")
    expect(thread).to_contain_text("On the whole journey", timeout=2000)
    expect(dev.locator("#inbox-link .badge")).to_have_text(re.compile(r"^1"), timeout=2000)

    # On a step.
    post_comment(cleo, "This one takes two days.", about="Report › Actions: Calls the service desk")
    thread = dev.locator("#comment-threads .comment-thread", has_text="This one takes two days.")
    expect(thread).to_contain_text("On step Calls the service desk", timeout=2000)

    # What Dev is writing is not taken away by the polls: he replies while Cleo comments again.
    reply_box = dev.locator("#comment-threads .comment-thread", has_text="This one takes two days.")
    reply_box.locator("summary", has_text="Reply").click()
    reply_box.get_by_label("Reply in this thread").fill("Three, when the desk is busy")
    post_comment(cleo, "A third thread meanwhile.")
    dev.wait_for_timeout(2000)  # more than one poll
    expect(reply_box.get_by_label("Reply in this thread")).to_have_value("Three, when the desk is busy")
    reply_box.get_by_role("button", name="Reply").click()
    expect(dev.locator("#comment-threads")).to_contain_text("A third thread meanwhile.")
    expect(cleo.locator("#comment-threads")).to_contain_text("Three, when the desk is busy", timeout=2000)

    assert dev.evaluate("() => window.__sameDocument") == "still here", "Dev's page reloaded"
    clean(cleo, "Cleo commenting")
    clean(dev, "Dev reading live")
