"""/api/v1/journeys: CRUD in the export format, round trips, safe replace, roles, tenants, errors, CSV."""

from __future__ import annotations

import copy
import csv
import io

import pytest

from tests.support import SMALL_JOURNEY as SMALL


def _token(app, tenant, email: str) -> str:
    import sqlalchemy as sa

    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, tokens

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return tokens.issue(user, "test", Actor(None)).value


@pytest.fixture
def auth(app, tenant_a):
    """Authorization headers for A's editor and viewer."""
    return {
        role: {"Authorization": f"Bearer {_token(app, tenant_a, f'{role}@a.example')}"}
        for role in ("editor", "viewer")
    }


def _create(client, headers, data=SMALL) -> int:
    response = client.post("/api/v1/journeys", json=data, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_create_read_list_replace_and_delete(client, auth):
    editor = auth["editor"]
    response = client.post("/api/v1/journeys", json=SMALL, headers=editor)
    assert response.status_code == 201 and response.mimetype == "application/json"
    journey_id = response.get_json()["id"]
    assert response.headers["Location"].endswith(f"/api/v1/journeys/{journey_id}")

    got = client.get(f"/api/v1/journeys/{journey_id}", headers=editor)
    assert got.status_code == 200 and got.headers["ETag"]
    body = got.get_json()
    assert set(body) >= {"title", "kind", "state", "status", "persona", "lanes", "stages"}
    assert body["lanes"] == SMALL["lanes"] and body["persona"] == SMALL["persona"]
    first_step = body["stages"][0]["steps"][0]
    assert {k: first_step[k] for k in ("name", "lane", "channel", "emotion", "moment_of_truth")} == {
        "name": "Forgets password",
        "lane": "Actions",
        "channel": "other",
        "emotion": -2,
        "moment_of_truth": False,
    }
    assert first_step["expected_duration_s"] is None and first_step["notes"] == []
    assert body["stages"][1]["steps"][0]["notes"] == [{"kind": "pain_point", "text": "Manual"}]

    listing = client.get("/api/v1/journeys", headers=auth["viewer"]).get_json()["journeys"]
    assert [(j["id"], j["title"], j["owner"], j["archived"]) for j in listing] == [
        (journey_id, "Password reset", "editor@a.example", False)
    ]
    assert client.get("/api/v1/journeys?search=nothing", headers=editor).get_json() == {"journeys": []}
    assert client.get("/api/v1/journeys?kind=employee", headers=editor).get_json()["journeys"]
    assert client.get("/api/v1/journeys?status=weird", headers=editor).status_code == 422

    replacement = {**copy.deepcopy(SMALL), "title": "Password reset, future", "state": "future"}
    replacement["stages"][0]["steps"].pop(1)
    put = client.put(f"/api/v1/journeys/{journey_id}", json=replacement, headers=editor)
    assert put.status_code == 200
    assert put.get_json()["title"] == "Password reset, future"
    assert [s["name"] for s in put.get_json()["stages"][0]["steps"]] == ["Forgets password", "Agent verifies"]

    assert client.delete(f"/api/v1/journeys/{journey_id}", headers=editor).status_code == 204
    gone = client.get(f"/api/v1/journeys/{journey_id}", headers=editor)
    assert gone.status_code == 404 and gone.get_json()["error"]["code"] == "not_found"


def test_export_import_export_round_trip_is_identical(app, client, auth, tenant_a):
    from webapp import tenancy
    from webapp.services import Actor, journeys

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        source_id = journeys.create_from_template("customer-support-ticket", Actor(None)).id
    exported = client.get(f"/api/v1/journeys/{source_id}", headers=auth["viewer"]).get_json()
    copy_id = _create(client, auth["editor"], exported)
    again = client.get(f"/api/v1/journeys/{copy_id}", headers=auth["viewer"]).get_json()
    assert again == exported
    # And once more through PUT: replacing a journey by its own export changes nothing.
    put = client.put(f"/api/v1/journeys/{copy_id}", json=again, headers=auth["editor"])
    assert put.get_json() == exported


def test_put_with_a_stale_etag_is_refused(client, auth):
    editor = auth["editor"]
    journey_id = _create(client, editor)
    etag = client.get(f"/api/v1/journeys/{journey_id}", headers=editor).headers["ETag"]
    first = client.put(
        f"/api/v1/journeys/{journey_id}",
        json={**SMALL, "title": "First"},
        headers={**editor, "If-Match": etag},
    )
    assert first.status_code == 200 and first.headers["ETag"] != etag
    second = client.put(
        f"/api/v1/journeys/{journey_id}",
        json={**SMALL, "title": "Second"},
        headers={**editor, "If-Match": etag},
    )
    assert second.status_code == 412 and second.get_json()["error"]["code"] == "precondition_failed"
    assert client.get(f"/api/v1/journeys/{journey_id}", headers=editor).get_json()["title"] == "First"


def test_viewers_may_read_but_not_write(client, auth):
    journey_id = _create(client, auth["editor"])
    viewer = auth["viewer"]
    assert client.get(f"/api/v1/journeys/{journey_id}", headers=viewer).status_code == 200
    for response in (
        client.post("/api/v1/journeys", json=SMALL, headers=viewer),
        client.put(f"/api/v1/journeys/{journey_id}", json=SMALL, headers=viewer),
        client.delete(f"/api/v1/journeys/{journey_id}", headers=viewer),
    ):
        assert response.status_code == 403 and response.mimetype == "application/json"
        assert "editor role" in response.get_json()["error"]["message"]
    assert (
        client.get(f"/api/v1/journeys/{journey_id}", headers=viewer).get_json()["title"] == "Password reset"
    )


def test_another_organisations_journeys_are_not_found(app, client, auth, tenant_b):
    journey_id = _create(client, auth["editor"])
    b_owner = {"Authorization": f"Bearer {_token(app, tenant_b, 'owner@b.example')}"}
    for response in (
        client.get(f"/api/v1/journeys/{journey_id}", headers=b_owner),
        client.put(f"/api/v1/journeys/{journey_id}", json=SMALL, headers=b_owner),
        client.delete(f"/api/v1/journeys/{journey_id}", headers=b_owner),
    ):
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"
        assert "Password reset" not in response.get_data(as_text=True)
    assert client.get("/api/v1/journeys", headers=b_owner).get_json() == {"journeys": []}
    assert client.get(f"/api/v1/journeys/{journey_id}", headers=auth["editor"]).status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"data": "not json at all", "content_type": "application/json"},
            "Send the journey as a JSON object",
        ),
        (
            {"data": "title=x", "content_type": "application/x-www-form-urlencoded"},
            "Content-Type: application/json",
        ),
        ({"json": []}, "A journey must be a JSON object"),
        ({"json": {**SMALL, "kind": "partner"}}, "Kind 'partner' is unknown"),
        ({"json": {**SMALL, "title": "x" * 201}}, "keep it to 200"),
    ],
)
def test_bad_json_is_422_with_the_reason(client, auth, body, message):
    response = client.post("/api/v1/journeys", headers=auth["editor"], **body)
    assert response.status_code == 422 and response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["code"] == "unprocessable" and message in error["message"]


def test_bad_step_is_422_naming_where(client, auth):
    data = copy.deepcopy(SMALL)
    data["stages"][0]["steps"][2]["lane"] = "Back office"
    response = client.post("/api/v1/journeys", json=data, headers=auth["editor"])
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == (
        "stage 1 “Ask”, step 3 “Agent verifies”: there is no lane named 'Back office'; "
        "the lanes are “Actions”, “Frontstage”, “Backstage”."
    )
    journey_id = _create(client, auth["editor"])
    data["stages"][0]["steps"][2]["lane"] = "Backstage"
    data["stages"][0]["steps"][2]["emotion"] = 7
    put = client.put(f"/api/v1/journeys/{journey_id}", json=data, headers=auth["editor"])
    assert put.status_code == 422 and "emotion" in put.get_json()["error"]["message"]


def test_csv_export_guards_against_formula_injection(client, auth):
    data = copy.deepcopy(SMALL)
    data["stages"][0]["steps"][0].update(name="=cmd|' /C calc'!A0", touchpoint="+44 20 7946 0000")
    data["stages"][0]["steps"][1]["description"] = "@SUM(1+1)*cmd"
    data["stages"][1]["steps"][0]["notes"] = [{"kind": "pain_point", "text": "-2+3"}]
    journey_id = _create(client, auth["editor"], data)
    response = client.get(f"/api/v1/journeys/{journey_id}", headers={**auth["viewer"], "Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["step"] for r in rows] == ["'=cmd|' /C calc'!A0", "Calls desk", "Agent verifies", "Reset in AD"]
    assert rows[0]["touchpoint"] == "'+44 20 7946 0000" and rows[0]["emotion"] == "-2"
    assert rows[1]["description"] == "'@SUM(1+1)*cmd"
    assert rows[3]["pain_points"] == "'-2+3" and rows[3]["expected_duration_s"] == "300"
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")), value
    # JSON stays the default for clients that accept anything.
    default = client.get(f"/api/v1/journeys/{journey_id}", headers={**auth["viewer"], "Accept": "*/*"})
    assert default.mimetype == "application/json"
