"""Mail jobs (light queue)."""

from __future__ import annotations

from flask import current_app

from webapp import mail
from webapp.extensions import db
from webapp.models import Invitation, Organisation
from worker.jobs import tenant_job


@tenant_job
def send_invitation(invitation_id: int, link: str) -> str:
    """Mail an invitation link to the invited address."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None:
        return "invitation gone"
    organisation = db.session.get(Organisation, invitation.organisation_id)
    inviter = invitation.invited_by.label if invitation.invited_by else "An admin"
    body = (
        f"{inviter} invites you to join {organisation.name} on Journeylens as {invitation.role}.\n\n"
        f"Open this link within 7 days to accept (it works once):\n{link}\n"
    )
    mail.send(
        current_app.config["SMTP_URL"],
        current_app.config["MAIL_FROM"],
        invitation.email,
        f"Join {organisation.name} on Journeylens",
        body,
    )
    return f"sent to {invitation.email}"
