"""The foundation as a person sees it in a real browser: signing up, inviting a colleague, roles, the audit
log's live filter, and pages that load without console errors or CSP violations and with basic accessibility.

Every test works in its own organisation with its own emails (the server lives for the whole module).
Set JOURNEYLENS_SCREENSHOT=1 to refresh docs/screenshot.png from the members page of a small team.
"""

from __future__ import annotations

import os
import re
from email import message_from_bytes
from email.policy import default as email_policy
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.support import PASSWORD

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot.png"

# Problems a screen-reader or keyboard user would hit first (not a full audit; axe-core is not vendored).
ACCESSIBILITY_PROBLEMS = """
() => {
  const problems = [];
  if (!(document.documentElement.getAttribute("lang") || "").trim()) problems.push("<html> has no lang");
  const h1s = document.querySelectorAll("h1");
  if (h1s.length !== 1) problems.push(`${h1s.length} <h1> elements instead of exactly one`);
  for (const img of document.querySelectorAll("img")) {
    if (!img.hasAttribute("alt")) problems.push(`<img src="${img.getAttribute("src")}"> has no alt`);
  }
  const skipped = ["hidden", "submit", "button", "reset", "image"];
  for (const el of document.querySelectorAll("input, select, textarea")) {
    const type = (el.getAttribute("type") || "").toLowerCase();
    if (el.tagName === "INPUT" && skipped.includes(type)) continue;
    const visible = el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null;
    if (!visible) continue;
    const byLabel = Array.from(el.labels || []).some((label) => label.textContent.trim() !== "");
    const byAria = (el.getAttribute("aria-label") || "").trim() !== "";
    const byLabelledBy = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).some(
      (id) => id && document.getElementById(id) && document.getElementById(id).textContent.trim() !== "");
    if (!byLabel && !byAria && !byLabelledBy) {
      const tag = el.tagName.toLowerCase();
      problems.push(`<${tag} name="${el.getAttribute("name")}" id="${el.id}"> has no label`);
    }
  }
  return problems;
}
"""


# ---------------------------------------------------------------------------------------------------------
# What a person does
# ---------------------------------------------------------------------------------------------------------


def sign_up(page: Page, stack, email: str, organisation: str) -> str:
    """Sign up through the form; returns the new organisation's slug."""
    page.goto(stack.url("/signup"))
    form = page.locator("main form")
    form.get_by_label("Work email").fill(email)
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Organisation name").fill(organisation)
    form.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(re.escape(stack.url("/o/")) + r"[a-z0-9-]+/$"))
    return page.url.rstrip("/").rsplit("/", 1)[1]


def log_in(page: Page, email: str) -> None:
    """Fill in the login form the page shows."""
    form = page.locator("main form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()


def invite(page: Page, stack, slug: str, email: str, role: str) -> str:
    """As an admin, invite `email` with `role` from the members page; returns the link shown."""
    page.goto(stack.url(f"/o/{slug}/members"))
    form = page.locator("form", has=page.get_by_role("button", name="Create invitation"))
    form.get_by_label("Email", exact=True).fill(email)
    form.get_by_label("Role", exact=True).select_option(role)
    form.get_by_role("button", name="Create invitation").click()
    expect(page.get_by_role("heading", name=f"Invitation link for {email}")).to_be_visible()
    return page.locator("#invite-url").input_value()


def accept(page: Page, stack, link: str, organisation: str, email: str, role: str) -> None:
    """As the invited person (no account yet), open the link, choose a password and join."""
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Join {organisation}")
    expect(page.locator("main")).to_contain_text(f"You are invited as {role} with {email}.")
    expect(page.get_by_label("Email")).to_have_value(email)
    page.get_by_label("Choose a password").fill(PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(organisation)
    expect(page.locator("main")).to_contain_text(f"You are {role} here.")


def member_row(page: Page, email: str):
    return page.locator("main table").first.get_by_role("row").filter(has_text=email)


def settle(page: Page) -> None:
    """Let late console messages and CSP reports of the page arrive."""
    page.wait_for_load_state("load")
    page.evaluate("() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 150)))")


PUBLIC_PAGES = {"landing": "/", "login": "/login", "signup": "/signup"}
ORG_PAGES = {
    "overview": "/o/{slug}/",
    "members": "/o/{slug}/members",
    "settings": "/o/{slug}/settings",
    "tokens": "/o/{slug}/tokens",
    "audit": "/o/{slug}/audit",
    "account": "/account",
}
MAIN_PAGES = [*PUBLIC_PAGES, *ORG_PAGES]


def main_pages(page: Page, stack, email: str, organisation: str):
    """Visit the main pages as a visitor, then as the owner of a new organisation; yields (name, response)."""
    for name, path in PUBLIC_PAGES.items():
        yield name, page.goto(stack.url(path))
    slug = sign_up(page, stack, email, organisation)
    for name, path in ORG_PAGES.items():
        yield name, page.goto(stack.url(path.format(slug=slug)))


# ---------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------


def test_signing_up_lands_on_the_new_organisation_and_logging_out_ends_the_session(page, stack):
    page.goto(stack.url("/"))
    page.get_by_role("button", name="Create your organisation").click()  # a link styled as a button
    expect(page).to_have_url(stack.url("/signup"))
    slug = sign_up(page, stack, "robin@harbour.example", "Harbour Helpdesk")

    assert slug == "harbour-helpdesk"
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Helpdesk")
    expect(page.locator("main")).to_contain_text("You are owner here. 1 member.")
    expect(page.get_by_role("status")).to_contain_text("Welcome to Journeylens. Harbour Helpdesk is ready.")
    expect(page).to_have_title("Overview · Harbour Helpdesk")

    switcher = page.locator("details.org-switcher")
    expect(switcher.locator("summary")).to_have_text("Harbour Helpdesk")
    entry = switcher.get_by_role("link", name="Harbour Helpdesk (owner)")
    expect(entry).to_be_hidden()  # closed until opened
    switcher.locator("summary").click()
    expect(entry).to_be_visible()
    expect(entry).to_have_attribute("aria-current", "page")
    expect(switcher.get_by_role("link", name="+ New organisation")).to_be_visible()
    switcher.locator("summary").click()  # closed again
    expect(entry).to_be_hidden()

    page.locator("details.account-menu summary").click()
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(stack.url("/login"))
    expect(page.get_by_role("status")).to_contain_text("You are logged out.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    expect(page.locator("details.org-switcher")).to_have_count(0)

    page.goto(stack.url(f"/o/{slug}/"))  # the organisation is not visible any more...
    expect(page).to_have_url(re.compile(re.escape(stack.url("/login?next=")) + ".+"))
    expect(page.get_by_role("status")).to_contain_text("Log in to continue.")
    log_in(page, "robin@harbour.example")  # ...until logging in again, which goes back there
    expect(page).to_have_url(stack.url(f"/o/{slug}/"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Harbour Helpdesk")


def test_an_admin_invites_a_colleague_who_joins_and_is_then_made_a_viewer(new_person, stack):
    admin = new_person("admin")
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.base_url)
    slug = sign_up(admin, stack, "grace@lighthouse.example", "Lighthouse Support")
    colleague = "noor@lighthouse.example"

    shown = invite(admin, stack, slug, colleague, "editor")
    expect(admin.get_by_role("main")).to_contain_text("We are also emailing it.")
    pending = admin.locator("main section").get_by_role("row").filter(has_text=colleague)
    expect(pending).to_contain_text("editor")
    link_box = admin.locator("#invite-url")
    link_box.focus()  # selected on focus, ready to copy
    admin.keyboard.press("ControlOrMeta+c")
    link = admin.evaluate("() => navigator.clipboard.readText()")
    assert link == shown
    assert link.startswith(stack.url(f"/join/{slug}/"))

    # The worker mails the same link (its host comes from PUBLIC_URL, unset here).
    mail = message_from_bytes(stack.mail.wait_for(colleague).content, policy=email_policy)
    assert mail["Subject"] == "Join Lighthouse Support on Journeylens"
    assert link.removeprefix(stack.base_url) in mail.get_content()

    member = new_person("colleague")
    member.goto(link)
    assert member.evaluate(ACCESSIBILITY_PROBLEMS) == [], "join page"
    accept(member, stack, link, "Lighthouse Support", colleague, "editor")
    expect(member.get_by_role("status")).to_contain_text("Welcome. You joined Lighthouse Support.")
    member.locator("details.account-menu summary").click()
    expect(member.get_by_role("link", name=colleague)).to_be_visible()  # signed in as themselves
    member.locator("details.account-menu summary").click()

    admin.goto(stack.url(f"/o/{slug}/members"))
    row = member_row(admin, colleague)
    expect(row.get_by_role("cell").nth(1)).to_have_text("editor")
    expect(admin.get_by_role("heading", name="Pending invitations")).to_have_count(0)  # the link was used

    row.get_by_label(f"Role of {colleague}").select_option("viewer")
    row.get_by_role("button", name="Change role").click()
    expect(admin.get_by_role("status")).to_contain_text(f"{colleague} is now viewer.")
    expect(member_row(admin, colleague).get_by_role("cell").nth(1)).to_have_text("viewer")

    member.goto(stack.url(f"/o/{slug}/"))
    expect(member.locator("main")).to_contain_text("You are viewer here.")
    main_nav = member.get_by_role("navigation", name="Main")
    expect(main_nav.get_by_role("link", name="Settings")).to_have_count(0)
    response = member.goto(stack.url(f"/o/{slug}/settings"))
    assert response.status == 403
    expect(member.get_by_role("heading", level=1)).to_have_text("Forbidden")
    expect(member.locator("main")).to_contain_text("This needs the admin role")
    expect(member.get_by_role("link", name="Back to Journeylens")).to_be_visible()
    assert member.evaluate(ACCESSIBILITY_PROBLEMS) == [], "403 page"


def test_main_pages_have_no_console_errors_nor_csp_violations_and_load_htmx(page, stack):
    visited = []
    for name, response in main_pages(page, stack, "owner@clean.example", "Clean Console Co"):
        settle(page)
        assert response.status == 200, name
        assert "script-src 'self'" in response.headers["content-security-policy"], name
        assert page.evaluate("() => typeof window.htmx") == "object", f"htmx is not loaded on {name}"
        assert re.fullmatch(r"2\.\d+\.\d+", page.evaluate("() => window.htmx.version")), name
        assert page.evaluate("() => window.__cspViolations") == [], f"CSP violations on {name}"
        assert page.problems.console_errors == [], f"console errors on {name}"
        assert page.problems.page_errors == [], f"uncaught exceptions on {name}"
        visited.append(name)
    assert visited == MAIN_PAGES

    # The watch works: an inline script (what an injection would add) is refused and reported.
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__inlineRan = true"; document.head.appendChild(s); }"""
    )
    settle(page)
    assert page.evaluate("() => window.__inlineRan") is None
    assert any(v.startswith("script-src") for v in page.evaluate("() => window.__cspViolations"))
    assert any("Content Security Policy" in error for error in page.problems.console_errors)


def test_main_pages_pass_basic_accessibility_checks(page, stack):
    checked = {}
    for name, response in main_pages(page, stack, "owner@access.example", "Accessible Aid"):
        assert response.status == 200, name
        checked[name] = page.evaluate(ACCESSIBILITY_PROBLEMS)
    assert list(checked) == MAIN_PAGES
    assert checked == {name: [] for name in checked}


def test_the_audit_log_filters_in_place_with_htmx(page, stack):
    slug = sign_up(page, stack, "kim@ledger.example", "Ledger Desk")
    page.goto(stack.url(f"/o/{slug}/tokens"))
    page.get_by_label("Token name").fill("ServiceNow export")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("heading", name="Your new token")).to_be_visible()
    invite(page, stack, slug, "lee@ledger.example", "viewer")

    page.goto(stack.url(f"/o/{slug}/audit"))
    rows = page.locator("#audit-rows tr")
    expect(rows).to_have_count(4)  # organisation.create, member.add, token.create, invitation.create
    page.evaluate("() => { window.__sameDocument = 'still here'; }")
    action = page.get_by_label("Action")
    expect(action.locator("option")).to_have_text(
        ["Any action", "invitation.create", "member.add", "organisation.create", "token.create"]
    )

    with page.expect_response(lambda r: "/audit?" in r.url) as answer:
        action.select_option("token.create")
    assert answer.value.status == 200
    assert answer.value.request.headers.get("hx-request") == "true"
    expect(rows).to_have_count(1)
    expect(rows.first.locator("code")).to_have_text("token.create")
    expect(rows.first).to_contain_text("ServiceNow export")
    expect(rows.first).to_contain_text("kim@ledger.example")
    expect(page).to_have_url(re.compile(r"/audit\?action=token\.create"))  # shareable, bookmarkable
    assert page.evaluate("() => window.__sameDocument") == "still here", "the page reloaded"
    expect(page.get_by_role("heading", level=1)).to_have_count(1)  # rows swapped in, not a page in a page
    expect(page.locator("main table thead")).to_have_count(1)

    action.select_option("invitation.create")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("lee@ledger.example")
    page.get_by_label("Actor email").fill("nobody@ledger.example")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_text(["No events match these filters."])
    page.get_by_label("Actor email").fill("")
    action.select_option("")
    expect(rows).to_have_count(4)
    assert page.evaluate("() => window.__sameDocument") == "still here", "the page reloaded"

    action.select_option("member.add")
    expect(rows).to_have_count(1)
    page.reload()  # the pushed URL is a real page: the filter survives a reload
    assert page.evaluate("() => window.__sameDocument") is None
    expect(page.get_by_label("Action")).to_have_value("member.add")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("code")).to_have_text("member.add")
    assert page.problems.console_errors == [] and page.problems.page_errors == []


def test_the_members_page_of_a_small_team(new_person, stack):
    owner = new_person("owner")
    slug = sign_up(owner, stack, "dana.whitfield@northwind.example", "Northwind Service Desk")
    team = [
        ("marco.rossi@northwind.example", "admin"),
        ("aisha.khan@northwind.example", "editor"),
        ("li.wei@northwind.example", "viewer"),
    ]
    for email, role in team:
        link = invite(owner, stack, slug, email, role)
        accept(new_person(email), stack, link, "Northwind Service Desk", email, role)
    invite(owner, stack, slug, "sam.okafor@northwind.example", "viewer")  # not accepted yet

    owner.goto(stack.url(f"/o/{slug}/members"))
    members = owner.locator("main table").first.locator("tbody tr")
    expect(members).to_have_count(4)
    expect(member_row(owner, "dana.whitfield@northwind.example")).to_contain_text("(you)")
    for email, role in [("dana.whitfield@northwind.example", "owner"), *team]:
        expect(member_row(owner, email).get_by_role("cell").nth(1)).to_have_text(role)
    pending = owner.locator("main section table tbody tr")
    expect(pending).to_have_count(1)
    expect(pending.first).to_contain_text("sam.okafor@northwind.example")

    if os.environ.get("JOURNEYLENS_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        owner.screenshot(path=str(SCREENSHOT), animations="disabled", caret="hide")
