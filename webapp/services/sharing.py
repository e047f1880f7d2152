"""Read-only share links: an editor lets stakeholders without an account look at one journey map.

A link is `/share/<org slug>/<secret>`: the slug lets the server scope the lookup to one organisation
(and row-level security admit it) before it knows whether the secret is good, as invitation links do.
Only the secret's SHA-256 is stored, so the link is shown once. A link lasts 1 to 90 days (30 unless
chosen) and can be revoked; it opens that journey's map and nothing else of the organisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Organisation, ShareLink
from webapp.models.collaboration import SHARE_LINK_DAYS_DEFAULT, SHARE_LINK_DAYS_MAX, SHARE_LINK_DAYS_MIN
from webapp.models.types import utcnow
from webapp.services import Actor, NotFound, ServiceError, audit
from webapp.services.accounts import organisation_by_slug
from webapp.services.journeys import Board, board, get_journey, use_case
from webapp.services.secrets import digest, new_secret

MAX_LABEL = 120
INVALID = "This link is not valid. Check that it was copied whole, or ask whoever sent it for a new one."


@dataclass(frozen=True)
class IssuedShareLink:
    """A new link and its secret (shown to the editor once, never stored)."""

    link: ShareLink
    secret: str


@dataclass(frozen=True)
class SharedJourney:
    """What a share link shows: the journey's map, the link, and whose it is."""

    organisation: Organisation
    link: ShareLink
    board: Board


def links(journey_id: int) -> list[ShareLink]:
    """The journey's share links, newest first, whatever their state."""
    journey = get_journey(journey_id)
    return list(
        db.session.scalars(
            sa.select(ShareLink)
            .where(ShareLink.journey_id == journey.id)
            .options(selectinload(ShareLink.created_by))
            .order_by(ShareLink.id.desc())
        )
    )


@use_case
def create_link(
    journey_id: int, actor: Actor, *, days: Any = SHARE_LINK_DAYS_DEFAULT, label: str = ""
) -> IssuedShareLink:
    """A new read-only link to the journey that expires after `days` (1 to 90)."""
    journey = get_journey(journey_id)
    days = _days(days)
    label = (label or "").strip()
    if len(label) > MAX_LABEL:
        raise ServiceError(f"Keep the label under {MAX_LABEL} characters.", "label")
    secret = new_secret()
    link = ShareLink(
        journey_id=journey.id,
        label=label,
        token_hash=digest(secret),
        created_by_id=actor.user_id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(link)
    db.session.flush()
    audit.record(
        actor,
        "share_link.create",
        journey.title,
        journey_id=journey.id,
        share_link_id=link.id,
        label=label,
        expires_at=link.expires_at.isoformat(),
    )
    return IssuedShareLink(link, secret)


@use_case
def revoke_link(journey_id: int, link_id: int, actor: Actor) -> ShareLink:
    """Make a link useless at once (revoking twice is harmless)."""
    journey = get_journey(journey_id)
    link = db.session.scalar(
        sa.select(ShareLink).where(ShareLink.id == link_id, ShareLink.journey_id == journey.id)
    )
    if link is None:
        raise NotFound("No such share link of this journey.")
    if link.revoked_at is None:
        link.revoked_at = utcnow()
        audit.record(
            actor,
            "share_link.revoke",
            journey.title,
            journey_id=journey.id,
            share_link_id=link.id,
            label=link.label,
        )
    return link


def open_link(org_slug: str, secret: str, viewer_id: int | None = None) -> SharedJourney:
    """The journey behind a usable link of the organisation `org_slug`, or NotFound saying why not.

    Makes that organisation the tenant, so the lookup (and row-level security) sees its links only.
    """
    organisation = organisation_by_slug(org_slug or "")
    if organisation is None:
        raise NotFound(INVALID)
    tenancy.activate(organisation.id, viewer_id)
    link = _note_visit(secret)
    # Read after the visit's commit, so nothing drawn has been expired by it.
    return SharedJourney(organisation, link, board(link.journey_id))


@use_case
def _note_visit(secret: str) -> ShareLink:
    """The usable link behind `secret`, stamped with when it was last opened (editors see it)."""
    link = db.session.scalar(sa.select(ShareLink).where(ShareLink.token_hash == digest(secret or "")))
    if link is None:
        raise NotFound(INVALID)
    state = link.state(utcnow())
    if state == "revoked":
        raise NotFound("This link was withdrawn by the journey's editors. Ask whoever sent it for a new one.")
    if state == "expired":
        raise NotFound(f"This link expired on {link.expires_at:%d %B %Y}. Ask whoever sent it for a new one.")
    link.last_viewed_at = utcnow()
    return link


def _days(value: Any) -> int:
    try:
        days = int(value)
    except (TypeError, ValueError):
        raise ServiceError(
            f"Choose how many days the link works: {SHARE_LINK_DAYS_MIN} to {SHARE_LINK_DAYS_MAX}.", "days"
        )
    if isinstance(value, bool) or not SHARE_LINK_DAYS_MIN <= days <= SHARE_LINK_DAYS_MAX:
        raise ServiceError(
            f"A link works {SHARE_LINK_DAYS_MIN} to {SHARE_LINK_DAYS_MAX} days, not {value}.", "days"
        )
    return days
