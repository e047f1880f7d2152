"""Comment threads on a journey and its steps: start, reply, @mention members, resolve and reopen.

Every member may comment, viewers included: the issue says viewers read everything and comment. A
thread is resolved or reopened by its author or by an editor and above. Mentions name members by
`@email` or `@display name`; each mentioned member, and everyone earlier in a thread that gets a reply,
is notified in the same transaction. With SMTP_URL set, mentioned members are also mailed, through the
worker, after the comment is committed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy.orm import selectinload

from webapp import queue, tenancy
from webapp.extensions import db
from webapp.models import Comment, Journey, Membership, Notification, Role, Step, User
from webapp.models.collaboration import MAX_COMMENT_CHARS
from webapp.models.types import utcnow
from webapp.services import Actor, Forbidden, NotFound, ServiceError, notifications
from webapp.services.journeys import get_journey, use_case

log = logging.getLogger(__name__)

# A mention starts at "@" that does not continue a word, so "ann@example.org" in prose is not one.
_MENTION_START = re.compile(r"(?<![\w@.])@")


@dataclass(frozen=True)
class Thread:
    """A thread's first comment, its replies in order, and the step it is about (None: the journey,
    or a step that no longer exists, whose name the first comment kept)."""

    root: Comment
    replies: list[Comment]
    step: Step | None

    @property
    def resolved(self) -> bool:
        return self.root.resolved_at is not None

    @property
    def on_step(self) -> bool:
        return self.root.step_id is not None

    @property
    def step_label(self) -> str:
        return self.step.name if self.step is not None else self.root.step_name


# --- reading ----------------------------------------------------------------------------------------


def threads(journey_id: int) -> list[Thread]:
    """The journey's threads, oldest first, each with its replies (three queries whatever the count)."""
    journey = get_journey(journey_id)
    comments = list(
        db.session.scalars(
            sa.select(Comment)
            .where(Comment.journey_id == journey.id)
            .options(selectinload(Comment.author), selectinload(Comment.resolved_by))
            .order_by(Comment.id)
        )
    )
    step_ids = {c.step_id for c in comments if c.step_id is not None}
    steps = (
        {s.id: s for s in db.session.scalars(sa.select(Step).where(Step.id.in_(step_ids)))}
        if step_ids
        else {}
    )
    replies: dict[int, list[Comment]] = {}
    for comment in comments:
        if comment.parent_id is not None:
            replies.setdefault(comment.parent_id, []).append(comment)
    return [
        Thread(c, replies.get(c.id, []), steps.get(c.step_id) if c.step_id is not None else None)
        for c in comments
        if c.parent_id is None
    ]


def marker(journey_id: int) -> str:
    """A fingerprint of the journey's discussion, in one indexed query: it changes with every new thread
    or reply (the newest id), resolve (the newest resolution time) and reopen (the resolved count),
    and with every rename, deletion or restoration of a step a thread is about (the count, ids and
    versions of those steps; every edit bumps a step's version). Other edits of the map leave it: a
    live comment panel redraws only when what it shows moved on. NotFound for a journey not in this
    organisation."""
    row = db.session.execute(_DISCUSSION_MARKER, {"journey_id": journey_id}).first()
    if row is None:
        raise NotFound("No such journey.")
    _, count, newest, resolved, last_resolved, steps, step_ids, step_versions = row
    resolved_at = f"{last_resolved.timestamp():.6f}" if last_resolved else "0"
    return f"{count}-{newest or 0}-{resolved}-{resolved_at}-{steps}.{step_ids}.{step_versions}"


def _discussion_marker() -> sa.Select:
    discussed = sa.select(Comment.step_id).where(
        Comment.journey_id == Journey.id, Comment.step_id.is_not(None)
    )
    of_steps = [
        sa.select(aggregate).where(Step.id.in_(discussed)).scalar_subquery()
        for aggregate in (
            sa.func.count(Step.id),
            sa.func.coalesce(sa.func.sum(Step.id), 0),
            sa.func.coalesce(sa.func.sum(Step.version), 0),
        )
    ]
    return (
        sa.select(
            Journey.id,
            sa.func.count(Comment.id),
            sa.func.max(Comment.id),
            sa.func.count(Comment.resolved_at),
            sa.func.max(Comment.resolved_at),
            *of_steps,
        )
        .outerjoin(Comment, Comment.journey_id == Journey.id)
        .where(Journey.id == sa.bindparam("journey_id"))
        .group_by(Journey.id)
    )


# Every comment panel polls it (see tenancy.prebuilt).
_DISCUSSION_MARKER = tenancy.prebuilt(_discussion_marker())


def get_comment(journey_id: int, comment_id: int) -> Comment:
    """A comment of this journey, or NotFound (the same for another journey's or organisation's)."""
    journey = get_journey(journey_id)
    comment = db.session.scalar(
        sa.select(Comment).where(Comment.id == comment_id, Comment.journey_id == journey.id)
    )
    if comment is None:
        raise NotFound("No such comment on this journey.")
    return comment


def members() -> list[User]:
    """The people a comment can mention: the current organisation's members."""
    organisation_id = tenancy.current().organisation_id
    return list(
        db.session.scalars(
            sa.select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.organisation_id == organisation_id)
            .order_by(User.email)
        )
    )


def find_mentions(body: str, people: list[User]) -> list[dict[str, Any]]:
    """The members `body` names as `@email` or `@display name` (case-insensitive, longest name first),
    each once: [{"user_id": ..., "text": "@Ann Smith"}, ...] in order of first appearance."""
    names: list[tuple[str, User]] = []
    for person in people:
        names.append((person.email.lower(), person))
        if person.display_name.strip():
            names.append((person.display_name.strip().lower(), person))
    names.sort(key=lambda pair: len(pair[0]), reverse=True)
    lowered = body.lower()
    found: dict[int, dict[str, Any]] = {}
    for match in _MENTION_START.finditer(body):
        start = match.end()
        for name, person in names:
            end = start + len(name)
            if lowered.startswith(name, start) and not _continues_word(body, end):
                found.setdefault(person.id, {"user_id": person.id, "text": body[match.start() : end]})
                break
    return list(found.values())


def _continues_word(body: str, end: int) -> bool:
    """True when the text after a name goes on with the same word (`@ann` inside `@anne`)."""
    if end >= len(body):
        return False
    following = body[end]
    if following.isalnum() or following in "_@":  # "@ann@a.example" does not mention a member "Ann"
        return True
    # "@ann@a.example." at the end of a sentence is a mention; "@ann@a.example.org" names another address.
    return following in ".-" and end + 1 < len(body) and body[end + 1].isalnum()


# --- writing ----------------------------------------------------------------------------------------


def start_thread(
    journey_id: int, body: str, actor: Actor, *, step_id: int | None = None, link: str = ""
) -> Comment:
    """A new thread on the journey, or with `step_id` on one of its steps; mentioned members are told.

    `link` is the address of the journey's comments, for mails (sent only when SMTP_URL is set).
    """
    comment, notes = _start_thread(journey_id, body, actor, step_id)
    _mail_mentions(notes, link)
    return comment


def reply(journey_id: int, comment_id: int, body: str, actor: Actor, *, link: str = "") -> Comment:
    """A reply in the thread of `comment_id` (a reply to a reply joins the same thread)."""
    comment, notes = _reply(journey_id, comment_id, body, actor)
    _mail_mentions(notes, link)
    return comment


@use_case
def _start_thread(
    journey_id: int, body: str, actor: Actor, step_id: int | None
) -> tuple[Comment, list[Notification]]:
    journey = get_journey(journey_id)
    step = _step_of(journey, step_id) if step_id is not None else None
    text = _clean(body)
    comment = Comment(
        journey_id=journey.id,
        step_id=step.id if step else None,
        step_name=step.name if step else "",
        author_id=actor.user_id,
        body=text,
    )
    return comment, _save_with_mentions(comment, actor, notify_thread=None)


@use_case
def _reply(journey_id: int, comment_id: int, body: str, actor: Actor) -> tuple[Comment, list[Notification]]:
    parent = get_comment(journey_id, comment_id)
    root = parent if parent.parent_id is None else get_comment(journey_id, parent.parent_id)
    text = _clean(body)
    comment = Comment(
        journey_id=root.journey_id,
        step_id=root.step_id,
        step_name=root.step_name,
        parent_id=root.id,
        author_id=actor.user_id,
        body=text,
    )
    return comment, _save_with_mentions(comment, actor, notify_thread=root)


@use_case
def resolve_thread(journey_id: int, comment_id: int, actor: Actor, actor_role: Role) -> Comment:
    """Mark a thread resolved (its author, or an editor and above); its author is told."""
    root = _thread_root(journey_id, comment_id, actor, actor_role)
    if root.resolved_at is None:
        root.resolved_at = utcnow()
        root.resolved_by_id = actor.user_id
        if root.author_id is not None:
            notifications.notify([root.author_id], "resolved", actor, root)
    return root


@use_case
def reopen_thread(journey_id: int, comment_id: int, actor: Actor, actor_role: Role) -> Comment:
    """Open a resolved thread again (its author, or an editor and above)."""
    root = _thread_root(journey_id, comment_id, actor, actor_role)
    root.resolved_at = None
    root.resolved_by_id = None
    return root


# --- helpers ----------------------------------------------------------------------------------------


def _clean(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise ServiceError("Write something first: the comment is empty.", "body")
    if len(text) > MAX_COMMENT_CHARS:
        raise ServiceError(
            f"Keep a comment under {MAX_COMMENT_CHARS:,} characters (this one has {len(text):,}).", "body"
        )
    return text


def _step_of(journey: Journey, step_id: Any) -> Step:
    if isinstance(step_id, bool) or not isinstance(step_id, int):
        raise ServiceError("Choose the step by its id.", "step_id")
    step = db.session.scalar(sa.select(Step).where(Step.id == step_id, Step.journey_id == journey.id))
    if step is None:
        raise NotFound("No such step in this journey.", "step_id")
    return step


def _thread_root(journey_id: int, comment_id: int, actor: Actor, actor_role: Role) -> Comment:
    comment = get_comment(journey_id, comment_id)
    root = comment if comment.parent_id is None else get_comment(journey_id, comment.parent_id)
    if root.author_id != actor.user_id and not Role(actor_role).at_least(Role.EDITOR):
        raise Forbidden("Only the thread's author or an editor can resolve or reopen it.")
    return root


def _save_with_mentions(
    comment: Comment, actor: Actor, *, notify_thread: Comment | None
) -> list[Notification]:
    """Save the comment, then notify whom it mentions and (for a reply) who took part in the thread."""
    people = members()
    comment.mentions = find_mentions(comment.body, people)
    db.session.add(comment)
    db.session.flush()
    mentioned = [m["user_id"] for m in comment.mentions]
    added = notifications.notify(mentioned, "mention", actor, comment)
    if notify_thread is not None:
        taking_part = db.session.scalars(
            sa.select(Comment.author_id)
            .where(
                sa.or_(Comment.id == notify_thread.id, Comment.parent_id == notify_thread.id),
                Comment.id != comment.id,
                Comment.author_id.is_not(None),
            )
            .order_by(Comment.id)
        )
        # Told once (a mention says more than a reply), and only while still a member.
        current = {person.id for person in people}
        others = [user_id for user_id in taking_part if user_id not in mentioned and user_id in current]
        added += notifications.notify(others, "reply", actor, comment)
    return added


def _mail_mentions(added: list[Notification], link: str) -> None:
    """Queue a mail per mention when SMTP is configured; the notification is there either way."""
    if not current_app.config.get("SMTP_URL") or not link:
        return
    for notification in added:
        if notification.kind != "mention":
            continue
        try:
            queue.enqueue(
                "default",
                "worker.jobs.notifications.send_mention_mail",
                notification.id,
                f"{link}#comment-{notification.comment_id}",
                organisation_id=notification.organisation_id,
                description=f"mention mail for notification {notification.id}",
            )
        except RedisError:
            # The comment and the in-app notification are committed; a lost mail must not undo them.
            log.warning("could not queue the mention mail of notification %s", notification.id, exc_info=True)
