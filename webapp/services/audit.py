"""Writing and reading the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import AuditEvent, User
from webapp.services import Actor


def record(actor: Actor, action: str, target: str = "", **details: Any) -> AuditEvent:
    """Add an audit event to the current transaction (the caller's service commits it)."""
    event = AuditEvent(
        actor_id=actor.user_id, action=action, target=target, details=details, ip_address=actor.ip_address
    )
    db.session.add(event)
    return event


def search(
    *,
    action: str | None = None,
    actor_email: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """The current organisation's audit events, newest first, filtered."""
    query = sa.select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc()).limit(limit)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor_email:
        query = query.join(User, User.id == AuditEvent.actor_id).where(User.email == actor_email.lower())
    if since:
        query = query.where(AuditEvent.created_at >= since)
    if until:
        query = query.where(AuditEvent.created_at < until)
    return list(db.session.scalars(query))


def actions() -> list[str]:
    """Distinct actions recorded in the current organisation (for the filter)."""
    return list(db.session.scalars(sa.select(AuditEvent.action).distinct().order_by(AuditEvent.action)))
