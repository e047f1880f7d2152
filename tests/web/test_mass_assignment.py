"""Mass assignment: fields a client must not set (the organisation, a role, the author or owner, ids,
versions, statuses, storage keys) sent along with a legitimate form or API body change nothing.

Each write is sent with HOSTILE fields naming organisation B and B's owner. Whatever the answer (the
JSON APIs refuse unknown fields with 422, the forms ignore them), the rows say what happened: the
legitimate change only, inside A, by the caller, and nothing at all in B.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest
import sqlalchemy as sa

from tests.support import PASSWORD, SMALL_JOURNEY, csrf_token, login


@pytest.fixture
def scene(app, tenant_a, tenant_b, app_config):
    """A's owner's journey, an A editor's API token, and B's organisation and owner to name."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, journeys, tokens

    with app.test_request_context():
        owner = db.session.scalar(sa.select(User).where(User.email == tenant_a.emails["owner"]))
        editor = db.session.scalar(sa.select(User).where(User.email == tenant_a.emails["editor"]))
        b_owner = db.session.scalar(sa.select(User).where(User.email == tenant_b.emails["owner"]))
        tenancy.activate(tenant_a.organisation_id, owner.id)
        journey = journeys.import_json(SMALL_JOURNEY, Actor(owner.id))
        other = journeys.import_json({**SMALL_JOURNEY, "title": "Other map"}, Actor(owner.id))
        board, other_board = journeys.board(journey.id), journeys.board(other.id)
        token = tokens.issue(editor, "sync", Actor(owner.id)).value
        ids = {
            "owner": owner.id,
            "editor": editor.id,
            "b_owner": b_owner.id,
            "journey": journey.id,
            "step": board.steps[0].id,
            "other_journey": other.id,
            "other_stage": other_board.stages[-1].id,
            "other_lane": other_board.lanes[-1].id,
        }
        db.session.remove()
    hostile = {
        "organisation_id": tenant_b.organisation_id,
        "org_id": tenant_b.organisation_id,
        "organisation": tenant_b.slug,
        "role": "owner",
        "created_by": ids["b_owner"],
        "created_by_id": ids["b_owner"],
        "owner_id": ids["b_owner"],
        "uploaded_by_id": ids["b_owner"],
        "user_id": ids["b_owner"],
        "invited_by_id": ids["b_owner"],
        "id": 424242,
        "version": 999,
        "session_version": 99,
        "is_admin": "1",
        "status": "finished",
    }
    return {
        "a": tenant_a,
        "b": tenant_b,
        "ids": ids,
        "token": token,
        "hostile": hostile,
        "config": app_config,
    }


def _rows(scene, sql: str, **params) -> list[tuple]:
    """Rows read as the owner of the tables (past RLS), to see every organisation."""
    engine = sa.create_engine(scene["config"]["DATABASE_MIGRATION_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(sa.text(sql), params)]
    engine.dispose()
    return rows


def _b_fingerprint(scene) -> list[tuple]:
    """Everything B holds, as row counts per tenant table (and its memberships exactly)."""
    from webapp.extensions import db
    from webapp.tenancy import tenant_tables

    counts = []
    for table in tenant_tables(db.metadata):
        counts += _rows(
            scene,
            f"SELECT '{table.name}', count(*) FROM {table.name} WHERE organisation_id = :b",
            b=scene["b"].organisation_id,
        )
    return counts + _rows(
        scene,
        "SELECT user_id, role FROM memberships WHERE organisation_id = :b ORDER BY 1",
        b=scene["b"].organisation_id,
    )


def _api(client, scene, method: str, url: str, **kwargs):
    headers = {"Authorization": f"Bearer {scene['token']}"}
    return client.open(url, method=method, headers=headers, **kwargs)


def test_journeys_api_post_and_put(scene, client):
    hostile, ids = scene["hostile"], scene["ids"]
    b_before = _b_fingerprint(scene)
    journeys_before = _rows(scene, "SELECT id FROM journeys ORDER BY id")
    # At the top, in a step and in a note.
    body = json.loads(json.dumps(SMALL_JOURNEY))
    body.update(hostile)
    body["stages"][0]["steps"][0].update({"id": ids["step"], "version": 999, "organisation_id": 2})
    body["stages"][1]["steps"][0]["notes"][0]["created_by_id"] = ids["b_owner"]
    created = _api(client, scene, "POST", "/api/v1/journeys", json=body)
    assert created.status_code == 422, created.get_json()
    assert _rows(scene, "SELECT id FROM journeys ORDER BY id") == journeys_before
    for field in ("organisation_id", "owner_id", "created_by_id", "version"):
        one = json.loads(json.dumps(SMALL_JOURNEY))
        one[field] = hostile.get(field, 1)
        assert _api(client, scene, "POST", "/api/v1/journeys", json=one).status_code == 422, field
    # The clean body makes a journey in A, owned by the token's user, at version 1.
    created = _api(client, scene, "POST", "/api/v1/journeys", json=SMALL_JOURNEY)
    assert created.status_code == 201
    new_id = created.get_json()["id"]
    assert _rows(
        scene, "SELECT organisation_id, owner_id, version FROM journeys WHERE id = :j", j=new_id
    ) == [(scene["a"].organisation_id, ids["editor"], 1)]
    # PUT: the journey stays A's, owned by A's owner, with its id; the step keeps its id.
    url = f"/api/v1/journeys/{ids['journey']}"
    row = "SELECT id, organisation_id, owner_id, version FROM journeys WHERE id = :j"
    before = _rows(scene, row, j=ids["journey"])
    current = _api(client, scene, "GET", url).get_json()
    replaced = _api(client, scene, "PUT", url, json={**current, **hostile})
    assert replaced.status_code == 422
    assert _rows(scene, row, j=ids["journey"]) == before
    current["stages"][0]["steps"][0]["organisation_id"] = scene["b"].organisation_id
    assert _api(client, scene, "PUT", url, json=current).status_code == 422
    assert _rows(scene, row, j=ids["journey"]) == before
    assert _b_fingerprint(scene) == b_before


def test_event_log_upload_api(scene, client):
    hostile, ids = scene["hostile"], scene["ids"]
    b_before = _b_fingerprint(scene)
    content = b"case,activity,time\n1,Logged,2024-01-01T10:00:00\n"
    fields = {
        **{k: str(v) for k, v in hostile.items()},
        "sha256": "0" * 64,
        "storage_key": f"{scene['b'].organisation_id}/stolen.csv",
        "size_bytes": "1",
        "duplicate_of_id": "1",
        "preview": "{}",
        "error": "x",
    }
    response = _api(
        client,
        scene,
        "POST",
        "/api/v1/event-logs",
        data={**fields, "name": "Incidents", "file": (io.BytesIO(content), "incidents.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_json()
    log_id = response.get_json()["id"]
    assert log_id != hostile["id"]
    ((org, uploaded_by, status, sha, key, size, duplicate),) = _rows(
        scene,
        "SELECT organisation_id, uploaded_by_id, status, sha256, storage_key, size_bytes, duplicate_of_id "
        "FROM event_logs WHERE id = :id",
        id=log_id,
    )
    assert (org, uploaded_by, status) == (scene["a"].organisation_id, ids["editor"], "uploaded")
    assert (sha, size, duplicate) == (hashlib.sha256(content).hexdigest(), len(content), None)
    assert key.startswith(f"org-{scene['a'].organisation_id}/") and "stolen" not in key
    assert _b_fingerprint(scene) == b_before


def test_goals_api(scene, client, app):
    hostile, ids = scene["hostile"], scene["ids"]
    b_before = _b_fingerprint(scene)
    goal = {
        "title": "Faster resets",
        "journey_id": ids["journey"],
        "kpi": {"metric": "First-call resolution", "source": "manual", "unit": "%"},
        "direction": "higher",
        "baseline": 50,
        "target": 80,
        "start": "2026-01-01",
        "due": "2026-12-31",
        "owner_email": scene["a"].emails["editor"],
    }
    count = "SELECT count(*) FROM goals"
    for field in ("organisation_id", "owner_id", "created_by_id", "id", "version", "status"):
        refused = _api(client, scene, "POST", "/api/v1/goals", json={**goal, field: hostile[field]})
        assert refused.status_code == 422, field
    nested = {**goal, "kpi": {**goal["kpi"], "organisation_id": scene["b"].organisation_id}}
    assert _api(client, scene, "POST", "/api/v1/goals", json=nested).status_code in (201, 422)
    # The owner must be a member of A: B's owner is refused.
    foreign_owner = {**goal, "owner_email": scene["b"].emails["owner"]}
    assert _api(client, scene, "POST", "/api/v1/goals", json=foreign_owner).status_code == 422
    before = _rows(scene, count)
    created = _api(client, scene, "POST", "/api/v1/goals", json=goal)
    assert created.status_code == 201
    goal_id = created.get_json()["id"]
    assert _rows(scene, count) == [(before[0][0] + 1,)]
    assert _rows(scene, "SELECT organisation_id FROM goals WHERE id = :g", g=goal_id) == [
        (scene["a"].organisation_id,)
    ]
    # A measurement names its goal in the URL only.
    measurement = {"at": "2026-03-01T10:00:00Z", "value": 60, "goal_id": 424242, **hostile}
    answer = _api(client, scene, "POST", f"/api/v1/goals/{goal_id}/measurements", json=measurement)
    assert answer.status_code in (201, 422)
    rows = _rows(
        scene, "SELECT organisation_id, goal_id FROM goal_measurements WHERE goal_id <> :g", g=goal_id
    )
    assert rows == []
    assert _b_fingerprint(scene) == b_before


def test_signup_form(scene, client):
    hostile = scene["hostile"]
    a_members = "SELECT user_id, role FROM memberships WHERE organisation_id = :a ORDER BY 1"
    a_before = _rows(scene, a_members, a=scene["a"].organisation_id)
    b_before = _b_fingerprint(scene)
    page = client.get("/signup").get_data(as_text=True)
    response = client.post(
        "/signup",
        data={
            **{k: str(v) for k, v in hostile.items()},
            "organisation_id": str(scene["a"].organisation_id),
            "email": "newcomer@c.example",
            "password": PASSWORD,
            "organisation": "Gamma Care",
            "csrf_token": csrf_token(page),
        },
    )
    assert response.status_code == 302
    ((user_id, session_version),) = _rows(
        scene, "SELECT id, session_version FROM users WHERE email = 'newcomer@c.example'"
    )
    assert user_id != hostile["id"] and session_version != hostile["session_version"]
    memberships = _rows(
        scene,
        "SELECT o.name, m.role FROM memberships m JOIN organisations o ON o.id = m.organisation_id "
        "WHERE m.user_id = :u",
        u=user_id,
    )
    assert memberships == [("Gamma Care", "owner")]
    assert _rows(scene, a_members, a=scene["a"].organisation_id) == a_before
    assert _b_fingerprint(scene) == b_before


def test_member_role_form(scene, make_client):
    hostile = scene["hostile"]
    admin = make_client()
    login(admin, scene["a"].emails["admin"])
    members_url = f"/o/{scene['a'].slug}/members"
    a_members = (
        "SELECT u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id "
        "WHERE m.organisation_id = :a ORDER BY 1"
    )
    before = dict(_rows(scene, a_members, a=scene["a"].organisation_id))
    b_before = _b_fingerprint(scene)
    ((viewer_membership,),) = _rows(
        scene,
        "SELECT m.id FROM memberships m JOIN users u ON u.id = m.user_id WHERE u.email = :e",
        e=scene["a"].emails["viewer"],
    )
    token = csrf_token(admin.get(members_url).get_data(as_text=True))
    extras = {k: str(v) for k, v in hostile.items() if k != "role"}
    extras["membership_id"] = "1"
    response = admin.post(
        f"{members_url}/{viewer_membership}/role", data={**extras, "role": "editor", "csrf_token": token}
    )
    assert response.status_code == 302
    after = dict(_rows(scene, a_members, a=scene["a"].organisation_id))
    assert after == {**before, scene["a"].emails["viewer"]: "editor"}
    # An admin cannot make anyone owner, whatever the form says.
    admin.post(f"{members_url}/{viewer_membership}/role", data={"role": "owner", "csrf_token": token})
    assert dict(_rows(scene, a_members, a=scene["a"].organisation_id)) == after
    assert _b_fingerprint(scene) == b_before


def test_step_edit_form(scene, make_client):
    hostile, ids = scene["hostile"], scene["ids"]
    editor = make_client()
    login(editor, scene["a"].emails["editor"])
    step_row = "SELECT stage_id, lane_id, position, name, version FROM steps WHERE id = :s"
    ((stage, lane, position, _, version),) = _rows(scene, step_row, s=ids["step"])
    b_before = _b_fingerprint(scene)
    journey_url = f"/o/{scene['a'].slug}/journeys/{ids['journey']}"
    token = csrf_token(editor.get(journey_url).get_data(as_text=True))
    response = editor.post(
        f"{journey_url}/steps/{ids['step']}",
        data={
            **{k: str(v) for k, v in hostile.items()},
            "journey_id": str(ids["other_journey"]),
            "stage_id": str(ids["other_stage"]),
            "lane_id": str(ids["other_lane"]),
            "position": "3",
            "step_id": "1",
            "name": "Forgets the password again",
            "expected_version": str(version),
            "csrf_token": token,
        },
    )
    assert response.status_code in (200, 302)
    assert _rows(scene, step_row, s=ids["step"]) == [
        (stage, lane, position, "Forgets the password again", version + 1)
    ]
    journeys = "SELECT id, organisation_id, owner_id FROM journeys WHERE id IN (:j, :o) ORDER BY id"
    assert _rows(scene, journeys, j=ids["journey"], o=ids["other_journey"]) == [
        (ids["journey"], scene["a"].organisation_id, ids["owner"]),
        (ids["other_journey"], scene["a"].organisation_id, ids["owner"]),
    ]
    assert _b_fingerprint(scene) == b_before


def test_journey_form_refuses_an_owner_from_another_organisation(scene, make_client):
    ids = scene["ids"]
    editor = make_client()
    login(editor, scene["a"].emails["editor"])
    journey_url = f"/o/{scene['a'].slug}/journeys/{ids['journey']}"
    row = "SELECT organisation_id, owner_id FROM journeys WHERE id = :j"
    before = _rows(scene, row, j=ids["journey"])
    ((version,),) = _rows(scene, "SELECT version FROM journeys WHERE id = :j", j=ids["journey"])
    token = csrf_token(editor.get(journey_url).get_data(as_text=True))
    response = editor.post(
        journey_url,
        data={
            "owner_id": str(ids["b_owner"]),
            "organisation_id": str(scene["b"].organisation_id),
            "expected_version": str(version),
            "csrf_token": token,
        },
    )
    assert response.status_code in (302, 409, 422)
    assert _rows(scene, row, j=ids["journey"]) == before
