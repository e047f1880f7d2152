"""Cross-site request forgery and safe methods, crawled over every URL rule.

- Every state-changing rule of the browser app (POST/PUT/DELETE under /o/ and the auth forms) refuses a
  missing, a wrong and a foreign (another session's) CSRF token, in the form and in htmx's header, even
  for the organisation's owner; the database is unchanged after all of those attempts.
- The API takes no cookies: a signed-in browser without a bearer token gets 401 (so it needs no CSRF).
- No GET changes the database: every GET rule is called as A's owner with A's real ids (page and htmx
  partial), and a checksum of every table (row count and a hash of the rows, read as the owner of the
  tables, past RLS) is compared before and after each call.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support import csrf_token, login
from tests.web.test_isolation_matrix import RULES, _urls
from tests.web.test_security_headers import crawl_world, world  # noqa: F401  (fixtures)

# GETs that write on purpose, each with the only tables it may touch and why.
WRITING_GETS = {
    # "What changed since my last visit": opening the dashboard moves the viewer's own visit marker
    # (one row per user and organisation), which is the feature, not a side effect of reading.
    "orgs.dashboard.index": {"dashboard_visits"},
}
# Columns that record use, not content, shown to admins so they can spot unused or misused credentials:
# every API call stamps its token's last use, every opening of a share link the link's last view.
# Nothing else of those rows may change.
USAGE_COLUMNS = {"api_tokens": ["last_used_at"], "share_links": ["last_viewed_at"]}


def _checksum(owner_url: str) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of the rows)} over every table of the schema, read as the tables' owner."""
    from webapp.extensions import db

    engine = sa.create_engine(owner_url, poolclass=sa.pool.NullPool)
    sums = {}
    with engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            ignored = ", ".join(f"'{column}'" for column in USAGE_COLUMNS.get(table.name, []))
            row = f"(to_jsonb(t) - ARRAY[{ignored}]::text[])::text"
            rows, digest = connection.execute(
                sa.text(
                    f"SELECT count(*), md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) "
                    f"FROM {table.name} AS t"
                )
            ).one()
            sums[table.name] = (rows, digest)
    engine.dispose()
    return sums


def _changed(before: dict, after: dict) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def _writes(app, objects):
    """(endpoint, method, url) of every state-changing rule of the browser app."""
    for endpoint, method, url in _urls(app, objects, objects["a"].slug):
        if method in ("POST", "PUT", "PATCH", "DELETE") and RULES[endpoint] != "api":
            yield endpoint, method, url


@pytest.mark.postgres
def test_every_write_refuses_a_missing_wrong_or_foreign_csrf_token(app, world, make_client, app_config):  # noqa: F811
    owner = make_client()
    login(owner, world["a"].emails["owner"])
    other_session = make_client()
    login(other_session, world["a"].emails["admin"])
    foreign = csrf_token(other_session.get(f"/o/{world['a'].slug}/").get_data(as_text=True))
    own = csrf_token(owner.get(f"/o/{world['a'].slug}/").get_data(as_text=True))
    assert foreign != own
    form = {"role": "viewer", "confirm": world["a"].slug, "name": "Forged", "title": "Forged", "body": "x"}
    attempts = {
        "missing": {"data": form},
        "wrong": {"data": {**form, "csrf_token": own[:-4] + "AAAA"}},
        "foreign": {"data": {**form, "csrf_token": foreign}},
        "foreign, htmx header": {"data": form, "headers": {"HX-Request": "true", "X-CSRFToken": foreign}},
        "wrong, htmx header": {"data": form, "headers": {"HX-Request": "true", "X-CSRFToken": "forged"}},
    }
    before = _checksum(app_config["DATABASE_MIGRATION_URL"])
    checked = set()
    for endpoint, method, url in _writes(app, world):
        for name, kwargs in attempts.items():
            response = owner.open(url, method=method, **kwargs)
            assert response.status_code == 400, f"{method} {url} with a {name} token: {response.status_code}"
            assert "Reload the page" in response.get_data(as_text=True), f"{method} {url} ({name})"
        checked.add(endpoint)
    assert _changed(before, _checksum(app_config["DATABASE_MIGRATION_URL"])) == set()
    # The crawl covered the organisation's writes and the auth forms.
    assert {"auth.login", "auth.signup", "auth.logout", "auth.account", "auth.join"} <= checked
    assert {"orgs.delete_organisation", "orgs.journeys.edit_step", "orgs.eventlogs.upload"} <= checked
    assert len(checked) >= 60
    # The owner's own token works (the refusals were about the token, not the session).
    assert owner.get(f"/o/{world['a'].slug}/settings").status_code == 200


def test_the_api_ignores_the_browser_session(app, world, make_client):  # noqa: F811
    """A cookie never authenticates an API call, so a forged cross-site request to the API has no power."""
    browser = make_client()
    login(browser, world["a"].emails["owner"])
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if RULES[endpoint] != "api" or endpoint == "api.openapi":
            continue
        response = browser.open(url, method=method, json={"title": "Forged"})
        assert response.status_code == 401, f"{method} {url} answered {response.status_code}"


@pytest.mark.postgres
def test_no_get_changes_the_database(app, crawl_world, make_client, app_config):  # noqa: F811
    world = crawl_world  # noqa: F811
    owner = make_client()
    login(owner, world["a"].emails["owner"])
    api = {"Authorization": f"Bearer {world['a_token']}"}
    owner_url = app_config["DATABASE_MIGRATION_URL"]
    # Warm up: the first visit of the dashboard creates the visit marker; later visits move it.
    owner.get(f"/o/{world['a'].slug}/dashboard")
    checked = 0
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if method != "GET":
            continue
        variants = (
            [{"headers": api}] if RULES[endpoint] == "api" else [{}, {"headers": {"HX-Request": "true"}}]
        )
        for kwargs in variants:
            before = _checksum(owner_url)
            response = owner.get(url, **kwargs)
            assert response.status_code < 500, f"GET {url} answered {response.status_code}"
            changed = _changed(before, _checksum(owner_url))
            allowed = WRITING_GETS.get(endpoint, set())
            assert changed <= allowed, f"GET {url} ({endpoint}) changed {sorted(changed - allowed)}"
            checked += 1
    assert checked >= 100
    # A's public pages, read anonymously, write nothing either (the share link, an invitation).
    visitor = make_client()
    before = _checksum(owner_url)
    for endpoint, method, url in _urls(app, world, world["a"].slug):
        if method == "GET" and RULES[endpoint] == "public":
            assert visitor.get(url).status_code < 500, url
    assert _changed(before, _checksum(owner_url)) == set()
