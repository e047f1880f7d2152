"""Dashboard jobs: the weekly digests and their mails, the goals' daily sweep, and the dashboard's
PDF/PNG export. worker/scheduler.py enqueues the first two on their calendar; a member's button the last.
"""

from __future__ import annotations

import io
import logging
import os
from datetime import datetime
from typing import Any

from flask import current_app

from webapp import mail, queue, tenancy
from webapp.extensions import db
from webapp.models import Organisation
from webapp.services import digests
from webapp.storage import get_storage
from worker.jobs import tenant_job
from worker.jobs.exports import (
    EXPORT_LIMIT_BYTES,
    FORMATS,
    ExportFailed,
    _first_line,
    _Progress,
    _stylesheets,
    render_html,
)

log = logging.getLogger(__name__)

STYLESHEETS = ("vendor/pico/pico.min.css", "css/app.css", "css/dashboard.css")
MAIL_JOB = "worker.jobs.dashboard.send_digest"


def _base_url() -> str:
    """Where links in mails point: PUBLIC_URL, else the local run's address."""
    return (
        current_app.config.get("PUBLIC_URL") or f"http://localhost:{os.environ.get('PORT', '5000')}"
    ).rstrip("/")


def _organisation() -> Organisation:
    return db.session.get(Organisation, tenancy.current().organisation_id)


# --- the weekly digest -------------------------------------------------------------------------------


@tenant_job
def weekly_digests(now: str | None = None) -> str:
    """Create the past week's digest of every member (idempotent); queue the mails when SMTP is set."""
    created = digests.create_weekly(datetime.fromisoformat(now) if now else None)
    mailed = 0
    if current_app.config.get("SMTP_URL"):
        organisation_id = tenancy.current().organisation_id
        for digest in created:
            if digests.worth_mailing(digest):
                queue.enqueue(
                    "default",
                    MAIL_JOB,
                    digest.id,
                    organisation_id=organisation_id,
                    description=f"mail weekly digest {digest.id}",
                    job_timeout=60,
                )
                mailed += 1
    return f"{len(created)} digests created, {mailed} mails queued"


@tenant_job
def send_digest(digest_id: int) -> str:
    """Mail one digest to its member, once."""
    from webapp.models.goals import Digest

    digest = db.session.get(Digest, digest_id)
    if digest is None:
        return "digest gone"
    if digest.emailed_at is not None:
        return "mailed already"
    address = digests.recipient(digest)
    if address is None:
        return "no longer a member"
    organisation = _organisation()
    with current_app.test_request_context("/", base_url=_base_url()):
        from flask import g, url_for

        g.org_slug = organisation.slug
        link = url_for("orgs.dashboard.digest", digest_id=digest.id, _external=True)
    subject, body = digests.mail_text(digest, organisation.name, link)
    mail.send(current_app.config["SMTP_URL"], current_app.config["MAIL_FROM"], address, subject, body)
    digests.mark_emailed(digest.id)
    return f"sent to {address}"


# --- the goals' daily sweep --------------------------------------------------------------------------


@tenant_job
def daily_sweep() -> str:
    """The goals' daily sweep over every organisation (it scopes each in turn): statuses recomputed as
    time passes, owners told of overdue check-ins."""
    from webapp.services import goals

    return f"daily sweep: {goals.daily_sweep()!r}"[:500]


# --- export ------------------------------------------------------------------------------------------


def print_html(filters: dict[str, Any] | None = None) -> str:
    """The dashboard as a viewer sees it, without controls, with the app's CSS inlined."""
    from flask import g, render_template
    from markupsafe import Markup

    from webapp.models import Role
    from webapp.models.types import utcnow
    from webapp.services import dashboard

    organisation = _organisation()
    view = dashboard.load(dashboard.Filters.parse(filters or {}))
    with current_app.test_request_context("/", base_url=_base_url()):
        g.org_slug = organisation.slug
        return render_template(
            "dashboard/print.html",
            dashboard=view,
            current_role=Role.VIEWER,
            organisation=organisation,
            exported_at=utcnow(),
            styles=Markup(_stylesheets(current_app.static_folder, STYLESHEETS)),  # noqa: S704 (our own files)
            **dashboard.template_context(),
        )


@tenant_job
def render_dashboard(fmt: str, requested_by: int | None = None, filters: dict[str, Any] | None = None) -> str:
    """Render the dashboard to PDF (A4 landscape) or PNG in storage; returns the storage key."""
    progress = _Progress(None, fmt, subject="dashboard", filters=filters or {})
    organisation_id = tenancy.current().organisation_id
    try:
        if fmt not in FORMATS:
            raise ExportFailed(f"Unknown export format {fmt!r}; choose PDF or PNG.")
        progress("drawing the dashboard", 5)
        data = render_html(print_html(filters), fmt, progress, paper="A4")
        progress("saving", 90)
        key = f"org-{organisation_id}/exports/dashboard-{progress.job_id}.{fmt}"
        stored = get_storage().save(key, io.BytesIO(data), EXPORT_LIMIT_BYTES)
        progress("done", 100, storage_key=key, size_bytes=stored.size_bytes)
        log.info("exported the dashboard as %s (%s bytes) for user %s", fmt, len(data), requested_by)
        return key
    except ExportFailed as error:
        progress("failed", 100, error=str(error))
        raise
    except Exception as error:
        log.exception("export of the dashboard as %s failed", fmt)
        progress(
            "failed",
            100,
            error=f"The export failed ({type(error).__name__}: {_first_line(error)}). Try again; if it "
            "keeps failing, an administrator will find the details in the worker's log.",
        )
        raise
