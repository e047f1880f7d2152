"""Notification mail jobs (light queue): tell a member by mail that a comment mentions them."""

from __future__ import annotations

from flask import current_app

from webapp import mail
from webapp.extensions import db
from webapp.models import Notification, Organisation, User
from webapp.services.accounts import membership_in
from worker.jobs import tenant_job


def deliverable(notification_id: int, about: str) -> tuple[Notification, User, Organisation] | str:
    """The notification, its recipient and organisation when a mail is still due; else why not (the
    notification or what it is `about` is gone, it was read meanwhile, the recipient left)."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or getattr(notification, about) is None:
        return "notification gone"
    if notification.read_at is not None:
        return "read already"
    recipient = db.session.get(User, notification.user_id)
    if recipient is None or membership_in(notification.organisation_id, recipient.id) is None:
        return "no longer a member"
    return notification, recipient, db.session.get(Organisation, notification.organisation_id)


@tenant_job
def send_mention_mail(notification_id: int, link: str) -> str:
    """Mail the mentioned member an excerpt of the comment and the link to it."""
    found = deliverable(notification_id, "comment")
    if isinstance(found, str):
        return found
    notification, recipient, organisation = found
    # One line, whatever a display name holds: it goes into the Subject header.
    author = " ".join((notification.actor.label if notification.actor else "Someone").split())
    journey = notification.journey.title if notification.journey else "a journey"
    excerpt = notification.comment.body
    if len(excerpt) > 600:
        excerpt = excerpt[:600].rstrip() + " …"
    body = (
        f"{author} mentioned you in a comment on “{journey}” in {organisation.name}:\n\n"
        f"{excerpt}\n\nReply or read the thread here:\n{link}\n"
    )
    mail.send(
        current_app.config["SMTP_URL"],
        current_app.config["MAIL_FROM"],
        recipient.email,
        f"{author} mentioned you on Journeylens",
        body,
    )
    return f"sent to {recipient.email}"
