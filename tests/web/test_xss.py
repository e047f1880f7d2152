"""Hostile text in every field, on every page (issue 7).

An organisation is filled through the services with objects of every kind whose every user-editable text
holds an XSS payload (a script element, an attribute break with an event handler, a ``javascript:`` URL):
the organisation's and members' names, a persona, a journey (title, scenario, tags, stages, lanes, steps
with their descriptions, touchpoints and teams, notes), a named version, a template, comments, a share
link, an API token, event logs (their names, column names, and the activity, resource and attribute values
inside a mined log, so they reach the process map, the variants and the filters), the journey's overlay on
that log, and a goal with a check-in and an initiative. Then every GET rule of the app that the world can
fill is fetched as the owner (as a page, and as an htmx partial), the share page anonymously, and each HTML
answer is parsed: no element may come from a payload (no <script> running it, no attribute named on…,
no <img src=x>), and no URL attribute may start with ``javascript:``. Each field's escaped text must show
somewhere, so the test proves the payload was really rendered.

The second test fills the same fields with spreadsheet formulas: every CSV the app serves has them
defused (a leading quote), the JSON export keeps the exact text, and importing that JSON gives the same
journey back.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote as url_quote

import sqlalchemy as sa

from tests import support
from tests.support import login

SCRIPT = "<script>alert(1)</script>"
BREAK = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
PAYLOAD = f"{SCRIPT} {BREAK} {JS_URL}"
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "xlink:href", "poster", "data", "hx-get", "hx-post"}


def hostile(label: str) -> str:
    """A field's value: its label (to find where it shows), then the payloads."""
    return f"{label} {PAYLOAD}"


def escaped(label: str) -> str:
    return f"{label} &lt;script&gt;alert(1)&lt;/script&gt;"


class _Scan(HTMLParser):
    """Collects every element or attribute of a page that a payload could have produced."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name.startswith("on"):  # the app has no inline handlers at all (CSP): any is injected
                self.found.append(f"<{tag} {name}={value!r}>")
            if (
                name in URL_ATTRIBUTES
                and value
                and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith("javascript:")
            ):
                self.found.append(f"<{tag} {name}={value!r}>")
        if tag == "img" and dict(attrs).get("src") == "x":
            self.found.append("<img src=x>")
        if tag == "script":
            self._script = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        self._script = False

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = False

    def handle_data(self, data: str) -> None:
        if self._script and "alert(1)" in data:
            self.found.append(f"<script>{data[:80]}</script>")


def injected(html: str) -> list[str]:
    """What of a page came from a payload (empty when everything was escaped)."""
    scan = _Scan()
    scan.feed(html)
    scan.close()
    found = scan.found
    if SCRIPT.lower() in html.lower() or "<img src=x" in html.lower():
        found.append("a raw payload in the text")
    return found


# --------------------------------------------------------------------------------------------
# The world


def build_world(app, value: Callable[[str], str]) -> dict[str, Any]:
    """An organisation whose every text field is `value(label)`; its slug, ids and share secret."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, comments, journeys, sharing, tokens
    from webapp.services import overlay as overlay_service

    tenant = support.make_tenant(app, value("Organisation")[:120], "x")
    labels: list[str] = ["Organisation"]

    def text(label: str) -> str:
        labels.append(label)
        return value(label)

    with app.test_request_context():
        owner = db.session.scalar(sa.select(User).where(User.email == tenant.emails["owner"]))
        editor = db.session.scalar(sa.select(User).where(User.email == tenant.emails["editor"]))
        owner.display_name = text("Owner name")[:120]
        editor.display_name = text("Editor name")[:120]
        db.session.commit()
        tenancy.activate(tenant.organisation_id, owner.id)
        actor = Actor(owner.id)
        journeys.create_persona(
            {
                "name": text("Persona name"),
                "role": text("Persona role"),
                "goals": text("Persona goals"),
                "frustrations": text("Persona frustrations"),
                "quote": text("Persona quote"),
            },
            actor,
        )
        lanes = [text("Lane one"), text("Lane two")]
        data = {
            "title": text("Journey title"),
            "scenario": text("Journey scenario"),
            "tags": [value("Tag")[:50], SCRIPT, BREAK, JS_URL],
            "persona": {
                "name": text("Inline persona"),
                "role": "",
                "goals": "",
                "frustrations": "",
                "quote": text("Inline quote"),
            },
            "lanes": [{"name": lane} for lane in lanes],
            "stages": [
                {
                    "name": text(f"Stage {s}"),
                    "steps": [
                        {
                            "name": text(f"Step {s}{t}"),
                            "lane": lanes[t % 2],
                            "description": text(f"Description {s}{t}"),
                            "touchpoint": text(f"Touchpoint {s}{t}"),
                            "owner_team": text(f"Team {s}{t}"),
                            "notes": [
                                {"kind": kind, "text": text(f"Note {kind} {s}{t}")}
                                for kind in ("pain_point", "opportunity", "idea", "question")
                            ],
                        }
                        for t in range(2)
                    ],
                }
                for s in range(2)
            ],
        }
        journey = journeys.import_json(data, actor)
        board = journeys.board(journey.id)
        step = board.steps[0]
        journeys.update_step(
            step.id, {"description": text("Edited description")}, actor, expected_version=step.version
        )
        version = journeys.save_named_version(journey.id, text("Version name"), actor)
        journeys.save_as_template(journey.id, text("Template name"), actor)
        thread = comments.start_thread(journey.id, text("Comment") + " @editor@x.example", actor)
        comments.reply(journey.id, thread.id, text("Reply"), Actor(editor.id))
        comments.start_thread(journey.id, text("Step comment"), actor, step_id=step.id)
        share = sharing.create_link(journey.id, actor, label=text("Share label"))
        tokens.issue(owner, text("Token name")[:120], actor)
        db.session.commit()

        mined_id = _mined_log(app, tenant, owner.id, text)
        previewed_id = _previewed_log(tenant, owner.id, text)
        failed_id = _failed_log(owner.id, text)

        tenancy.activate(tenant.organisation_id, owner.id)
        link = overlay_service.link_log(journey.id, mined_id, actor)
        activities = [name for name, _ in overlay_service.log_activities(link.event_log)]
        overlay_service.save_mapping(journey.id, link.id, {activities[0]: step.id}, actor, enqueue=False)
        link_id = link.id
        goal_id = _goal(journey.id, step.id, owner, text)
        ids = {
            "journey_id": journey.id,
            "stage_id": board.stages[0].id,
            "lane_id": board.lanes[0].id,
            "step_id": step.id,
            "version_id": version.id,
            "comment_id": thread.id,
            "link_id": share.link.id,
            "token": share.secret,
            "log_id": mined_id,
            "log_link_id": link_id,
            "goal_id": goal_id,
        }
        db.session.remove()
    ids["snapshot_id"], ids["case"] = _measure(app, tenant)
    return {
        "tenant": tenant,
        "ids": ids,
        "labels": list(dict.fromkeys(labels)),
        "extra_logs": [previewed_id, failed_id],
    }


def _log_csv(text: Callable[[str], str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    columns = ["case", "activity", "time", "resource", text("Column name")]
    writer.writerow(columns)
    acts = [text("Activity A"), text("Activity B"), text("Activity C")]
    case_id = text("Case id")
    channel = [text("Attribute value"), "phone"]
    start = date(2024, 3, 1)
    for case in range(6):
        for i, act in enumerate(acts[: 2 + case % 2]):
            day = start + timedelta(days=case)
            writer.writerow(
                [f"{case_id} {case}", act, f"{day} {i + 8:02d}:00:00", text("Resource"), channel[case % 2]]
            )
    return out.getvalue().encode()


def _mined_log(app, tenant, owner_id: int, text: Callable[[str], str]) -> int:
    """Uploaded and mined in this process (as the worker would), with hostile values inside."""
    from webapp.extensions import db
    from webapp.services import Actor, eventlogs
    from worker.jobs.eventlogs import mine_run

    # The file name keeps only what follows the last "/" (of </script>): it is shown, but not a label.
    filename = text("Log name").replace("Log name", "Log file") + ".csv"
    log = eventlogs.upload(filename, io.BytesIO(_log_csv(text)), Actor(owner_id), text("Log name"))
    log.mapping = {"case": "case", "activity": "activity", "timestamp": "time", "resource": "resource"}
    run = eventlogs.start_run(log, enqueue=False)
    log_id, run_id = log.id, run.id
    db.session.commit()
    with app.app_context():
        mine_run(run_id, organisation_id=tenant.organisation_id)
    return log_id


def _previewed_log(tenant, owner_id: int, text: Callable[[str], str]) -> int:
    """Previewed, waiting for its mapping: the mapping form shows the hostile columns and rows."""
    import tempfile
    from pathlib import Path

    from webapp.services import Actor, eventlogs
    from worker.mining import preview

    data = _log_csv(text)
    log = eventlogs.upload("second.csv", io.BytesIO(data), Actor(owner_id), text("Second log"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "second.csv"
        path.write_bytes(data)
        eventlogs.record_preview(log.id, preview(path).to_dict())
    return log.id


def _failed_log(owner_id: int, text: Callable[[str], str]) -> int:
    """Failed with a reason that quotes the hostile column it was told to use."""
    from webapp.services import Actor, eventlogs

    log = eventlogs.upload("third.csv", io.BytesIO(b"a,b,c\n1,2,3\n"), Actor(owner_id), text("Third log"))
    eventlogs.record_preview(log.id, {"columns": ["a", "b", "c"], "rows": [["1", "2", "3"]]})
    log.mapping = {"case": text("Missing column"), "activity": "b", "timestamp": "c"}
    eventlogs.start_when_mapped(log.id)
    return log.id


def _goal(journey_id: int, step_id: int, owner, text: Callable[[str], str]) -> int | None:
    """A goal with a check-in and an initiative (when the goals service exists in this checkout)."""
    try:
        from webapp.services import goals
    except ImportError:
        return None
    from webapp.models import Role
    from webapp.services import Actor

    today = date.today()
    goal = goals.create_goal(
        {
            "title": text("Goal title"),
            "why": text("Goal why"),
            "owner_id": owner.id,
            "journey_id": journey_id,
            "kpi_source": "manual",
            "kpi_metric": text("KPI")[:64],
            "kpi_unit": "h",
            "direction": "lower",
            "baseline": 10,
            "target": 5,
            "start_on": (today - timedelta(days=30)).isoformat(),
            "due_on": (today + timedelta(days=60)).isoformat(),
        },
        Actor(owner.id),
    )
    goals.check_in(goal.id, text("Check-in note"), 3, Actor(owner.id), Role.OWNER)
    goals.add_initiative(goal.id, {"title": text("Initiative")}, Actor(owner.id))
    return goal.id


def _measure(app, tenant) -> tuple[int, str]:
    """Run the queued overlay measurement in this process; the snapshot's id and an example case."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.overlay import MeasurementSnapshot
    from worker.jobs.overlay import measure_snapshot

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        snapshot_id = db.session.scalar(
            sa.select(MeasurementSnapshot.id).order_by(MeasurementSnapshot.id.desc())
        )
        db.session.remove()
    with app.app_context():
        measure_snapshot(snapshot_id, organisation_id=tenant.organisation_id)
    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
        assert snapshot.status == "finished", (snapshot.status, snapshot.error)
        case = next(iter(snapshot.details["case_timelines"]))
        db.session.remove()
    return snapshot_id, case


def get_urls(app, world) -> tuple[list[tuple[str, str]], set[str]]:
    """(endpoint, url) for every GET rule the world can fill, and the endpoints it cannot."""
    from flask import url_for

    ids = {**world["ids"], "org_slug": world["tenant"].slug}
    urls, unfilled = [], set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if any(ids.get(argument) is None for argument in rule.arguments):
            unfilled.add(rule.endpoint)
            continue
        with app.test_request_context():
            urls.append((rule.endpoint, url_for(rule.endpoint, **{a: ids[a] for a in rule.arguments})))
    slug = world["tenant"].slug
    urls += [(f"orgs.eventlogs.show#{i}", f"/o/{slug}/eventlogs/{i}") for i in world["extra_logs"]]
    case = url_quote(world["ids"]["case"])
    urls = [(e, f"{url}?case={case}" if e == "orgs.overlay.case" else url) for e, url in urls]
    urls += [
        ("orgs.journeys.index?q", f"/o/{slug}/journeys?q=Journey"),
        ("orgs.audit_log?q", f"/o/{slug}/audit?q=a"),
    ]
    return urls, unfilled


# Pages that show the hostile fields: each must have been fetched and answered 200.
MUST_RENDER = {
    "orgs.overview",
    "orgs.members",
    "orgs.settings",
    "orgs.api_tokens",
    "orgs.audit_log",
    "orgs.journeys.index",
    "orgs.journeys.personas",
    "orgs.journeys.show",
    "orgs.journeys.board",
    "orgs.journeys.history",
    "orgs.collab.comments",
    "orgs.collab.share_links",
    "orgs.collab.inbox",
    "orgs.eventlogs.index",
    "orgs.eventlogs.show",
    "orgs.overlay.show",
    "orgs.overlay.mapping",
    "orgs.overlay.case",
    "auth.account",
    "share.view",
}


def test_no_template_lets_hostile_text_become_markup(app, make_client):
    world = build_world(app, hostile)
    slug = world["tenant"].slug
    owner = make_client()
    login(owner, world["tenant"].emails["owner"])
    editor = make_client()  # the one mentioned: the inbox shows the comment to them
    login(editor, world["tenant"].emails["editor"])
    anonymous = make_client()
    urls, unfilled = get_urls(app, world)
    seen_html: list[str] = []
    fetched: dict[str, set[int]] = {}
    problems: list[str] = []
    for endpoint, url in urls:
        clients = [owner, editor] if endpoint.startswith("orgs.collab.inbox") else [owner]
        if endpoint == "share.view":
            clients = [anonymous, owner]
        for client in clients:
            for headers in ({}, {"HX-Request": "true"}):
                try:
                    response = client.get(url, headers=headers)
                except Exception as error:  # the testing app propagates: name the page, check the rest
                    problems.append(f"{url}: raised {type(error).__name__}: {str(error)[:200]}")
                    continue
                fetched.setdefault(endpoint, set()).add(response.status_code)
                if response.status_code >= 500:
                    problems.append(f"{url}: answered {response.status_code}")
                body = response.get_data(as_text=True)
                if response.mimetype == "text/html":
                    problems += [f"{url}: {found}" for found in injected(body)]
                    seen_html.append(body)
                elif response.mimetype == "application/json":
                    json.loads(body)  # data, never served as HTML (and nosniff is on)
                else:
                    assert response.mimetype in ("text/csv", "application/pdf", "image/png"), (
                        url,
                        response.mimetype,
                    )
    missing = {e for e in MUST_RENDER if 200 not in fetched.get(e, set())}
    if missing:
        problems.append(
            f"not fetched, or not 200: {sorted(missing)}; rules the world cannot fill: {unfilled}"
        )
    everything = "\n".join(seen_html)
    not_shown = [label for label in world["labels"] if escaped(label) not in everything]
    if not_shown:
        problems.append(f"fields never shown (escaped) on any page: {not_shown}")
    assert problems == [], "\n".join(problems)
    # The tags and the mapping form's column names are shown too, and a log's page names its activities.
    log_page = owner.get(f"/o/{slug}/eventlogs/{world['ids']['log_id']}").get_data(as_text=True)
    for label in ("Activity A", "Activity B", "Activity C", "Attribute value", "Column name"):
        assert escaped(label) in log_page, label
    # A variant's filter value (JSON in an attribute) reaches the server as the exact activities.
    options = _Options()
    options.feed(log_page)
    variant = json.loads(options.values[0])
    assert variant[0] == hostile("Activity A")
    filtered = owner.post(
        f"/o/{slug}/eventlogs/{world['ids']['log_id']}/filter",
        data={"csrf_token": support.csrf_token(log_page), "variant": options.values[0]},
    )
    assert filtered.status_code == 302
    assert _latest_run_filters(app, world) == {"variant": variant}


class _Options(HTMLParser):
    """The values of the variant filter's options, as a browser would send them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.values: list[str] = []
        self._in = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "select":
            self._in = dict(attrs).get("name") == "variant"
        elif tag == "option" and self._in and dict(attrs).get("value"):
            self.values.append(dict(attrs)["value"] or "")


def _latest_run_filters(app, world) -> dict | None:
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import MiningRun

    with app.app_context():
        tenancy.activate(world["tenant"].organisation_id)
        run = db.session.scalar(sa.select(MiningRun).order_by(MiningRun.id.desc()).limit(1))
        filters = run.filters
        db.session.remove()
        return filters


# --------------------------------------------------------------------------------------------
# CSV exports and formula injection

NUMBER = re.compile(r"-?\d+(\.\d+)?")
FORMULAS = ('=HYPERLINK("http://evil.example","x")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)")


def formula(label: str) -> str:
    """A value a spreadsheet would run as a formula; which one depends on the label."""
    return FORMULAS[sum(map(ord, label)) % len(FORMULAS)] + f" {label}"


def test_every_csv_export_defuses_formulas_and_the_json_keeps_the_exact_text(app, make_client):
    world = build_world(app, formula)
    owner = make_client()
    login(owner, world["tenant"].emails["owner"])
    urls, _ = get_urls(app, world)
    csv_urls = [url for endpoint, url in urls if endpoint.endswith("csv")]
    csv_urls.append(f"/o/{world['tenant'].slug}/journeys/{world['ids']['journey_id']}/export.csv")
    cells = 0
    for url in dict.fromkeys(csv_urls):
        response = owner.get(url)
        assert response.status_code == 200 and response.mimetype == "text/csv", url
        for row in csv.reader(io.StringIO(response.get_data(as_text=True))):
            for cell in row:
                # Nothing a spreadsheet would run: no formula start, and "-" only for a number.
                assert not cell.startswith(("=", "+", "@", "\t", "\r")), (url, cell)
                assert not cell.startswith("-") or NUMBER.fullmatch(cell), (url, cell)
                if (
                    cell[:1] == "'"
                    and cell[1:2] in "=+-@"
                    and any(label in cell for label in world["labels"])
                ):
                    cells += 1
    assert cells >= 20, f"only {cells} user-written cells defused in {csv_urls}"
    # The JSON export keeps every text exactly, and importing it gives the same journey again.
    journey_url = f"/o/{world['tenant'].slug}/journeys/{world['ids']['journey_id']}/export.json"
    exported = json.loads(owner.get(journey_url).get_data(as_text=True))
    assert exported["title"] == formula("Journey title")
    assert exported["stages"][1]["steps"][1]["notes"][2]["text"] == formula("Note idea 11")
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, journeys

    with app.test_request_context():
        tenancy.activate(world["tenant"].organisation_id)
        user = db.session.scalar(sa.select(User).where(User.email == world["tenant"].emails["owner"]))
        again = journeys.import_json(exported, Actor(user.id))
        assert journeys.export_json(again.id) == exported
        db.session.remove()
