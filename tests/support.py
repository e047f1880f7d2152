"""Helpers for tests: tenants with members in every role, logging in through the real forms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa

APP_ROLE = "journeylens_app"
PASSWORD = "correct horse battery staple 42"


@dataclass
class TenantFixture:
    slug: str
    organisation_id: int
    emails: dict[str, str] = field(default_factory=dict)  # role -> email


def empty_database(config: dict) -> None:
    """Delete every row (as the owner: RLS would hide rows from the app role)."""
    from webapp.extensions import db

    engine = sa.create_engine(config["DATABASE_MIGRATION_URL"], poolclass=sa.pool.NullPool)
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))
    engine.dispose()


def make_tenant(app, name: str, prefix: str) -> TenantFixture:
    """An organisation with owner, admin, editor and viewer (password PASSWORD)."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Role
    from webapp.services import Actor, accounts

    with app.test_request_context():
        owner = accounts.create_user(f"owner@{prefix}.example", PASSWORD)
        org = accounts.create_organisation(name, owner, Actor(owner.id))
        tenant = TenantFixture(org.slug, org.id, {"owner": owner.email})
        tenancy.activate(org.id, owner.id)
        for role in (Role.ADMIN, Role.EDITOR, Role.VIEWER):
            user = accounts.create_user(f"{role.value}@{prefix}.example", PASSWORD)
            accounts.add_member(user, role, Actor(owner.id))
            tenant.emails[role.value] = user.email
        db.session.commit()
        db.session.remove()
    return tenant


def csrf_token(html: str) -> str:
    """The CSRF token of a page (meta tag or hidden input)."""
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def new_journey(client, slug: str, title: str = "VPN incident") -> str:
    """A journey from the IT-incident template through the real form; its URL."""
    page = client.get(f"/o/{slug}/journeys").get_data(as_text=True)
    response = client.post(
        f"/o/{slug}/journeys",
        data={"csrf_token": csrf_token(page), "template": "it-incident", "title": title},
    )
    assert response.status_code == 302
    return response.headers["Location"]


def login(client, email: str, password: str = PASSWORD):
    """Log in through the real form; returns the response."""
    page = client.get("/login")
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))},
    )


def post_form(client, url: str, data: dict | None = None, page: str | None = None, **kwargs):
    """POST a form with a valid CSRF token taken from `page` (default: the same URL, or the home page)."""
    source = client.get(page or "/", follow_redirects=True)
    token = csrf_token(source.get_data(as_text=True))
    return client.post(url, data={**(data or {}), "csrf_token": token}, **kwargs)


# A small journey in the export format: three lanes, two stages, four steps, one note.
SMALL_JOURNEY = {
    "title": "Password reset",
    "kind": "employee",
    "state": "current",
    "status": "draft",
    "persona": {"name": "Pat", "role": "Clerk", "goals": "", "frustrations": "", "quote": ""},
    "lanes": [{"name": "Actions"}, {"name": "Frontstage"}, {"name": "Backstage"}],
    "stages": [
        {
            "name": "Ask",
            "steps": [
                {"name": "Forgets password", "lane": "Actions", "channel": "other", "emotion": -2},
                {"name": "Calls desk", "lane": "Actions", "channel": "phone", "emotion": -1},
                {"name": "Agent verifies", "lane": "Frontstage", "channel": "phone", "emotion": 0},
            ],
        },
        {
            "name": "Reset",
            "steps": [
                {
                    "name": "Reset in AD",
                    "lane": "Backstage",
                    "channel": "other",
                    "emotion": 0,
                    "expected_duration_s": 300,
                    "notes": [{"kind": "pain_point", "text": "Manual"}],
                }
            ],
        },
    ],
}
