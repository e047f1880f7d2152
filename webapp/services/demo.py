"""The demo organisation a local run starts with (idempotent)."""

from __future__ import annotations

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Role
from webapp.services import Actor, accounts

DEMO_ORG_NAME = "Demo Service Desk"
DEMO_OWNER = ("demo@journeylens.example", "journeylens-demo")
DEMO_MEMBERS = (
    ("editor@journeylens.example", "journeylens-demo", Role.EDITOR),
    ("viewer@journeylens.example", "journeylens-demo", Role.VIEWER),
)


def seed_demo() -> tuple[str, bool]:
    """Make sure the demo organisation and its members exist; returns (slug, created now)."""
    owner = accounts.find_user_by_email(DEMO_OWNER[0])
    created = False
    if owner is None:
        owner = accounts.create_user(*DEMO_OWNER, display_name="Demo Owner")
        org = accounts.create_organisation(DEMO_ORG_NAME, owner, Actor(owner.id))
        created = True
    else:
        tenancy.activate(None, owner.id)
        orgs = [
            m.organisation for m in accounts.memberships_of(owner) if m.organisation.name == DEMO_ORG_NAME
        ]
        org = orgs[0] if orgs else accounts.create_organisation(DEMO_ORG_NAME, owner, Actor(owner.id))
    tenancy.activate(org.id, owner.id)
    for email, password, role in DEMO_MEMBERS:
        user = accounts.find_user_by_email(email) or accounts.create_user(email, password)
        if accounts.membership_in(org.id, user.id) is None:
            accounts.add_member(user, role, Actor(owner.id))
    db.session.commit()
    return org.slug, created
