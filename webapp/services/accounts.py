"""Accounts, organisations and memberships: sign up, sign in, roles, ownership."""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import NamedTuple

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import orm

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Membership, Organisation, Role, User
from webapp.services import Actor, Forbidden, NotFound, ServiceError, audit
from webapp.services.passwords import (
    burn_verification_time,
    check_policy,
    hash_password,
    needs_rehash,
    verify_password,
)

LOGIN_FAILED = "Email or password is not right."
log = logging.getLogger(__name__)


def normalise_email(raw: str) -> str:
    """A valid email address, lower-cased; ServiceError otherwise."""
    try:
        return validate_email((raw or "").strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ServiceError(f"Enter a valid email address ({exc}).", "email") from exc


def slugify(name: str) -> str:
    """A URL-safe slug for an organisation name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:48]
    return slug or "org"


def _unique_slug(name: str) -> str:
    base = slugify(name)
    taken = set(db.session.scalars(sa.select(Organisation.slug).where(Organisation.slug.like(f"{base}%"))))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _clean_org_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ServiceError("Give the organisation a name.", "organisation")
    if len(name) > 120:
        raise ServiceError("Keep the organisation name under 120 characters.", "organisation")
    return name


def find_user_by_email(email: str) -> User | None:
    """The user with this email, or None."""
    return db.session.scalar(sa.select(User).where(User.email == email.strip().lower()))


def create_user(email: str, password: str, display_name: str = "") -> User:
    """A new user (flushed, not committed) after the password policy and uniqueness checks."""
    email = normalise_email(email)
    check_policy(password)
    if find_user_by_email(email):
        raise ServiceError("An account with this email exists already; log in instead.", "email")
    user = User(email=email, password_hash=hash_password(password), display_name=display_name.strip())
    db.session.add(user)
    db.session.flush()
    return user


def _new_organisation(name: str, owner: User, actor: Actor) -> Organisation:
    org = Organisation(name=_clean_org_name(name), slug=_unique_slug(name))
    db.session.add(org)
    db.session.flush()
    tenancy.activate(org.id, owner.id)
    db.session.add(Membership(user_id=owner.id, role=Role.OWNER.value))
    audit.record(actor, "organisation.create", org.slug, name=org.name)
    audit.record(actor, "member.add", owner.email, role=Role.OWNER.value)
    return org


def sign_up(email: str, password: str, organisation_name: str, ip_address: str | None = None) -> Organisation:
    """A new user, a new organisation and the user as its owner; one transaction."""
    _clean_org_name(organisation_name)
    user = create_user(email, password)
    org = _new_organisation(organisation_name, user, Actor(user.id, ip_address))
    db.session.commit()
    return org


def create_organisation(name: str, owner: User, actor: Actor) -> Organisation:
    """Another organisation owned by an existing user."""
    org = _new_organisation(name, owner, actor)
    db.session.commit()
    return org


def authenticate(email: str, password: str, ip_address: str | None = None) -> User:
    """The user whose email and password these are; one vague error for every failure.

    A wrong password is audited in each organisation of the account, so its admins see attacks on
    their members. An unknown email is only logged, without the address (it may be a password typed
    into the wrong field).
    """
    user = find_user_by_email(email or "")
    if user is None:
        burn_verification_time(password or "")
        log.warning("login failed: unknown email, from %s", ip_address or "an unknown address")
        raise ServiceError(LOGIN_FAILED)
    if not verify_password(user.password_hash, password or ""):
        _audit_failed_login(user, ip_address)
        raise ServiceError(LOGIN_FAILED)
    if needs_rehash(user.password_hash):
        # Hashing parameters changed since this hash was made: the password is known right now, so it
        # moves to the current ones (the only moment it can).
        user.password_hash = hash_password(password)
        db.session.commit()
    return user


def _audit_failed_login(user: User, ip_address: str | None) -> None:
    previous = tenancy.current()
    tenancy.activate(None, user.id)
    organisation_ids = [m.organisation_id for m in memberships_of(user)]
    for organisation_id in organisation_ids:
        tenancy.activate(organisation_id, user.id)  # RLS admits the row in this organisation only
        audit.record(Actor(None, ip_address), "login.failed", user.email, reason="wrong password")
        db.session.flush()
    db.session.commit()
    log.warning("login failed: wrong password for user %s, from %s", user.id, ip_address or "unknown")
    if previous is not None:
        tenancy.activate(previous.organisation_id, previous.user_id)


def end_all_sessions(user: User) -> None:
    """Every session of this user ends at its next request."""
    user.session_version += 1


def log_out_everywhere(user: User) -> None:
    """Log out: this and every other session of the user end."""
    end_all_sessions(user)
    db.session.commit()


def change_password(user: User, current_password: str, new_password: str) -> None:
    """A new password; other sessions end (the caller renews the current one)."""
    if not verify_password(user.password_hash, current_password or ""):
        raise ServiceError("The current password is not right.", "current_password")
    check_policy(new_password)
    user.password_hash = hash_password(new_password)
    end_all_sessions(user)
    db.session.commit()


def memberships_of(user: User) -> list[Membership]:
    """The user's memberships across organisations (RLS and ORM scope allow a user's own rows)."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .join(Organisation, Organisation.id == Membership.organisation_id)
            .where(Membership.user_id == user.id)
            .order_by(Organisation.name)
        )
    )


def organisation_by_slug(slug: str) -> Organisation | None:
    """The organisation with this slug (organisations are not tenant-owned rows)."""
    return db.session.scalar(sa.select(Organisation).where(Organisation.slug == slug))


def membership_in(organisation_id: int, user_id: int) -> Membership | None:
    """The user's membership in the organisation now in scope, or None."""
    return db.session.scalar(
        sa.select(Membership).where(
            Membership.organisation_id == organisation_id, Membership.user_id == user_id
        )
    )


def my_membership_by_slug(slug: str, user_id: int) -> Membership | None:
    """The user's membership in the organisation with this slug, its organisation loaded with it, or None
    (no such organisation, or not a member): one query, under the user's own scope, in which a user sees
    their own memberships in every organisation."""
    return db.session.scalar(_MY_MEMBERSHIP_BY_SLUG, {"slug": slug, "user_id": user_id})


# Every page and poll of an organisation runs it first (see tenancy.prebuilt).
_MY_MEMBERSHIP_BY_SLUG = tenancy.prebuilt(
    sa.select(Membership)
    .join(Organisation, Organisation.id == Membership.organisation_id)
    .options(orm.contains_eager(Membership.organisation))  # the join above, not a second one
    .where(Organisation.slug == sa.bindparam("slug"), Membership.user_id == sa.bindparam("user_id"))
)


def members() -> list[Membership]:
    """Memberships of the current organisation, by email, each with its user loaded by the same query
    (pages list every member's name: one query, not one per member)."""
    org = tenancy.current().organisation_id
    return list(
        db.session.scalars(
            sa.select(Membership)
            .join(User, User.id == Membership.user_id)
            .options(orm.contains_eager(Membership.user))
            .where(Membership.organisation_id == org)
            .order_by(User.email)
        )
    )


class Person(NamedTuple):
    """A member as a picker lists them (owner selects, filters)."""

    id: int
    email: str
    label: str


def people(*, at_least: Role = Role.VIEWER) -> list[Person]:
    """The current organisation's members of at least this role as plain rows, by email: pickers on
    busy pages (the journey page, the goals pages) need no ORM objects, which cost a hundred instances
    for fifty members."""
    org = tenancy.current().organisation_id
    query = (
        sa.select(User.id, User.email, User.display_name)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.organisation_id == org)
        .order_by(User.email)
    )
    if at_least != Role.VIEWER:
        query = query.where(Membership.role.in_([role.value for role in Role if role.at_least(at_least)]))
    rows = db.session.execute(query)
    return [Person(user_id, email, display_name or email) for user_id, email, display_name in rows]


def _member(membership_id: int) -> Membership:
    org = tenancy.current().organisation_id
    membership = db.session.scalar(
        sa.select(Membership).where(Membership.id == membership_id, Membership.organisation_id == org)
    )
    if membership is None:
        raise NotFound("No such member.")
    return membership


def _owner_count() -> int:
    org = tenancy.current().organisation_id
    return db.session.scalar(
        sa.select(sa.func.count(Membership.id)).where(
            Membership.organisation_id == org, Membership.role == Role.OWNER.value
        )
    )


def add_member(user: User, role: Role | str, actor: Actor) -> Membership:
    """Make an existing user a member of the current organisation."""
    role = Role(role)
    org = tenancy.current().organisation_id
    if membership_in(org, user.id):
        raise ServiceError(f"{user.email} is a member already.", "email")
    membership = Membership(user_id=user.id, role=role.value)
    db.session.add(membership)
    audit.record(actor, "member.add", user.email, role=role.value)
    db.session.commit()
    return membership


def change_role(membership_id: int, new_role: Role | str, actor_role: Role, actor: Actor) -> Membership:
    """Change a member's role; only owners grant or take away ownership; the last owner stays."""
    new_role = Role(new_role)
    membership = _member(membership_id)
    old_role = membership.role_enum
    if old_role == new_role:
        return membership
    if Role.OWNER in (old_role, new_role) and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can grant or take away ownership.")
    if old_role == Role.OWNER and _owner_count() <= 1:
        raise ServiceError("The last owner cannot be demoted; make someone else owner first.")
    membership.role = new_role.value
    audit.record(
        actor, "member.role_change", membership.user.email, before=old_role.value, after=new_role.value
    )
    db.session.commit()
    return membership


def remove_member(membership_id: int, actor_role: Role, actor: Actor) -> None:
    """Remove a member (or let one leave); their sessions end; the last owner cannot go."""
    membership = _member(membership_id)
    leaving_self = membership.user_id == actor.user_id
    if membership.role_enum == Role.OWNER:
        if _owner_count() <= 1:
            raise ServiceError("The last owner cannot leave or be removed; transfer ownership first.")
        if actor_role != Role.OWNER and not leaving_self:
            raise Forbidden("Only an owner can remove an owner.")
    if not leaving_self and not actor_role.at_least(Role.ADMIN):
        raise Forbidden("Only admins can remove members.")
    user = membership.user
    from webapp.models import ApiToken  # tokens die with the membership

    db.session.execute(
        sa.delete(ApiToken).where(
            ApiToken.user_id == user.id, ApiToken.organisation_id == membership.organisation_id
        )
    )
    db.session.delete(membership)
    end_all_sessions(user)
    audit.record(actor, "member.leave" if leaving_self else "member.remove", user.email, role=membership.role)
    db.session.commit()


def transfer_ownership(membership_id: int, actor: Actor) -> None:
    """Make another member the owner; the current owner becomes an admin."""
    target = _member(membership_id)
    org = tenancy.current().organisation_id
    me = membership_in(org, actor.user_id)
    if me is None or me.role_enum != Role.OWNER:
        raise Forbidden("Only an owner can transfer ownership.")
    if target.id == me.id:
        raise ServiceError("You own this organisation already.")
    target.role = Role.OWNER.value
    me.role = Role.ADMIN.value
    audit.record(actor, "organisation.transfer_ownership", target.user.email, previous_owner=me.user.email)
    db.session.commit()


def rename_organisation(organisation: Organisation, name: str, actor: Actor) -> None:
    """Rename the current organisation (the slug, part of every link, stays)."""
    name = _clean_org_name(name)
    before = organisation.name
    organisation.name = name
    audit.record(actor, "organisation.rename", organisation.slug, before=before, after=name)
    db.session.commit()


def delete_organisation(organisation: Organisation, confirm_slug: str) -> None:
    """Delete the organisation and everything in it (owner only; the caller checks the role)."""
    if (confirm_slug or "").strip() != organisation.slug:
        raise ServiceError(f"Type {organisation.slug} to confirm.", "confirm")
    for membership in members():
        end_all_sessions(membership.user)
    db.session.delete(organisation)
    db.session.commit()
