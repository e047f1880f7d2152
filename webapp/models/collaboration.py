"""Collaboration on journeys: comment threads with @mentions, members' notifications, read-only share links.

A thread is a comment without a parent, on the journey as a whole or on one of its steps; replies point
at the thread's first comment, and resolving marks that first comment. Notifications are per user and
per organisation: the row-level security policy admits the organisation's rows and the services add the
user, so nobody reads another member's inbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.accounts import User
from webapp.models.journeys import Journey
from webapp.models.types import UTCDateTime, utcnow
from webapp.tenancy import OrgScoped

if TYPE_CHECKING:
    from webapp.models.goals import Goal

MAX_COMMENT_CHARS = 5000
NOTIFICATION_KINDS = ("mention", "reply", "resolved", "goal_status", "check_in_due")
SHARE_LINK_DAYS_MIN, SHARE_LINK_DAYS_MAX, SHARE_LINK_DAYS_DEFAULT = 1, 90, 30


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that `column` holds one of `values` (constants of this module, never user input)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Comment(OrgScoped, db.Model):
    """A comment on a journey or on one of its steps; with `parent_id`, a reply in that thread."""

    __tablename__ = "comments"
    __table_args__ = (
        sa.CheckConstraint(f"length(body) BETWEEN 1 AND {MAX_COMMENT_CHARS}", name="body_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    # No foreign key on purpose: a deleted step's discussion stays (shown under `step_name`), and undoing
    # the delete brings the step back with the same id, so its threads reattach. Step ids are never reused.
    step_id: Mapped[int | None] = mapped_column(index=True)
    step_name: Mapped[str] = mapped_column(sa.String(200), default="")
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(sa.Text)
    # The members this comment names: [{"user_id": 3, "text": "@Ann Smith"}, ...] (to highlight them).
    mentions: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))

    author: Mapped[User | None] = relationship(foreign_keys=[author_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])


class Notification(OrgScoped, db.Model):
    """Something for a member to look at: a mention, a reply in or the resolution of their thread, a goal
    that changed status or whose check-in is due (`goal_id`, with `summary` saying what happened)."""

    __tablename__ = "notifications"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", NOTIFICATION_KINDS), name="kind"),
        # The top bar counts a member's unread notifications on every page.
        sa.Index("ix_notifications_user_id_read_at", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    journey_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True
    )
    comment_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("comments.id", ondelete="CASCADE"), index=True
    )
    goal_id: Mapped[int | None] = mapped_column(sa.ForeignKey("goals.id", ondelete="CASCADE"), index=True)
    summary: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    actor: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    journey: Mapped[Journey | None] = relationship()
    comment: Mapped[Comment | None] = relationship()
    goal: Mapped[Goal | None] = relationship()


class ShareLink(OrgScoped, db.Model):
    """A read-only link to one journey for people without an account; only its SHA-256 is stored."""

    __tablename__ = "share_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(sa.String(120), default="")
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()

    def state(self, now: datetime) -> str:
        """active, expired or revoked."""
        if self.revoked_at:
            return "revoked"
        if now >= self.expires_at:
            return "expired"
        return "active"
