"""Invitations: an admin invites an email with a role; the single-use link lets that person join."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from webapp import queue, tenancy
from webapp.extensions import db
from webapp.models import Invitation, Membership, Organisation, Role, User
from webapp.models.types import utcnow
from webapp.services import Actor, Forbidden, NotFound, ServiceError, audit
from webapp.services.accounts import create_user, membership_in, normalise_email
from webapp.services.secrets import digest, new_secret


@dataclass(frozen=True)
class IssuedInvitation:
    """A new invitation and its secret link path (shown to the admin once)."""

    invitation: Invitation
    path: str


def invitation_path(org: Organisation, secret: str) -> str:
    """Where the invite link points (the organisation's slug tells the server which tenant to look in)."""
    return f"/join/{org.slug}/{secret}"


def invite(
    org: Organisation, email: str, role: Role | str, actor_role: Role, actor: Actor, base_url: str = ""
) -> IssuedInvitation:
    """Invite an email with a role; mail the link (under `base_url`) when SMTP is configured."""
    email = normalise_email(email)
    role = Role(role)
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can invite another owner.")
    existing = db.session.scalar(
        sa.select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organisation_id == org.id, User.email == email)
    )
    if existing:
        raise ServiceError(f"{email} is a member already.", "email")
    secret = new_secret()
    invitation = Invitation(
        email=email,
        role=role.value,
        token_hash=digest(secret),
        invited_by_id=actor.user_id,
        expires_at=utcnow() + current_app.config["INVITATION_TTL"],
    )
    db.session.add(invitation)
    audit.record(actor, "invitation.create", email, role=role.value)
    db.session.commit()
    path = invitation_path(org, secret)
    if current_app.config.get("SMTP_URL"):
        queue.enqueue(
            "default",
            "worker.jobs.mail.send_invitation",
            invitation.id,
            (base_url or current_app.config.get("PUBLIC_URL") or "http://localhost:5000").rstrip("/") + path,
            organisation_id=org.id,
            description=f"invitation mail to {email}",
        )
    return IssuedInvitation(invitation, path)


def pending() -> list[Invitation]:
    """The current organisation's invitations that can still be used."""
    now = utcnow()
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(
                Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), Invitation.expires_at > now
            )
            .order_by(Invitation.created_at.desc())
        )
    )


def revoke(invitation_id: int, actor: Actor) -> None:
    """Make an invitation link useless."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organisation_id != tenancy.current().organisation_id:
        raise NotFound("No such invitation.")
    invitation.revoked_at = utcnow()
    audit.record(actor, "invitation.revoke", invitation.email)
    db.session.commit()


def find_by_secret(org: Organisation, secret: str) -> Invitation:
    """The usable invitation behind a link, or a ServiceError that says why it cannot be used.

    The caller must have activated `org` as the tenant.
    """
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == digest(secret)))
    if invitation is None:
        raise NotFound("This invitation link is not valid. Ask an admin of the organisation for a new one.")
    state = invitation.state(utcnow())
    if state != "pending":
        messages = {
            "accepted": "This invitation has been used already. Log in, or ask an admin for a new one.",
            "revoked": "This invitation was withdrawn. Ask an admin of the organisation for a new one.",
            "expired": "This invitation has expired (links last 7 days). Ask an admin for a new one.",
        }
        raise ServiceError(messages[state])
    return invitation


def accept(org: Organisation, secret: str, user: User, ip_address: str | None) -> Membership:
    """An existing, signed-in user joins with the invited role (the email must match)."""
    tenancy.activate(org.id, user.id)
    invitation = find_by_secret(org, secret)
    if user.email != invitation.email:
        raise ServiceError(
            f"This invitation is for {invitation.email}; you are signed in as {user.email}. "
            "Log out and sign in with the invited address."
        )
    if membership_in(org.id, user.id):
        raise ServiceError("You are a member of this organisation already.")
    membership = Membership(user_id=user.id, role=invitation.role)
    db.session.add(membership)
    invitation.accepted_at = utcnow()
    audit.record(Actor(user.id, ip_address), "invitation.accept", user.email, role=invitation.role)
    db.session.commit()
    return membership


def accept_as_new_user(org: Organisation, secret: str, password: str, ip_address: str | None) -> User:
    """Someone without an account sets a password and joins (their email is the invited one)."""
    tenancy.activate(org.id, None)
    invitation = find_by_secret(org, secret)
    user = create_user(invitation.email, password)
    tenancy.activate(org.id, user.id)
    db.session.add(Membership(user_id=user.id, role=invitation.role))
    invitation.accepted_at = utcnow()
    audit.record(Actor(user.id, ip_address), "invitation.accept", user.email, role=invitation.role)
    db.session.commit()
    return user


def normalise_invited_email(raw: str) -> str:
    """Exposed for forms that pre-check the email."""
    return normalise_email(raw)
