"""Tenant isolation over every URL rule: another organisation's member gets 404 (never 403), an
anonymous visitor a login redirect or 401, a viewer 403 on writes; nothing of A leaks into a body.

A new URL rule without an entry in RULES fails `test_every_rule_has_a_case`.
"""

from __future__ import annotations

import io
import re

import pytest
import sqlalchemy as sa

from tests.support import csrf_token, login

# endpoint -> kind: "public" (anyone), "user" (any signed-in user, no tenant data in the URL),
# "org" (under /o/<org_slug>/), "api" (bearer token), "static".
RULES = {
    "static": "static",
    "core.index": "public",
    "core.healthz": "public",
    "core.readyz": "public",
    "core.new_organisation": "user",
    "core.organisation_menu": "user",
    "auth.signup": "public",
    "auth.login": "public",
    "auth.logout": "user",
    "auth.account": "user",
    "auth.join": "public",
    "orgs.overview": "org",
    "orgs.goals.index": "org",
    "orgs.dashboard.index": "org",
    "orgs.dashboard.goals_csv": "org",
    "orgs.dashboard.measurements_csv": "org",
    "orgs.dashboard.start_export": "org",
    "orgs.dashboard.export_status": "org",
    "orgs.dashboard.export_file": "org",
    "orgs.dashboard.digest_list": "org",
    "orgs.dashboard.digest": "org",
    "orgs.members": "org",
    "orgs.change_role": "org",
    "orgs.remove_member": "org",
    "orgs.invite": "org",
    "orgs.revoke_invitation": "org",
    "orgs.api_tokens": "org",
    "orgs.revoke_token": "org",
    "orgs.settings": "org",
    "orgs.transfer_ownership": "org",
    "orgs.delete_organisation": "org",
    "orgs.audit_log": "org",
    "orgs.eventlogs.index": "org",
    "orgs.eventlogs.upload": "org",
    "orgs.eventlogs.show": "org",
    "orgs.eventlogs.status": "org",
    "orgs.eventlogs.confirm_mapping": "org",
    "orgs.eventlogs.cancel": "org",
    "orgs.eventlogs.apply_filter": "org",
    "orgs.eventlogs.remine": "org",
    "orgs.eventlogs.delete": "org",
    "orgs.eventlogs.process_map": "org",
    "api.me": "api",
    "api.openapi": "public",
    "api.upload_event_log": "api",
    "api.list_event_logs": "api",
    "api.get_event_log": "api",
    "api.get_dfg": "api",
    "api.get_variants": "api",
    "api.get_activities": "api",
    "orgs.journeys.index": "org",
    "orgs.journeys.personas": "org",
    "orgs.journeys.create": "org",
    "orgs.journeys.import_journey": "org",
    "orgs.journeys.show": "org",
    "orgs.journeys.board": "org",
    "orgs.journeys.presence": "org",
    "orgs.journeys.update": "org",
    "orgs.journeys.add_stage": "org",
    "orgs.journeys.edit_stage": "org",
    "orgs.journeys.add_lane": "org",
    "orgs.journeys.edit_lane": "org",
    "orgs.journeys.add_step": "org",
    "orgs.journeys.edit_step": "org",
    "orgs.journeys.move_step": "org",
    "orgs.journeys.delete_step": "org",
    "orgs.journeys.add_note": "org",
    "orgs.journeys.delete_note": "org",
    "orgs.journeys.undo": "org",
    "orgs.journeys.duplicate": "org",
    "orgs.journeys.archive": "org",
    "orgs.journeys.save_template": "org",
    "orgs.journeys.history": "org",
    "orgs.journeys.save_version": "org",
    "orgs.journeys.restore_version": "org",
    "orgs.journeys.restore_change": "org",
    "orgs.journeys.export_json": "org",
    "orgs.journeys.export_csv": "org",
    "orgs.journeys.start_export": "org",
    "orgs.journeys.export_status": "org",
    "orgs.journeys.export_file": "org",
    "api.list_journeys": "api",
    "api.create_journey": "api",
    "api.get_journey": "api",
    "api.replace_journey": "api",
    "api.delete_journey": "api",
    "orgs.collab.comments": "org",
    "orgs.collab.add_comment": "org",
    "orgs.collab.reply": "org",
    "orgs.collab.resolve": "org",
    "orgs.collab.reopen": "org",
    "orgs.collab.share_links": "org",
    "orgs.collab.create_share_link": "org",
    "orgs.collab.revoke_share_link": "org",
    "orgs.collab.inbox": "org",
    "orgs.collab.read_notification": "org",
    "orgs.collab.read_all": "org",
    "orgs.collab.inbox_unread": "org",
    "share.view": "public",
    "orgs.overlay.show": "org",
    "orgs.overlay.link": "org",
    "orgs.overlay.unlink": "org",
    "orgs.overlay.mapping": "org",
    "orgs.overlay.save_mapping": "org",
    "orgs.overlay.refresh": "org",
    "orgs.overlay.status": "org",
    "orgs.overlay.case": "org",
    "orgs.overlay.add_shadow": "org",
    "orgs.overlay.import_surveys": "org",
    "orgs.overlay.calendar": "org",
    "orgs.overlay.draft_journey": "org",
    "orgs.overlay.draft_status": "org",
    "api.put_mapping": "api",
    "api.get_measurements": "api",
    "orgs.goals.create": "org",
    "orgs.goals.show": "org",
    "orgs.goals.edit": "org",
    "orgs.goals.delete": "org",
    "orgs.goals.add_measurement": "org",
    "orgs.goals.add_check_in": "org",
    "orgs.goals.add_initiative": "org",
    "orgs.goals.update_initiative": "org",
    "orgs.goals.settings": "org",
    "api.create_goal": "api",
    "api.list_goals": "api",
    "api.get_goal": "api",
    "api.add_measurement": "api",
}

# Rules a viewer may use to change something of their own (leaving the organisation).
VIEWER_MAY_WRITE = {"orgs.journeys.start_export"}  # any member may export a map (PDF/PNG)
VIEWER_MAY_WRITE |= {"orgs.dashboard.start_export"}  # and the dashboard
# Viewers read everything and comment, and mark their own notifications read. Resolving someone else's
# thread stays a 403 for them, which the matrix checks.
VIEWER_MAY_WRITE |= {
    "orgs.collab.add_comment",
    "orgs.collab.reply",
    "orgs.collab.read_notification",
    "orgs.collab.read_all",
}


@pytest.fixture
def world(app, tenant_a, tenant_b):
    """Objects of every kind in A (an invitation, a token) and the ids a URL can name."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Membership, Organisation, Role, User
    from webapp.services import Actor, invitations, tokens

    with app.test_request_context():
        org_a = db.session.get(Organisation, tenant_a.organisation_id)
        owner = db.session.scalar(sa.select(User).where(User.email == tenant_a.emails["owner"]))
        tenancy.activate(org_a.id, owner.id)
        issued_invitation = invitations.invite(
            org_a, "newcomer@a.example", Role.EDITOR, Role.OWNER, Actor(owner.id)
        )
        issued_token = tokens.issue(owner, "A's token", Actor(owner.id))
        from webapp.services import eventlogs

        a_log = eventlogs.upload(
            "alpha-incidents.csv",
            io.BytesIO(b"case,activity,time\n1,Logged,2024-01-01T10:00:00\n"),
            Actor(owner.id),
            "Alpha incidents",
        )
        from webapp.services import journeys

        a_journey = journeys.create_from_template(
            "it-incident", Actor(owner.id), title="Alpha escalation map"
        )
        a_board = journeys.board(a_journey.id)
        a_version = journeys.save_named_version(a_journey.id, "Alpha workshop", Actor(owner.id))
        from webapp.services import comments, notifications, sharing

        a_comment = comments.start_thread(
            a_journey.id, "Alpha private remark for @editor@a.example", Actor(owner.id)
        )
        editor = db.session.scalar(sa.select(User).where(User.email == tenant_a.emails["editor"]))
        a_notification = notifications.inbox(editor.id)[0]
        a_share = sharing.create_link(a_journey.id, Actor(owner.id), label="Alpha board members")
        a_log_link, a_snapshot = _measured_link(a_journey.id, a_log.id, a_board.steps[0].id)
        from webapp.services import goals

        a_goal = goals.create_goal(
            {
                "title": "Alpha first-call resolution goal",
                "journey_id": a_journey.id,
                "kpi_source": "manual",
                "kpi_metric": "First-call resolution",
                "kpi_unit": "%",
                "direction": "higher",
                "baseline": 50,
                "target": 80,
                "start_on": "2026-01-01",
                "due_on": "2026-12-31",
                "owner_id": owner.id,
            },
            Actor(owner.id),
        )
        a_initiative = goals.add_initiative(a_goal.id, {"title": "Alpha callback pilot"}, Actor(owner.id))
        editor_membership = db.session.scalar(
            sa.select(Membership).join(User).where(User.email == tenant_a.emails["editor"])
        )
        ids = {
            "membership_id": editor_membership.id,
            "invitation_id": issued_invitation.invitation.id,
            "token_id": issued_token.token.id,
            "log_id": a_log.id,
            "journey_id": a_journey.id,
            "stage_id": a_board.stages[0].id,
            "lane_id": a_board.lanes[0].id,
            "step_id": a_board.steps[0].id,
            "note_id": next(n.id for notes in a_board.notes.values() for n in notes),
            "version_id": a_version.id,
            "change_id": journeys.history(a_journey.id, limit=1)[0].id,
            "job_id": "nonexistent",  # an export job: B must get 404 whatever the id
            "digest_id": _digest(owner.id),
            "secret": issued_invitation.path.rsplit("/", 1)[1],
            "comment_id": a_comment.id,
            "notification_id": a_notification.id,
            "link_id": a_share.link.id,
            "token": a_share.secret,
            "log_link_id": a_log_link,
            "snapshot_id": a_snapshot,
            "goal_id": a_goal.id,
            "initiative_id": a_initiative.id,
        }
        a_token = issued_token.value
        b_owner = db.session.scalar(sa.select(User).where(User.email == tenant_b.emails["owner"]))
        tenancy.activate(tenant_b.organisation_id, b_owner.id)
        b_token = tokens.issue(b_owner, "B's token", Actor(b_owner.id))
        db.session.remove()
    return {"a": tenant_a, "b": tenant_b, "ids": ids, "b_token": b_token.value, "a_token": a_token}


def _measured_link(journey_id: int, event_log_id: int, step_id: int) -> tuple[int, int]:
    """A's journey linked to A's log with a mapping and a finished snapshot (rows written directly)."""
    from webapp.extensions import db
    from webapp.models.overlay import JourneyLogLink, MappingVersion, MeasurementSnapshot

    link = JourneyLogLink(journey_id=journey_id, event_log_id=event_log_id)
    db.session.add(link)
    db.session.flush()
    version = MappingVersion(link_id=link.id, number=1, activities={"Logged": step_id})
    db.session.add(version)
    db.session.flush()
    snapshot = MeasurementSnapshot(
        journey_id=journey_id,
        link_id=link.id,
        event_log_id=event_log_id,
        mapping_version_id=version.id,
        layout=[{"id": step_id, "name": "Alpha step", "stage_index": 0}],
        definition="x",
        status="finished",
        cases=1,
        following=1,
        conformance_share=1.0,
        details={
            "case_timelines": {
                "1": [{"activity": "Logged", "timestamp": "2024-01-01T10:00:00", "step_id": step_id}]
            }
        },
    )
    db.session.add(snapshot)
    db.session.commit()
    return link.id, snapshot.id


def _urls(app, world, slug: str):
    """(endpoint, method, url) for every rule, filled with A's real ids."""
    ids = world["ids"]
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = {}
        for argument in rule.arguments:
            if argument == "org_slug":
                values[argument] = slug
            elif argument in ids:
                values[argument] = ids[argument]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            with app.test_request_context():
                from flask import url_for

                url = url_for(rule.endpoint, **values)
            yield rule.endpoint, method, url


def _a_secrets(world) -> list[str]:
    return [
        "Alpha Services",
        "owner@a.example",
        "viewer@a.example",
        "newcomer@a.example",
        "A&#39;s token",
        "Alpha incidents",
        "alpha-incidents.csv",
        "Alpha escalation map",
        "Sam, field sales representative",
        "Alpha private remark",
        "Alpha board members",
        "Alpha first-call resolution goal",
        "Alpha callback pilot",
    ]


def _call(client, method: str, url: str, token: str):
    if method == "GET":
        return client.get(url)
    return client.open(
        url,
        method=method,
        data={
            "csrf_token": token,
            "role": "viewer",
            "confirm": "alpha-services",
            "email": "x@b.example",
            "name": "n",
            "membership_id": "1",
        },
    )


def test_every_rule_has_a_case(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - set(RULES) == set(), "add the new rule to RULES and check its isolation"
    assert set(RULES) - endpoints == set(), "RULES names rules that no longer exist"


def test_member_of_b_gets_404_for_everything_of_a(app, world, make_client):
    client = make_client()
    login(client, world["b"].emails["owner"])
    token = csrf_token(client.get(f"/o/{world['b'].slug}/members").get_data(as_text=True))
    checked = 0
    for slug in (world["a"].slug, world["b"].slug):  # A's slug, and B's slug with A's object ids
        for endpoint, method, url in _urls(app, world, slug):
            kind = RULES[endpoint]
            if kind != "org":
                continue
            if slug == world["b"].slug and not re.search(r"/\d+/", url):
                continue  # B's own pages without an object id are B's business
            response = _call(client, method, url, token)
            assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
            body = response.get_data(as_text=True)
            for secret in _a_secrets(world):
                assert secret not in body, f"{method} {url} leaks {secret!r}"
            checked += 1
    assert checked >= 15
    # A's data is all still there after B's attempts.
    owner_a = make_client()
    login(owner_a, "owner@a.example")
    members_page = owner_a.get(f"/o/{world['a'].slug}/members").get_data(as_text=True)
    assert "editor@a.example" in members_page and "newcomer@a.example" in members_page


def test_anonymous_visitors_are_sent_to_log_in(app, world, client):
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        kind = RULES[endpoint]
        if kind in ("org", "user"):
            response = client.open(url, method=method, data={})
            if method == "GET":
                assert response.status_code == 302 and "/login" in response.headers["Location"], url
            else:
                # A POST without a session has no valid CSRF token either: refused before anything runs.
                assert response.status_code in (302, 400), url
        elif kind == "api":
            response = client.open(url, method=method)
            assert response.status_code == 401, url
            assert response.get_json()["error"]["code"] == "unauthorized"


def test_viewer_of_a_gets_403_on_every_write(app, world, make_client):
    client = make_client()
    login(client, world["a"].emails["viewer"])
    token = csrf_token(client.get(f"/o/{world['a'].slug}/").get_data(as_text=True))
    writes = 0
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if RULES[endpoint] != "org" or method != "POST" or endpoint in VIEWER_MAY_WRITE:
            continue
        response = _call(client, method, url, token)
        assert response.status_code == 403, f"{method} {url} answered {response.status_code}"
        writes += 1
    assert writes >= 8
    # Admin pages that only read are closed to viewers too.
    for page in ("settings", "tokens", "audit"):
        assert client.get(f"/o/{world['a'].slug}/{page}").status_code == 403


def test_b_api_token_sees_only_b(app, world, client):
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {world['b_token']}"})
    assert response.status_code == 200
    assert response.get_json()["organisation"]["slug"] == world["b"].slug
    # A token that names A's organisation id with B's secret is not valid.
    forged = world["b_token"].split("_", 2)
    forged[1] = str(world["a"].organisation_id)
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer " + "_".join(forged)})
    assert response.status_code == 401


def test_b_api_token_gets_404_for_every_object_of_a(app, world, client):
    headers = {"Authorization": f"Bearer {world['b_token']}"}
    checked = 0
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if RULES[endpoint] != "api" or not re.search(r"/\d+", url):
            continue
        response = client.open(url, method=method, headers=headers)
        assert response.status_code == 404, f"{method} {url} answered {response.status_code}"
        for secret in _a_secrets(world):
            assert secret not in response.get_data(as_text=True)
        checked += 1
    assert checked >= 7
    listing = client.get("/api/v1/event-logs", headers=headers).get_json()
    assert listing == {"event_logs": []}
    assert client.get("/api/v1/journeys", headers=headers).get_json() == {"journeys": []}


def test_a_request_for_a_missing_organisation_looks_like_a_foreign_one(app, world, make_client):
    client = make_client()
    login(client, world["b"].emails["owner"])
    missing = client.get("/o/no-such-organisation/members")
    foreign = client.get(f"/o/{world['a'].slug}/members")
    assert missing.status_code == foreign.status_code == 404
    assert missing.get_data(as_text=True) == foreign.get_data(as_text=True)


def _digest(user_id: int) -> int:
    """A weekly digest of A's owner (a row written directly)."""
    from datetime import UTC, datetime

    from webapp.extensions import db
    from webapp.models.goals import Digest

    digest = Digest(
        user_id=user_id,
        period_start=datetime(2026, 1, 5, tzinfo=UTC),
        period_end=datetime(2026, 1, 12, tzinfo=UTC),
        body={"counts": {}, "statuses": {}, "events": [], "events_total": 0, "goals_total": 0},
    )
    db.session.add(digest)
    db.session.commit()
    return digest.id


@pytest.mark.postgres
def test_rls_alone_answers_404_for_every_read_of_a(app, world, make_client):
    """The read checks again with the ORM scoping switched off: PostgreSQL's row-level security is the
    only wall left, and it must hold on its own for every page, fragment and API read."""
    app.config["TENANT_ORM_SCOPING"] = False
    client = make_client()
    login(client, world["b"].emails["owner"])
    headers = {"Authorization": f"Bearer {world['b_token']}"}
    checked = 0
    for slug in (world["a"].slug, world["b"].slug):
        for endpoint, method, url in _urls(app, world, slug):
            kind = RULES[endpoint]
            if method != "GET" or kind not in ("org", "api") or not re.search(r"/\d+", url):
                continue
            if kind == "api" and slug != world["a"].slug:
                continue
            response = client.get(url, headers=headers if kind == "api" else {})
            assert response.status_code == 404, (
                f"GET {url} answered {response.status_code} without ORM scoping"
            )
            body = response.get_data(as_text=True)
            for secret in _a_secrets(world):
                assert secret not in body, f"GET {url} leaks {secret!r} without ORM scoping"
            checked += 1
    assert checked >= 30
