"""The process-map widget (webapp/static/js/processmap.js) on its own, in a real Chromium.

No app server: a tiny threaded http.server serves the repository root with the app's CSP, and
tests/e2e/processmap_fixture.html loads the vendored dagre, the widget and its stylesheet by relative
paths, drawing tests/e2e/processmap_fixture.json (an IT incident process with a self-loop and rework).
CSP violations show up as console errors, and every test ends with none of those nor page errors.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import threading
from pathlib import Path
from xml.etree import ElementTree

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_PAGE = "/tests/e2e/processmap_fixture.html"
DATA = json.loads((ROOT / "tests" / "e2e" / "processmap_fixture.json").read_text(encoding="utf-8"))
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'"
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error("CSP violation: " + event.violatedDirective + " blocked " + (event.blockedURI || "inline"));
});
"""
DURATION = re.compile(r"^(< 1 s|\d+ s|\d+ min|\d+(\.\d)? h|\d+ d( \d+ h)?)$")


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files from the repository root, with the app's Content-Security-Policy."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format, *args) -> None:  # noqa: A002 (the base class's signature)
        pass


@pytest.fixture(scope="module")
def static_server():
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(ROOT))
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="processmap-static", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def chromium(browser):
    """The session's Chromium (tests/e2e/conftest.py): one Playwright per process."""
    return browser


@pytest.fixture
def map_page(chromium, static_server):
    """The fixture page with its map drawn; `page.problems` collects console and page errors."""
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-GB", accept_downloads=True
    )
    context.set_default_timeout(10_000)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.problems = []
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.goto(static_server + FIXTURE_PAGE)
    expect(page.locator("#map .pm-node[data-activity]")).to_have_count(len(DATA["activities"]))
    yield page
    context.close()


def assert_no_problems(page: Page, allowed: str | None = None) -> None:
    problems = [p for p in page.problems if not (allowed and re.search(allowed, p))]
    assert problems == [], problems


def path_labels(page: Page) -> list[list[str]]:
    """[source, target, label text] of every drawn path."""
    return page.eval_on_selector_all(
        "#map .pm-edge[data-kind=path]",
        "els => els.map(e => [e.dataset.source, e.dataset.target, e.querySelector('text').textContent])",
    )


def transform(page: Page) -> str:
    return page.locator("#map .pm-viewport").get_attribute("transform")


def scale_of(value: str) -> float:
    return float(re.search(r"scale\(([\d.]+)\)", value).group(1))


# ---------------------------------------------------------------------------------------------------------


def test_draws_one_node_per_activity_and_every_path(map_page: Page):
    page = map_page
    names = page.eval_on_selector_all(
        "#map .pm-node[data-activity]", "els => els.map(e => e.dataset.activity)"
    )
    assert sorted(names) == sorted(a["name"] for a in DATA["activities"])
    expect(page.locator("#map .pm-node[data-terminal=start]")).to_have_count(1)
    expect(page.locator("#map .pm-node[data-terminal=end]")).to_have_count(1)
    expect(page.locator("#map .pm-node[data-terminal=start] text")).to_have_text("\u25b6 start")
    expect(page.locator("#map .pm-node[data-terminal=end] text")).to_have_text("\u25a0 end")

    # Each activity shows its name and event count.
    work = page.locator('#map .pm-node[data-activity="Work in progress"]')
    expect(work.locator(".pm-node-name")).to_have_text("Work in progress")
    expect(work.locator(".pm-node-count")).to_have_text("680")

    drawn = {(s, t): int(label.replace(",", "")) for s, t, label in path_labels(page)}
    assert drawn == {(e["source"], e["target"]): e["frequency"] for e in DATA["edges"]}
    assert ("Add work note", "Add work note") in drawn  # the self-loop
    for kind, key in (("start", "start_activities"), ("end", "end_activities")):
        arcs = page.eval_on_selector_all(
            f"#map .pm-edge[data-kind={kind}]",
            "els => els.map(e => [e.dataset.activity, e.querySelector('text').textContent])",
        )
        assert {name: int(count) for name, count in arcs} == DATA[key]
    # Every arc has a line and an arrowhead.
    assert page.locator("#map .pm-edge .pm-edge-line").count() == page.locator("#map .pm-edge").count()
    assert page.locator("#map .pm-edge .pm-edge-head").count() == page.locator("#map .pm-edge").count()

    n_acts, n_edges = len(DATA["activities"]), len(DATA["edges"])
    expect(page.locator("#map .pm-summary")).to_have_text(
        f"Showing {n_acts} of {n_acts} activities and {n_edges} of {n_edges} paths"
    )
    canvas = page.locator("#map .pm-canvas")
    expect(canvas).to_have_attribute("aria-label", f"Process map: {n_acts} activities, {n_edges} paths")
    expect(canvas).to_have_attribute("role", "img")
    expect(canvas).to_have_attribute("tabindex", "0")
    # Real labels and named buttons.
    expect(page.get_by_label("Activities", exact=True)).to_have_value(str(n_acts))
    expect(page.get_by_label("Paths", exact=True)).to_have_value("100")
    for name in ("Frequency", "Performance", "Zoom in", "Zoom out", "Fit", "Download SVG", "Download PNG"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_enabled()
    # No inline style anywhere in the widget (the CSP would have blocked it anyway).
    assert page.locator("#map [style]").count() == 0
    assert_no_problems(page)


def test_performance_mode_labels_paths_with_median_waiting_times(map_page: Page):
    page = map_page
    frequency_colours = page.eval_on_selector_all(
        "#map .pm-edge[data-kind=path] .pm-edge-line", "els => els.map(e => e.getAttribute('stroke'))"
    )
    page.get_by_role("button", name="Performance").click()
    expect(page.get_by_role("button", name="Performance")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Frequency")).to_have_attribute("aria-pressed", "false")

    labels = {(s, t): text for s, t, text in path_labels(page)}
    assert all(DURATION.match(text) for text in labels.values()), labels
    assert labels[("Resolve", "Close")] == "2 d 17 h"  # median 234,541.8 s
    assert labels[("Assign to group", "Work in progress")] == "2.5 h"  # 9,172.3 s
    assert labels[("Alert raised", "Triage")] == "11 min"  # 643 s
    # Start and end arcs keep their counts.
    expect(page.locator('#map .pm-edge[data-kind=start][data-activity="Ticket logged"] text')).to_have_text(
        "320"
    )
    performance_colours = page.eval_on_selector_all(
        "#map .pm-edge[data-kind=path] .pm-edge-line", "els => els.map(e => e.getAttribute('stroke'))"
    )
    assert performance_colours != frequency_colours
    expect(page.locator("#map .pm-legend")).to_contain_text("Median waiting time")

    page.get_by_role("button", name="Frequency").click()
    assert {(s, t): text for s, t, text in path_labels(page)}[("Resolve", "Close")] == "341"

    humanised = page.evaluate(
        "() => [12, 45 * 60, 3.2 * 3600, 2 * 86400 + 4 * 3600, 0, 59.4, 3 * 86400].map("
        "s => JourneylensProcessMap.humanizeDuration(s))"
    )
    assert humanised == ["12 s", "45 min", "3.2 h", "2 d 4 h", "0 s", "59 s", "3 d"]
    assert_no_problems(page)


def test_sliders_filter_activities_and_paths_and_update_the_summary(map_page: Page):
    page = map_page
    page.get_by_label("Activities", exact=True).fill("5")
    nodes = page.locator("#map .pm-node[data-activity]")
    expect(nodes).to_have_count(5)
    top5 = [a["name"] for a in sorted(DATA["activities"], key=lambda a: -a["events"])[:5]]
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.activity)")) == sorted(top5)
    between = [e for e in DATA["edges"] if e["source"] in top5 and e["target"] in top5]
    expect(page.locator("#map .pm-edge[data-kind=path]")).to_have_count(len(between))
    expect(page.locator("#map .pm-summary")).to_have_text(
        f"Showing 5 of {len(DATA['activities'])} activities and {len(between)} of {len(DATA['edges'])} paths"
    )
    expect(page.locator("#map .pm-canvas")).to_have_attribute(
        "aria-label", f"Process map: 5 activities, {len(between)} paths"
    )

    # Paths at 0 %: only what keeps every activity reachable and leavable.
    page.get_by_label("Activities", exact=True).fill(str(len(DATA["activities"])))
    expect(nodes).to_have_count(len(DATA["activities"]))  # redrawn before the next slider moves
    page.get_by_label("Paths", exact=True).fill("0")
    expect(page.locator("#map .pm-summary")).to_contain_text("Showing 12 of 12 activities")
    expect(page.locator("#map .pm-summary")).not_to_contain_text(f"{len(DATA['edges'])} of")
    kept = page.locator("#map .pm-edge[data-kind=path]").count()
    assert 0 < kept < len(DATA["edges"])
    expect(page.locator("#map .pm-summary")).to_have_text(
        re.compile(rf"Showing 12 of 12 activities and {kept} of {len(DATA['edges'])} paths")
    )
    arcs = page.eval_on_selector_all(
        "#map .pm-edge",
        "els => els.map(e => [e.dataset.kind, e.dataset.source || '', e.dataset.target || '', "
        "e.dataset.activity || ''])",
    )
    for activity in DATA["activities"]:
        name = activity["name"]
        assert any(
            (k == "path" and t == name and s != name) or (k == "start" and a == name) for k, s, t, a in arcs
        )
        assert any(
            (k == "path" and s == name and t != name) or (k == "end" and a == name) for k, s, t, a in arcs
        )
    assert_no_problems(page)


def test_download_svg_is_a_standalone_svg_document(map_page: Page):
    page = map_page
    page.get_by_role("button", name="Performance").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download SVG").click()
    download = info.value
    assert download.suggested_filename == "incidents-performance.svg"
    content = Path(download.path()).read_text(encoding="utf-8")
    assert content.startswith("<svg")
    root = ElementTree.fromstring(content)  # noqa: S314 (our own download): well-formed XML
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "Work in progress" in content and "Median waiting time" in content
    assert "style=" not in content and 'transform="translate(0' not in content.split(">", 1)[0]
    assert 'font-family="' in content.split(">", 1)[0]
    assert_no_problems(page)


def test_download_png(map_page: Page):
    page = map_page
    with page.expect_download() as info:
        page.get_by_role("button", name="Download PNG").click()
    download = info.value
    assert download.suggested_filename == "incidents-frequency.png"
    assert Path(download.path()).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert_no_problems(page)


def test_zoom_and_pan_with_buttons_wheel_keys_and_dragging(map_page: Page):
    page = map_page
    fitted = transform(page)
    page.get_by_role("button", name="Zoom in").click()
    zoomed_in = transform(page)
    assert scale_of(zoomed_in) > scale_of(fitted)
    page.get_by_role("button", name="Zoom out").click()
    page.get_by_role("button", name="Zoom out").click()
    assert scale_of(transform(page)) < scale_of(fitted)
    page.get_by_role("button", name="Fit").click()
    assert transform(page) == fitted

    canvas = page.locator("#map .pm-canvas")
    canvas.focus()
    page.keyboard.press("+")
    assert scale_of(transform(page)) > scale_of(fitted)
    before = transform(page)
    page.keyboard.press("ArrowLeft")
    assert transform(page) != before and scale_of(transform(page)) == scale_of(before)
    page.keyboard.press("0")
    assert transform(page) == fitted

    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -300)
    expect(page.locator("#map .pm-viewport")).not_to_have_attribute("transform", fitted)
    assert scale_of(transform(page)) > scale_of(fitted)
    before = transform(page)
    page.mouse.move(box["x"] + 40, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + 140, box["y"] + 90, steps=4)
    page.mouse.up()
    assert transform(page) != before and scale_of(transform(page)) == scale_of(before)
    assert_no_problems(page)


def test_new_maps_after_htmx_swaps_empty_graphs_and_load_errors(map_page: Page):
    page = map_page
    empty = {"activities": [], "edges": [], "start_activities": {}, "end_activities": {}}
    page.route("**/empty-map.json", lambda route: route.fulfill(json=empty))
    page.route("**/not-json.json", lambda route: route.fulfill(body="<html>", content_type="text/html"))
    page.route("**/failing-map.json", lambda route: route.fulfill(status=500, body="boom"))
    page.evaluate(
        """() => {
          for (const name of ["empty-map", "not-json", "failing-map", "processmap_fixture"]) {
            const div = document.createElement("div");
            div.id = name;
            div.setAttribute("data-process-map", "");
            div.setAttribute("data-src", name + ".json");
            document.getElementById("more").appendChild(div);
          }
          document.dispatchEvent(new CustomEvent("htmx:afterSettle", { bubbles: true }));
        }"""
    )
    expect(page.locator("#empty-map .pm-message")).to_have_text("No events to draw.")
    expect(page.locator("#not-json .pm-message")).to_contain_text("Could not load the process map: ")
    expect(page.locator("#failing-map .pm-message")).to_have_text(
        re.compile(r"^Could not load the process map: the server answered 500")
    )
    expect(page.locator("#failing-map .pm-message")).to_have_attribute("role", "alert")
    expect(page.locator("#processmap_fixture .pm-node[data-activity]")).to_have_count(len(DATA["activities"]))
    # The first map was not initialised twice.
    expect(page.locator("#map .pm-toolbar")).to_have_count(1)
    assert_no_problems(page, allowed=r"status of 500")
