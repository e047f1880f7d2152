"""API tokens: per user per organisation, shown once, stored hashed, revocable, carrying the user's role."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from webapp import tenancy
from webapp.extensions import db
from webapp.models import ApiToken, Membership, Organisation, User
from webapp.models.types import utcnow
from webapp.services import Actor, NotFound, ServiceError, audit
from webapp.services.accounts import membership_in
from webapp.services.secrets import digest, new_secret

TOKEN_PREFIX = "jl"  # noqa: S105 (a label, not a secret)


@dataclass(frozen=True)
class IssuedToken:
    """A new token and its plain value (never stored, shown once)."""

    token: ApiToken
    value: str


def issue(user: User, name: str, actor: Actor) -> IssuedToken:
    """A new token for `user` in the current organisation.

    The value names the organisation id so the API can scope the lookup (and RLS admits it) before
    it knows who is calling.
    """
    org_id = tenancy.current().organisation_id
    if membership_in(org_id, user.id) is None:
        raise ServiceError(f"{user.email} is not a member of this organisation.", "email")
    name = (name or "").strip() or "API token"
    if len(name) > 120:
        raise ServiceError("Keep the token name under 120 characters.", "name")
    value = f"{TOKEN_PREFIX}_{org_id}_{new_secret()}"
    token = ApiToken(user_id=user.id, name=name, token_hash=digest(value), prefix=value[:12])
    db.session.add(token)
    audit.record(actor, "token.create", name, owner=user.email)
    db.session.commit()
    return IssuedToken(token, value)


def tokens_for(user_id: int | None = None) -> list[ApiToken]:
    """Active tokens of the current organisation (optionally one user's)."""
    query = sa.select(ApiToken).where(ApiToken.revoked_at.is_(None)).order_by(ApiToken.created_at.desc())
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    return list(db.session.scalars(query))


def revoke(token_id: int, actor: Actor) -> None:
    """A token that no longer authenticates."""
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.id == token_id))
    if token is None:
        raise NotFound("No such token.")
    token.revoked_at = utcnow()
    audit.record(actor, "token.revoke", token.name, owner=token.user.email)
    db.session.commit()


@dataclass(frozen=True)
class TokenIdentity:
    """Who a valid bearer token speaks for."""

    user: User
    organisation: Organisation
    membership: Membership


def authenticate(value: str) -> TokenIdentity | None:
    """The identity behind a bearer token value, with the tenant activated; None when not valid."""
    parts = (value or "").split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1].isdigit():
        return None
    organisation = db.session.get(Organisation, int(parts[1]))
    if organisation is None:
        return None
    tenancy.activate(organisation.id, None)
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == digest(value), ApiToken.revoked_at.is_(None))
    )
    if token is None:
        return None
    tenancy.activate(organisation.id, token.user_id)
    membership = membership_in(organisation.id, token.user_id)
    if membership is None:
        return None
    token.last_used_at = utcnow()
    db.session.commit()
    return TokenIdentity(token.user, organisation, membership)
