"""Members, roles, invitations, tokens, settings and the audit log, through the real forms."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import sqlalchemy as sa

from tests.support import PASSWORD, csrf_token, login, post_form


def _members_url(tenant):
    return f"/o/{tenant.slug}/members"


def _membership_id(app, email, tenant):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Membership, User

    with app.app_context():
        tenancy.activate(tenant.organisation_id)
        return db.session.scalar(sa.select(Membership.id).join(User).where(User.email == email))


def _invite(client, tenant, email, role="editor"):
    response = post_form(
        client, f"/o/{tenant.slug}/invitations", {"email": email, "role": role}, page=_members_url(tenant)
    )
    match = re.search(
        r'id="invite-url" type="text" readonly value="([^"]+)"', response.get_data(as_text=True)
    )
    return response, match.group(1) if match else None


def test_admin_invites_a_new_person_who_joins_with_the_role(app, tenant_a, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    response, link = _invite(admin, tenant_a, "new.person@a.example", "editor")
    assert response.status_code == 201 and link.startswith("http://localhost/join/alpha-services/")
    path = link.removeprefix("http://localhost")
    newcomer = make_client()
    page = newcomer.get(path).get_data(as_text=True)
    assert "Join Alpha Services" in page and "new.person@a.example" in page
    joined = newcomer.post(path, data={"password": "newcomer passphrase 9", "csrf_token": csrf_token(page)})
    assert joined.status_code == 302 and joined.headers["Location"] == f"/o/{tenant_a.slug}/"
    assert "editor" in newcomer.get(f"/o/{tenant_a.slug}/").get_data(as_text=True)
    # Single use: the link now says why it no longer works.
    again = make_client().get(path)
    assert again.status_code == 404 and "used already" in again.get_data(as_text=True)
    members = admin.get(_members_url(tenant_a)).get_data(as_text=True)
    assert "new.person@a.example" in members


def test_existing_user_accepts_while_signed_in(app, tenant_a, tenant_b, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    _, link = _invite(admin, tenant_a, "viewer@b.example", "viewer")
    path = link.removeprefix("http://localhost")
    other = make_client()
    assert "Log in" in other.get(path).get_data(as_text=True)  # has an account: log in first
    login(other, "viewer@b.example")
    page = other.get(path).get_data(as_text=True)
    assert "Accept and join" in page
    assert other.post(path, data={"csrf_token": csrf_token(page)}).status_code == 302
    assert other.get(f"/o/{tenant_a.slug}/").status_code == 200
    assert other.get(f"/o/{tenant_b.slug}/").status_code == 200  # still in B too


def test_invitations_expire_and_can_be_withdrawn(app, tenant_a, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    _, expiring = _invite(admin, tenant_a, "late@a.example")
    _, withdrawn = _invite(admin, tenant_a, "unwanted@a.example")
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Invitation
    from webapp.models.types import utcnow

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        late = db.session.scalar(sa.select(Invitation).where(Invitation.email == "late@a.example"))
        late.expires_at = utcnow() - timedelta(seconds=1)
        unwanted_id = db.session.scalar(
            sa.select(Invitation.id).where(Invitation.email == "unwanted@a.example")
        )
        db.session.commit()
    post_form(admin, f"/o/{tenant_a.slug}/invitations/{unwanted_id}/revoke", page=_members_url(tenant_a))
    visitor = make_client()
    expired_page = visitor.get(expiring.removeprefix("http://localhost"))
    assert expired_page.status_code == 404 and "expired" in expired_page.get_data(as_text=True)
    revoked_page = visitor.get(withdrawn.removeprefix("http://localhost"))
    assert "withdrawn" in revoked_page.get_data(as_text=True)
    assert visitor.get(f"/join/{tenant_a.slug}/not-a-real-secret").status_code == 404


def test_invitation_for_another_email_cannot_be_taken(app, tenant_a, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    _, link = _invite(admin, tenant_a, "intended@a.example")
    intruder = make_client()
    from webapp.services import accounts

    with app.app_context():
        accounts.create_user("intruder@c.example", PASSWORD)
        from webapp.extensions import db

        db.session.commit()
    login(intruder, "intruder@c.example")
    path = link.removeprefix("http://localhost")
    page = intruder.get(path).get_data(as_text=True)
    assert "Log out and sign in with intended@a.example" in page
    refused = intruder.post(path, data={"csrf_token": csrf_token(page)})
    assert intruder.get(f"/o/{tenant_a.slug}/").status_code == 404
    assert refused.status_code == 200


def test_roles_change_and_the_last_owner_is_protected(app, tenant_a, make_client):
    owner = make_client()
    login(owner, "owner@a.example")
    editor_id = _membership_id(app, "editor@a.example", tenant_a)
    owner_id = _membership_id(app, "owner@a.example", tenant_a)
    post_form(
        owner, f"/o/{tenant_a.slug}/members/{editor_id}/role", {"role": "viewer"}, page=_members_url(tenant_a)
    )
    editor = make_client()
    login(editor, "editor@a.example")
    assert "You are <strong>viewer</strong>" in editor.get(f"/o/{tenant_a.slug}/").get_data(as_text=True)
    demoted = post_form(
        owner,
        f"/o/{tenant_a.slug}/members/{owner_id}/role",
        {"role": "admin"},
        page=_members_url(tenant_a),
        follow_redirects=True,
    )
    assert "The last owner cannot be demoted" in demoted.get_data(as_text=True)
    left = post_form(
        owner,
        f"/o/{tenant_a.slug}/members/{owner_id}/remove",
        page=_members_url(tenant_a),
        follow_redirects=True,
    )
    assert "The last owner cannot leave" in left.get_data(as_text=True)


def test_admin_cannot_grant_ownership(app, tenant_a, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    editor_id = _membership_id(app, "editor@a.example", tenant_a)
    response = post_form(
        admin, f"/o/{tenant_a.slug}/members/{editor_id}/role", {"role": "owner"}, page=_members_url(tenant_a)
    )
    assert response.status_code == 403


def test_removed_member_loses_access_and_sessions_at_once(app, tenant_a, make_client):
    admin, editor = make_client(), make_client()
    login(admin, "admin@a.example")
    login(editor, "editor@a.example")
    assert editor.get(f"/o/{tenant_a.slug}/").status_code == 200
    editor_id = _membership_id(app, "editor@a.example", tenant_a)
    post_form(admin, f"/o/{tenant_a.slug}/members/{editor_id}/remove", page=_members_url(tenant_a))
    response = editor.get(f"/o/{tenant_a.slug}/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    login(editor, "editor@a.example")
    assert editor.get(f"/o/{tenant_a.slug}/").status_code == 404


def test_member_can_leave(app, tenant_a, make_client):
    viewer = make_client()
    login(viewer, "viewer@a.example")
    viewer_id = _membership_id(app, "viewer@a.example", tenant_a)
    response = post_form(
        viewer, f"/o/{tenant_a.slug}/members/{viewer_id}/remove", page=_members_url(tenant_a)
    )
    assert response.status_code == 302
    login(viewer, "viewer@a.example")
    assert viewer.get(f"/o/{tenant_a.slug}/").status_code == 404


def test_ownership_transfer(app, tenant_a, make_client):
    owner = make_client()
    login(owner, "owner@a.example")
    admin_id = _membership_id(app, "admin@a.example", tenant_a)
    post_form(
        owner,
        f"/o/{tenant_a.slug}/settings/transfer",
        {"membership_id": admin_id},
        page=f"/o/{tenant_a.slug}/settings",
    )
    assert owner.get(f"/o/{tenant_a.slug}/settings").status_code == 200  # now admin: still allowed
    assert (
        post_form(
            owner,
            f"/o/{tenant_a.slug}/settings/delete",
            {"confirm": tenant_a.slug},
            page=f"/o/{tenant_a.slug}/settings",
        ).status_code
        == 403
    )
    new_owner = make_client()
    login(new_owner, "admin@a.example")
    assert "You are <strong>owner</strong>" in new_owner.get(f"/o/{tenant_a.slug}/").get_data(as_text=True)


def test_owner_deletes_the_organisation_after_typing_its_slug(app, tenant_a, tenant_b, make_client):
    owner = make_client()
    login(owner, "owner@a.example")
    wrong = post_form(
        owner, f"/o/{tenant_a.slug}/settings/delete", {"confirm": "nope"}, page=f"/o/{tenant_a.slug}/settings"
    )
    assert wrong.status_code == 422 and f"Type {tenant_a.slug} to confirm" in wrong.get_data(as_text=True)
    done = post_form(
        owner,
        f"/o/{tenant_a.slug}/settings/delete",
        {"confirm": tenant_a.slug},
        page=f"/o/{tenant_a.slug}/settings",
    )
    assert done.status_code == 302
    login(owner, "owner@a.example")
    assert owner.get(f"/o/{tenant_a.slug}/").status_code == 404
    b = make_client()
    login(b, "owner@b.example")
    assert b.get(f"/o/{tenant_b.slug}/members").status_code == 200


def test_rename_and_audit_log_with_filters(app, tenant_a, make_client):
    admin = make_client()
    login(admin, "admin@a.example")
    post_form(
        admin,
        f"/o/{tenant_a.slug}/settings",
        {"name": "Alpha IT Services"},
        page=f"/o/{tenant_a.slug}/settings",
    )
    _invite(admin, tenant_a, "audited@a.example", "viewer")
    log = admin.get(f"/o/{tenant_a.slug}/audit").get_data(as_text=True)
    assert "organisation.rename" in log and "Alpha IT Services" in log
    assert "invitation.create" in log and "audited@a.example" in log
    assert "127.0.0.1" in log  # from which address
    filtered = admin.get(
        f"/o/{tenant_a.slug}/audit?action=invitation.create", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "<html" not in filtered  # htmx gets only the rows
    assert "audited@a.example" in filtered and "organisation.rename" not in filtered
    by_actor = admin.get(
        f"/o/{tenant_a.slug}/audit?actor=owner@a.example", headers={"HX-Request": "true"}
    ).get_data(as_text=True)
    assert "member.add" in by_actor and "organisation.rename" not in by_actor
    future = admin.get(f"/o/{tenant_a.slug}/audit?since=2999-01-01").get_data(as_text=True)
    assert "No events match these filters." in future


def test_tokens_are_shown_once_listed_and_revocable(app, tenant_a, make_client, client):
    admin = make_client()
    login(admin, "admin@a.example")
    created = post_form(
        admin, f"/o/{tenant_a.slug}/tokens", {"name": "ServiceNow export"}, page=f"/o/{tenant_a.slug}/tokens"
    ).get_data(as_text=True)
    value = re.search(r'id="new-token" type="text" readonly value="([^"]+)"', created).group(1)
    listing = admin.get(f"/o/{tenant_a.slug}/tokens").get_data(as_text=True)
    assert "ServiceNow export" in listing and value not in listing and value[:12] in listing
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {value}"})
    assert me.get_json()["role"] == "admin"
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import ApiToken

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        token = db.session.scalar(sa.select(ApiToken))
        assert token.token_hash != value and value not in token.token_hash  # stored hashed
        token_id = token.id
    post_form(admin, f"/o/{tenant_a.slug}/tokens/{token_id}/revoke", page=f"/o/{tenant_a.slug}/tokens")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {value}"}).status_code == 401
    log = admin.get(f"/o/{tenant_a.slug}/audit").get_data(as_text=True)
    assert "token.create" in log and "token.revoke" in log


def test_a_token_follows_its_users_role_and_membership(app, tenant_a, make_client, client):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User
    from webapp.services import Actor, tokens

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        editor = db.session.scalar(sa.select(User).where(User.email == "editor@a.example"))
        value = tokens.issue(editor, "editor script", Actor(None)).value
    headers = {"Authorization": f"Bearer {value}"}
    assert client.get("/api/v1/me", headers=headers).get_json()["role"] == "editor"
    owner = make_client()
    login(owner, "owner@a.example")
    editor_id = _membership_id(app, "editor@a.example", tenant_a)
    post_form(
        owner, f"/o/{tenant_a.slug}/members/{editor_id}/role", {"role": "viewer"}, page=_members_url(tenant_a)
    )
    assert client.get("/api/v1/me", headers=headers).get_json()["role"] == "viewer"
    post_form(owner, f"/o/{tenant_a.slug}/members/{editor_id}/remove", page=_members_url(tenant_a))
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_user_can_create_and_switch_to_another_organisation(app, tenant_a, make_client):
    owner = make_client()
    login(owner, "owner@a.example")
    response = post_form(
        owner, "/organisations/new", {"organisation": "Alpha Services"}, page="/organisations/new"
    )
    assert response.headers["Location"] == "/o/alpha-services-2/"  # slugs stay unique
    chooser = owner.get("/").get_data(as_text=True)
    assert "/o/alpha-services/" in chooser and "/o/alpha-services-2/" in chooser
    # The top bar's switcher loads its entries when opened: both organisations, the one in view marked.
    page = owner.get("/o/alpha-services-2/").get_data(as_text=True)
    menu_url = re.search(r'class="dropdown org-switcher" hx-get="([^"]+)"', page).group(1)
    menu = owner.get(unescape(menu_url), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert re.search(r'href="/o/alpha-services/">Alpha Services <small>\(owner\)', menu)
    assert re.search(r'href="/o/alpha-services-2/" aria-current="page">Alpha Services <small>', menu)
    assert "+ New organisation" in menu
    # Nobody else's organisations, whatever the page claims to be in.
    other = make_client()
    login(other, "viewer@a.example")
    foreign = other.get("/organisations/menu?current=alpha-services-2").get_data(as_text=True)
    assert "/o/alpha-services/" in foreign and "alpha-services-2" not in foreign


def test_empty_sections_explain_what_to_do(app, tenant_a, make_client):
    viewer = make_client()
    login(viewer, "viewer@a.example")
    for section, hint in (
        ("eventlogs", "Upload a ticket"),
        ("goals", "Set a goal on a measured figure"),
        ("dashboard", "Goals set on the Goals page appear here"),
    ):
        page = viewer.get(f"/o/{tenant_a.slug}/{section}")
        assert page.status_code == 200 and hint in page.get_data(as_text=True)
