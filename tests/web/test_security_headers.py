"""Every answer carries the security headers: a Content-Security-Policy that allows no inline script and
no eval and forbids framing, nosniff, and a Referrer-Policy.

"Every answer" is crawled, not sampled: each URL rule of the app with A's real ids, as A's owner, as a
full page and as an htmx partial; every POST rule refused for its CSRF token and for a viewer; the API
with and without a token; every static file; and each error status the app produces (400, 401, 403,
404, 405, 413, 429, 500, 503, also for the API).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support import csrf_token, login
from tests.web.test_isolation_matrix import RULES, _urls, world  # noqa: F401  (world is a fixture)

STATIC = Path(__file__).resolve().parents[2] / "webapp" / "static"
REFERRER_POLICIES = {"no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}


def _directives(csp: str) -> dict[str, list[str]]:
    directives = {}
    for part in csp.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_secure_headers(response, what: str) -> None:
    """The headers every answer must carry (`what` names the request in the failure)."""
    csp = response.headers.get("Content-Security-Policy")
    assert csp, f"{what} ({response.status_code}) has no Content-Security-Policy"
    directives = _directives(csp)
    scripts = directives.get("script-src", directives.get("default-src"))
    assert scripts, f"{what}: the CSP does not restrict scripts: {csp}"
    assert "'unsafe-inline'" not in scripts and "*" not in scripts, f"{what}: inline scripts allowed: {csp}"
    assert "'unsafe-eval'" not in csp, f"{what}: eval allowed: {csp}"
    assert directives.get("frame-ancestors") == ["'none'"], f"{what}: may be framed: {csp}"
    assert directives.get("object-src") == ["'none'"], f"{what}: plugins allowed: {csp}"
    assert response.headers.get("X-Content-Type-Options") == "nosniff", what
    assert response.headers.get("Referrer-Policy") in REFERRER_POLICIES, what


@pytest.fixture
def crawl_world(world, app_config):  # noqa: F811
    """The isolation matrix's world, complete enough to be read as a member: its measurement snapshot
    (written directly there) is finished, so it gets the finishing time a worker would give it."""
    engine = sa.create_engine(app_config["DATABASE_MIGRATION_URL"], poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE measurement_snapshots SET finished_at = CURRENT_TIMESTAMP "
                "WHERE status = 'finished' AND finished_at IS NULL"
            )
        )
    engine.dispose()
    return world


def _answers(client, method: str, url: str, **kwargs):
    response = client.open(url, method=method, **kwargs)
    return response, f"{method} {url}"


def test_every_get_rule_as_a_member_page_and_partial(app, crawl_world, make_client):
    client = make_client()
    login(client, crawl_world["a"].emails["owner"])
    api_headers = {"Authorization": f"Bearer {crawl_world['a_token']}"}
    statuses: set[int] = set()
    checked = 0
    for endpoint, method, url in _urls(app, crawl_world, crawl_world["a"].slug):
        if method != "GET":
            continue
        kind = RULES[endpoint]
        variants = [{"headers": api_headers}] if kind == "api" else [{}, {"headers": {"HX-Request": "true"}}]
        for extra in variants:
            response, what = _answers(client, method, url, **extra)
            assert_secure_headers(response, what)
            statuses.add(response.status_code)
            checked += 1
    assert checked >= 100
    assert 200 in statuses


def test_every_post_rule_refused_for_its_token_or_role(app, world, make_client):  # noqa: F811
    """Refusals are answers too: a wrong CSRF token (400) and a viewer (403) on every write rule."""
    stranger = make_client()
    viewer = make_client()
    login(viewer, world["a"].emails["viewer"])
    token = csrf_token(viewer.get(f"/o/{world['a'].slug}/").get_data(as_text=True))
    seen: set[int] = set()
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if method == "GET" or RULES[endpoint] == "api":
            continue
        response, what = _answers(stranger, method, url, data={"csrf_token": "forged"})
        assert_secure_headers(response, what)
        if RULES[endpoint] != "org":
            continue  # the viewer stays signed in (no logout) for the organisation's rules
        htmx = {"HX-Request": "true"}
        response, what = _answers(viewer, method, url, data={"csrf_token": token}, headers=htmx)
        assert_secure_headers(response, what)
        seen.add(response.status_code)
    assert 403 in seen


def test_the_api_with_and_without_a_token(app, world, client):  # noqa: F811
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if RULES[endpoint] != "api":
            continue
        response, what = _answers(client, method, url)
        assert_secure_headers(response, what)
        if endpoint != "api.openapi":
            assert response.status_code == 401 and response.is_json, what
        headers = {"Authorization": f"Bearer {world['b_token']}"}
        response, what = _answers(client, method, url, headers=headers, json={"organisation_id": 1})
        assert_secure_headers(response, what)
        assert response.is_json, what


def test_every_static_file(client):
    files = [p for p in STATIC.rglob("*") if p.is_file()]
    assert len(files) >= 10
    for path in files:
        url = "/static/" + path.relative_to(STATIC).as_posix()
        response = client.get(url)
        assert response.status_code == 200, url
        assert_secure_headers(response, url)
        response.close()


def test_error_answers_of_every_kind(app_config, migrated, tenant_a):
    """400, 401, 403, 404, 405, 413, 429, 500 and 503, as pages and as API objects, on an app with rate
    limits on and unexpected errors handled as in production."""
    from webapp import create_app

    app = create_app({**app_config, "RATELIMIT_ENABLED": True, "PROPAGATE_UNEXPECTED": False}, env="test")

    @app.get("/__boom")
    def _boom():
        raise RuntimeError("boom")

    @app.get("/api/__boom")
    def _api_boom():
        raise RuntimeError("boom")

    @app.get("/__database_down")
    @app.get("/api/__database_down")
    def _database_down():
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    @app.get("/__redis_down")
    def _redis_down():
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Connection refused")

    client = app.test_client()
    org = f"/o/{tenant_a.slug}"
    cases = [
        ("POST", "/login", {"data": {"email": "x@y.example"}}, 400),
        ("GET", "/api/v1/me", {}, 401),
        ("GET", "/api/v1/journeys/999999", {"headers": {"Authorization": "Bearer nope"}}, 401),
        ("GET", "/no-such-page", {}, 404),
        ("GET", "/api/v1/no-such-thing", {}, 404),
        ("GET", "/logout", {}, 405),
        ("DELETE", "/api/v1/openapi.json", {}, 405),
        ("POST", "/login", {"data": {"email": "x" * (3 * 1024 * 1024)}}, 413),
        ("GET", "/__boom", {}, 500),
        ("GET", "/api/__boom", {}, 500),
        ("GET", "/__database_down", {}, 503),
        ("GET", "/api/__database_down", {}, 503),
        ("GET", "/__redis_down", {}, 503),
    ]
    for method, url, kwargs, status in cases:
        response, what = _answers(client, method, url, **kwargs)
        assert response.status_code == status, what
        assert_secure_headers(response, what)
    viewer = app.test_client()
    login(viewer, tenant_a.emails["viewer"])
    forbidden = viewer.get(f"{org}/settings")
    assert forbidden.status_code == 403
    assert_secure_headers(forbidden, "GET settings as a viewer")
    statuses = [login(client, tenant_a.emails["admin"], "wrong password 123").status_code for _ in range(6)]
    assert statuses[-1] == 429
    assert_secure_headers(login(client, tenant_a.emails["admin"], "wrong password 123"), "POST /login (429)")


@pytest.mark.parametrize("path", ["/", "/login", "/signup", "/healthz", "/readyz", "/api/v1/openapi.json"])
def test_public_pages_anonymously(client, path):
    response = client.get(path)
    assert response.status_code in (200, 503), path
    assert_secure_headers(response, path)
