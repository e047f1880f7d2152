"""Views of collaboration (thin: parse, call one service, render a page or its fragment).

Comments and share links are fragments the journey page loads below the map, so the map's polling
never redraws a half-written comment; each also has a page of its own for links and for browsers
without JavaScript. Comments are live like the map: the thread list polls `comments?since=<marker>`
and gets 204 while nothing changed (one indexed query), the new threads otherwise; the top bar's
inbox count polls `inbox/unread?since=<count>` the same way. The share link's page is public and says
so in its headers: not indexed, no referrer (the secret is in the address), not cached.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import Response, abort, current_app, g, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError

from webapp.collab import bp, share_bp
from webapp.extensions import db
from webapp.models import Comment, Role
from webapp.models.collaboration import MAX_COMMENT_CHARS, SHARE_LINK_DAYS_DEFAULT, SHARE_LINK_DAYS_MAX
from webapp.models.types import utcnow
from webapp.services import Forbidden, NotFound, ServiceError
from webapp.services import comments as comment_service
from webapp.services import journeys as journey_service
from webapp.services import notifications as notification_service
from webapp.services import sharing as sharing_service
from webapp.views import actor, render, require_role

log = logging.getLogger(__name__)


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _base_url() -> str:
    """Where people reach this server: PUBLIC_URL when set (behind proxies), else this request's host."""
    return (current_app.config.get("PUBLIC_URL") or request.host_url).rstrip("/")


# --- comments --------------------------------------------------------------------------------------


def _comments(
    journey_id: int,
    *,
    status: int = 200,
    error: str | None = None,
    draft: dict | None = None,
    fragment: str | None = None,
):
    """The journey's threads and the form for a new one: the page, or its fragment for htmx (or only
    the threads, for a live poll)."""
    try:
        # The marker is read first: a comment added meanwhile is then shown, or polled again, never missed.
        since = comment_service.marker(journey_id)
        journey = journey_service.get_journey(journey_id)
        # The new-thread form lists the steps; a live poll redraws only the threads.
        board = None if fragment else journey_service.board(journey_id)
        threads = comment_service.threads(journey_id)
    except NotFound:
        abort(404)
    response = render(
        "collab/comments.html",
        fragment or "collab/_comments.html",
        journey=journey,
        board=board,
        threads=threads,
        since=since,
        error=error,
        draft=draft or {},
        max_chars=MAX_COMMENT_CHARS,
    )
    response.status_code = status
    return response


def _written(journey_id: int, comment_id: int):
    """After a write: the new threads for htmx; otherwise back to the comment on the comments page."""
    if _is_htmx():
        return _comments(journey_id)
    return redirect(url_for(".comments", journey_id=journey_id, _anchor=f"comment-{comment_id}"))


def _refused(journey_id: int, error: ServiceError, draft: dict | None = None):
    """404 for what is not there, 403 for what the role does not allow; otherwise say what to fix
    and keep what was typed."""
    if isinstance(error, NotFound):
        abort(404)
    if isinstance(error, Forbidden):
        abort(403, description=error.message)
    return _comments(journey_id, status=422, error=error.message, draft=draft)


def _comments_link(journey_id: int) -> str:
    return _base_url() + url_for(".comments", journey_id=journey_id)


@bp.get("/journeys/<int:journey_id>/comments")
def comments(journey_id: int):
    """The journey's comment threads, open ones first; with `since`, a live poll: 204 while the marker
    is the same, the thread list otherwise."""
    since = request.args.get("since")
    if since is None or not _is_htmx():
        return _comments(journey_id)
    try:
        if comment_service.marker(journey_id) == since:
            return Response(status=204)
    except NotFound:
        abort(404)
    return _comments(journey_id, fragment="collab/_threads.html")


@bp.post("/journeys/<int:journey_id>/comments")
def add_comment(journey_id: int):
    """Start a thread on the journey or one of its steps (every member may, viewers too)."""
    body = request.form.get("body", "")
    step_id = request.form.get("step_id", type=int)
    try:
        comment = comment_service.start_thread(
            journey_id, body, actor(), step_id=step_id, link=_comments_link(journey_id)
        )
    except ServiceError as error:
        return _refused(journey_id, error, {"body": body, "step_id": step_id})
    return _written(journey_id, comment.id)


@bp.post("/journeys/<int:journey_id>/comments/<int:comment_id>/replies")
def reply(journey_id: int, comment_id: int):
    """Answer in a thread."""
    body = request.form.get("body", "")
    try:
        comment = comment_service.reply(
            journey_id, comment_id, body, actor(), link=_comments_link(journey_id)
        )
    except ServiceError as error:
        return _refused(journey_id, error, {"body": body, "parent": comment_id})
    return _written(journey_id, comment.id)


@bp.post("/journeys/<int:journey_id>/comments/<int:comment_id>/resolve")
def resolve(journey_id: int, comment_id: int):
    """Mark a thread resolved (its author, or an editor and above)."""
    try:
        comment_service.resolve_thread(journey_id, comment_id, actor(), g.membership.role_enum)
    except ServiceError as error:
        return _refused(journey_id, error)
    return _written(journey_id, comment_id)


@bp.post("/journeys/<int:journey_id>/comments/<int:comment_id>/reopen")
def reopen(journey_id: int, comment_id: int):
    """Open a resolved thread again (its author, or an editor and above)."""
    try:
        comment_service.reopen_thread(journey_id, comment_id, actor(), g.membership.role_enum)
    except ServiceError as error:
        return _refused(journey_id, error)
    return _written(journey_id, comment_id)


@bp.app_template_filter("comment_html")
def comment_html(comment: Comment) -> Markup:
    """A comment's text, escaped, with the members it mentions marked and its line breaks kept."""
    text = str(escape(comment.body))
    names = sorted({str(escape(m["text"])) for m in comment.mentions or []}, key=len, reverse=True)
    if names:
        pattern = re.compile("|".join(re.escape(name) for name in names))
        text = pattern.sub(lambda match: f'<mark class="mention">{match.group(0)}</mark>', text)
    # Every character of `text` came out of escape(); the only markup added is <mark> and <br>.
    return Markup(text.replace("\n", "<br>\n"))  # noqa: S704


# --- share links -----------------------------------------------------------------------------------


def _share(journey_id: int, *, status: int = 200, error: str | None = None, issued=None, issued_url=None):
    """The journey's share links and the form for a new one: the page, or its fragment for htmx."""
    try:
        journey = journey_service.get_journey(journey_id)
        links = sharing_service.links(journey_id)
    except NotFound:
        abort(404)
    response = render(
        "collab/share.html",
        "collab/_share.html",
        journey=journey,
        links=links,
        now=utcnow(),
        error=error,
        issued=issued,
        issued_url=issued_url,
        default_days=SHARE_LINK_DAYS_DEFAULT,
        max_days=SHARE_LINK_DAYS_MAX,
    )
    response.status_code = status
    if issued_url:
        response.headers["Cache-Control"] = "no-store"  # the secret is in this answer, once
    return response


@bp.get("/journeys/<int:journey_id>/share")
def share_links(journey_id: int):
    """The journey's read-only share links: who they are for, until when, last opened."""
    return _share(journey_id)


@bp.post("/journeys/<int:journey_id>/share")
@require_role(Role.EDITOR)
def create_share_link(journey_id: int):
    """A new read-only link, shown once."""
    form = request.form
    try:
        issued = sharing_service.create_link(
            journey_id, actor(), days=form.get("days") or SHARE_LINK_DAYS_DEFAULT, label=form.get("label", "")
        )
    except NotFound:
        abort(404)
    except ServiceError as error:
        return _share(journey_id, status=422, error=error.message)
    url = _base_url() + url_for("share.view", org_slug=g.organisation.slug, token=issued.secret)
    return _share(journey_id, issued=issued.link, issued_url=url)


@bp.post("/journeys/<int:journey_id>/share/<int:link_id>/revoke")
@require_role(Role.EDITOR)
def revoke_share_link(journey_id: int, link_id: int):
    """Make a link useless at once."""
    try:
        sharing_service.revoke_link(journey_id, link_id, actor())
    except NotFound:
        abort(404)
    if _is_htmx():
        return _share(journey_id)
    return redirect(url_for(".share_links", journey_id=journey_id))


@share_bp.get("/share/<org_slug>/<token>")
def view(org_slug: str, token: str):
    """A journey map, read-only, for whoever holds the link (no account needed)."""
    viewer_id = current_user.id if current_user.is_authenticated else None
    try:
        shared = sharing_service.open_link(org_slug, token, viewer_id)
    except NotFound as error:
        return render_template("collab/share_unusable.html", message=error.message), 404
    return render_template(
        "collab/shared.html",
        board=shared.board,
        link=shared.link,
        organisation=shared.organisation,
        shared_view=True,
    )


@share_bp.after_request
def _keep_shared_pages_private(response):
    """The address holds the secret: no search engine, no Referer to other sites, no shared cache."""
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- inbox -----------------------------------------------------------------------------------------


def _inbox(*, unread_only: bool | None = None):
    if unread_only is None:
        unread_only = request.values.get("unread") == "1"
    user_id = actor().user_id
    return render(
        "collab/inbox.html",
        "collab/_inbox.html",
        items=notification_service.inbox(user_id, unread_only=unread_only),
        unread_only=unread_only,
        inbox_unread=notification_service.unread_count(user_id),
        oob=_is_htmx(),
    )


@bp.get("/inbox")
def inbox():
    """The member's notifications in this organisation: mentions, replies, resolved threads."""
    return _inbox()


@bp.post("/inbox/<int:notification_id>/read")
def read_notification(notification_id: int):
    """Mark one notification read; with `open`, go to the comment it is about."""
    try:
        notification = notification_service.mark_read(notification_id, actor())
    except NotFound:
        abort(404)
    if request.form.get("open") and notification.journey_id is not None:
        anchor = f"comment-{notification.comment_id}" if notification.comment_id else None
        return redirect(url_for(".comments", journey_id=notification.journey_id, _anchor=anchor))
    if _is_htmx():
        return _inbox()
    return redirect(url_for(".inbox"))


@bp.get("/inbox/unread")
def inbox_unread():
    """The top bar's inbox link, polled: 204 while the unread count is still `since`."""
    count = notification_service.unread_count(actor().user_id)
    if request.args.get("since", type=int) == count:
        return Response(status=204)
    on_inbox = urlsplit(request.headers.get("HX-Current-URL", "")).path == url_for(".inbox")
    return render_template("collab/_inbox_link.html", inbox_unread=count, on_inbox=on_inbox)


@bp.post("/inbox/read-all")
def read_all():
    """Mark every notification in this organisation read."""
    notification_service.mark_all_read(actor())
    if _is_htmx():
        return _inbox()
    return redirect(url_for(".inbox"))


@bp.app_context_processor
def _top_bar_inbox() -> dict:
    """The unread count beside the inbox link (None: no top bar, or no organisation in view)."""
    return {"inbox_unread": _unread_for_top_bar()}


def _unread_for_top_bar() -> int | None:
    if g.get("organisation") is None or g.get("membership") is None or not current_user.is_authenticated:
        return None
    if _is_htmx() and not request.headers.get("HX-History-Restore-Request"):
        return None  # a fragment has no top bar, and the map's poll every 1.5 s should not count
    if "_inbox_unread" not in g:
        try:
            g._inbox_unread = notification_service.unread_count(current_user.id)
        except SQLAlchemyError:
            # An error page must still render when the failed request left the session unusable; the
            # rollback makes the session usable again for the rest of this request.
            log.warning("could not count unread notifications", exc_info=True)
            db.session.rollback()
            g._inbox_unread = None
    return g._inbox_unread
