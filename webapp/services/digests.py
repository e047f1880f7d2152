"""The weekly digest: per member, what happened to the organisation's goals in the past week.

A week runs from Monday 00:00 UTC to the next Monday 00:00 UTC. Each member gets one `Digest` row per
week (unique per organisation, member and period end), so creating the week's digests twice changes
nothing: the scheduler may enqueue the job again after a restart or a lost Redis key, and it may be
retried, without anyone getting two digests or two mails. The body is JSON so the page and the mail
are drawn from the same facts, as they stood when the week closed.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Membership, User
from webapp.models.goals import Digest, Goal, GoalEvent
from webapp.models.journeys import Journey
from webapp.models.types import utcnow
from webapp.services import NotFound
from webapp.services.dashboard import CHANGE_KINDS, STATUS_LABELS, describe_counts

WEEK = timedelta(days=7)
EVENTS_KEPT = 100  # per digest; the counts cover every event


def period_for(now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last complete week before `now`: (Monday 00:00 UTC a week earlier, this week's Monday 00:00)."""
    now = (now or utcnow()).astimezone(UTC)
    end = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=now.weekday())
    return end - WEEK, end


def _body(
    start: datetime, end: datetime, goals: dict[int, Any], events: list, user_id: int
) -> dict[str, Any]:
    """What one member reads: counts, the events (their own goals marked), and where every goal stands."""
    mine = {goal_id for goal_id, goal in goals.items() if goal.owner_id == user_id}
    kinds = Counter(event.kind for event in events)
    return {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "counts": {kind: kinds[kind] for kind in CHANGE_KINDS if kinds[kind]},
        "statuses": {
            status: count
            for status in STATUS_LABELS
            if (count := sum(1 for goal in goals.values() if goal.status == status))
        },
        "goals_total": len(goals),
        "my_goals": len(mine),
        "events": [
            {
                "at": event.at.isoformat(),
                "kind": event.kind,
                "summary": event.summary,
                "goal_id": event.goal_id,
                "goal": goals[event.goal_id].title,
                "journey": goals[event.goal_id].journey_title,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "mine": event.goal_id in mine,
            }
            for event in events[:EVENTS_KEPT]
        ],
        "events_total": len(events),
    }


def create_weekly(now: datetime | None = None) -> list[Digest]:
    """The past week's digest for every member of the organisation in scope that has none yet; returns
    the digests created (none when they exist already). Commits."""
    start, end = period_for(now)
    org_id = tenancy.current().organisation_id
    members = db.session.scalars(
        sa.select(Membership.user_id).where(Membership.organisation_id == org_id).order_by(Membership.user_id)
    ).all()
    done = set(db.session.scalars(sa.select(Digest.user_id).where(Digest.period_end == end)).all())
    waiting = [user_id for user_id in members if user_id not in done]
    if not waiting:
        return []
    goals = {
        row.id: row
        for row in db.session.execute(
            sa.select(
                Goal.id, Goal.title, Goal.status, Goal.owner_id, Journey.title.label("journey_title")
            ).join(Journey, Journey.id == Goal.journey_id)
        ).all()
    }
    events = db.session.execute(
        sa.select(
            GoalEvent.at,
            GoalEvent.kind,
            GoalEvent.summary,
            GoalEvent.goal_id,
            GoalEvent.from_status,
            GoalEvent.to_status,
        )
        .where(GoalEvent.at >= start, GoalEvent.at < end)
        .order_by(GoalEvent.at.desc(), GoalEvent.id.desc())
    ).all()
    events = [event for event in events if event.goal_id in goals]
    created = []
    for user_id in waiting:
        digest = Digest(
            user_id=user_id,
            period_start=start,
            period_end=end,
            body=_body(start, end, goals, events, user_id),
        )
        try:
            with db.session.begin_nested():
                db.session.add(digest)
            created.append(digest)
        except IntegrityError:  # another run of the same job made it in the meantime
            continue
    db.session.commit()
    return created


def digests_of(user_id: int, limit: int = 52) -> list[Digest]:
    """The member's own digests in this organisation, newest first."""
    return list(
        db.session.scalars(
            sa.select(Digest).where(Digest.user_id == user_id).order_by(Digest.period_end.desc()).limit(limit)
        )
    )


def get_digest(user_id: int, digest_id: int) -> Digest:
    """One of the member's own digests (another member's looks like a missing one)."""
    digest = db.session.get(Digest, digest_id)
    if digest is None or digest.user_id != user_id:
        raise NotFound("There is no such digest.")
    return digest


def mark_emailed(digest_id: int, now: datetime | None = None) -> None:
    """Note that the digest went out by mail. Commits."""
    digest = db.session.get(Digest, digest_id)
    if digest is not None:
        digest.emailed_at = now or utcnow()
        db.session.commit()


def worth_mailing(digest: Digest) -> bool:
    """A week without any goal change is kept in the app but not mailed."""
    return bool((digest.body or {}).get("events_total"))


def mail_text(digest: Digest, organisation_name: str, link: str) -> tuple[str, str]:
    """(subject, plain-text body) of a digest's mail."""
    body = digest.body or {}
    start = datetime.fromisoformat(body["period_start"]).date()
    end = (datetime.fromisoformat(body["period_end"]) - timedelta(days=1)).date()
    counts = describe_counts(body.get("counts", {}))
    statuses = ", ".join(
        f"{count} {STATUS_LABELS[status].lower()}" for status, count in body.get("statuses", {}).items()
    )
    lines = [
        f"Goals of {organisation_name}, week of {start:%d %b} to {end:%d %b %Y}.",
        "",
        f"This week: {counts or 'no changes'}.",
        f"Where the {body.get('goals_total', 0)} goals stand now: {statuses or 'no goals yet'}.",
        "",
    ]
    for event in body.get("events", []):
        status = ""
        if event.get("to_status"):
            before = STATUS_LABELS.get(event.get("from_status") or "", "–")
            status = f" [{before} → {STATUS_LABELS.get(event['to_status'], event['to_status'])}]"
        mine = " (your goal)" if event.get("mine") else ""
        lines.append(
            f"- {event['at'][:10]} {event['goal']}{mine}: {' '.join(event['summary'].split())}{status}"
        )
    if body.get("events_total", 0) > len(body.get("events", [])):
        lines.append(f"… and {body['events_total'] - len(body['events'])} more.")
    lines += ["", f"Read it in Journeylens, with the dashboard one click away:\n{link}", ""]
    subject = f"Weekly goals digest: {counts or 'no changes'}"
    return subject, "\n".join(lines)


def recipient(digest: Digest) -> str | None:
    """The member's address, or None when they are no longer a member."""
    membership = db.session.scalar(
        sa.select(Membership).where(
            Membership.organisation_id == digest.organisation_id, Membership.user_id == digest.user_id
        )
    )
    if membership is None:
        return None
    return db.session.scalar(sa.select(User.email).where(User.id == digest.user_id))
