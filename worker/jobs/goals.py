"""Goal jobs (light queue): mail a goal notification. (The daily sweep is `worker.jobs.dashboard.daily_sweep`,
scheduled by `worker/scheduler.py`.)"""

from __future__ import annotations

from flask import current_app

from webapp import mail
from webapp.extensions import db
from webapp.models import Notification, Organisation, User
from webapp.services.accounts import membership_in
from worker.jobs import tenant_job

SUBJECTS = {"goal_status": "Goal status changed", "check_in_due": "Check-in due"}


@tenant_job
def send_goal_mail(notification_id: int, link: str) -> str:
    """Mail the member what happened to the goal (a status change or a due check-in) with its link."""
    notification = db.session.get(Notification, notification_id)
    if notification is None or notification.goal is None:
        return "notification gone"
    if notification.read_at is not None:
        return "read already"
    recipient = db.session.get(User, notification.user_id)
    if recipient is None or membership_in(notification.organisation_id, recipient.id) is None:
        return "no longer a member"
    organisation = db.session.get(Organisation, notification.organisation_id)
    goal = notification.goal
    # One line, whatever a title holds: it goes into the Subject header.
    title = " ".join(goal.title.split())[:120]
    body = f"{notification.summary or title}\n\nIn {organisation.name}. Open the goal here:\n{link}\n"
    mail.send(
        current_app.config["SMTP_URL"],
        current_app.config["MAIL_FROM"],
        recipient.email,
        f"{SUBJECTS.get(notification.kind, 'Goal')}: {title}",
        body,
    )
    return f"sent to {recipient.email}"
