"""/api/v1: JSON only, errors included; bearer tokens; an OpenAPI document that stays true."""

from __future__ import annotations

import re

from webapp.services import Actor


def _token(app, tenant, email):
    import sqlalchemy as sa

    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import tokens

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return tokens.issue(user, "test", Actor(None)).value


def test_me_answers_who_the_token_speaks_for(app, tenant_a, client):
    token = _token(app, tenant_a, "viewer@a.example")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {
        "user": {"email": "viewer@a.example"},
        "organisation": {"slug": tenant_a.slug, "name": "Alpha Services"},
        "role": "viewer",
    }


def test_errors_are_json_objects(app, tenant_a, client):
    token = _token(app, tenant_a, "viewer@a.example")
    auth = {"Authorization": f"Bearer {token}"}
    cases = [
        (client.get("/api/v1/me"), 401, "unauthorized"),
        (client.get("/api/v1/me", headers={"Authorization": "Bearer jl_1_nonsense"}), 401, "unauthorized"),
        (client.get("/api/v1/me", headers={"Authorization": "Basic abc"}), 401, "unauthorized"),
        (client.get("/api/v1/nothing-here", headers=auth), 404, "not_found"),
        (client.delete("/api/v1/me", headers=auth), 405, "method_not_allowed"),
    ]
    for response, status, code in cases:
        assert response.status_code == status
        assert response.mimetype == "application/json"
        body = response.get_json()
        assert body["error"]["code"] == code and body["error"]["message"]


def test_api_ignores_session_cookies(app, tenant_a, client):
    from tests.support import login

    login(client, "owner@a.example")
    assert client.get("/api/v1/me").status_code == 401  # cookies are not credentials here


def test_openapi_document_names_exactly_the_api_routes(app, client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    actual = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                actual.add((path, method))
    assert documented == actual
    me = document["paths"]["/me"]["get"]["responses"]
    assert "200" in me and "401" in me
