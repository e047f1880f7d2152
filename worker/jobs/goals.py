"""Goal jobs (light queue): mail a goal notification. (The daily sweep is `worker.jobs.dashboard.daily_sweep`,
scheduled by `worker/scheduler.py`.)"""

from __future__ import annotations

from flask import current_app

from webapp import mail
from worker.jobs import tenant_job
from worker.jobs.notifications import deliverable

SUBJECTS = {"goal_status": "Goal status changed", "check_in_due": "Check-in due"}


@tenant_job
def send_goal_mail(notification_id: int, link: str) -> str:
    """Mail the member what happened to the goal (a status change or a due check-in) with its link."""
    found = deliverable(notification_id, "goal")
    if isinstance(found, str):
        return found
    notification, recipient, organisation = found
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
