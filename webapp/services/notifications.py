"""A member's notifications in the organisation in view: write them, count the unread, list, mark read.

Row-level security admits every notification of the organisation (the policy knows no user), so every
function here also filters by the user: a member reads and marks only their own.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Comment, Notification
from webapp.models.collaboration import NOTIFICATION_KINDS
from webapp.models.types import utcnow
from webapp.services import Actor, NotFound
from webapp.services.journeys import use_case

INBOX_LIMIT = 100


def notify(user_ids: Iterable[int], kind: str, actor: Actor, comment: Comment) -> list[Notification]:
    """Add one notification per user about `comment` to the caller's transaction (never to the actor)."""
    assert kind in NOTIFICATION_KINDS, kind
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            actor_id=actor.user_id,
            journey_id=comment.journey_id,
            comment_id=comment.id,
        )
        for user_id in dict.fromkeys(user_ids)  # once each, in the order given
        if user_id != actor.user_id
    ]
    db.session.add_all(rows)
    return rows


def unread_count(user_id: int) -> int:
    """How many of the user's notifications in this organisation are unread (the top bar's number)."""
    return db.session.scalar(_UNREAD_COUNT, {"user_id": user_id})


# Every page's top bar and every inbox poll run it (see tenancy.prebuilt).
_UNREAD_COUNT = tenancy.prebuilt(
    sa.select(sa.func.count(Notification.id)).where(
        Notification.user_id == sa.bindparam("user_id"), Notification.read_at.is_(None)
    )
)


def inbox(user_id: int, *, unread_only: bool = False, limit: int = INBOX_LIMIT) -> list[Notification]:
    """The user's notifications in this organisation, newest first, with what they point at."""
    query = (
        sa.select(Notification)
        .where(Notification.user_id == user_id)
        .options(
            selectinload(Notification.actor),
            selectinload(Notification.journey),
            selectinload(Notification.comment),
        )
        .order_by(Notification.id.desc())
        .limit(limit)
    )
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(db.session.scalars(query))


def get_notification(notification_id: int, user_id: int) -> Notification:
    """One of the user's notifications; another member's looks the same as a missing one."""
    notification = db.session.scalar(
        sa.select(Notification).where(Notification.id == notification_id, Notification.user_id == user_id)
    )
    if notification is None:
        raise NotFound("No such notification.")
    return notification


@use_case
def mark_read(notification_id: int, actor: Actor) -> Notification:
    """Mark one of the actor's notifications read (again is harmless)."""
    notification = get_notification(notification_id, actor.user_id)
    if notification.read_at is None:
        notification.read_at = utcnow()
    return notification


@use_case
def mark_all_read(actor: Actor) -> int:
    """Mark every unread notification of the actor in this organisation read; how many there were."""
    unread = list(
        db.session.scalars(
            sa.select(Notification).where(
                Notification.user_id == actor.user_id, Notification.read_at.is_(None)
            )
        )
    )
    now = utcnow()
    for notification in unread:
        notification.read_at = now
    return len(unread)
