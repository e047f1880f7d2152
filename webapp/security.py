"""Sessions (revocable, idle-expiring, renewed at login) and the security headers."""

from __future__ import annotations

import secrets
import time

from flask import Flask, Response, current_app, request, session
from flask_login import login_user, logout_user

from webapp.extensions import db, login_manager
from webapp.models import User

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


@login_manager.user_loader
def _load_user(session_user_id: str) -> User | None:
    """The session's user, only while the session's version is the user's current one."""
    claimed = _parse_claim(session_user_id)
    if claimed is None:
        return None
    user = db.session.get(User, claimed[0])
    return user if session_holds(user, claimed[1]) else None


def _parse_claim(session_user_id: str) -> tuple[int, int] | None:
    user_id, _, version = session_user_id.partition(".")
    if not user_id.isdigit() or not version.isdigit():
        return None
    return int(user_id), int(version)


def claimed_user() -> tuple[int, int] | None:
    """(user id, session version) as this request's signed session names them, not yet checked
    against the user's current version (see `session_holds`)."""
    return _parse_claim(str(session.get("_user_id", "")))


def session_holds(user: User | None, version: int) -> bool:
    """Whether a session of this version still signs `user` in (logging out everywhere or changing the
    password moves the user's version on)."""
    return user is not None and user.session_version == version


def accept_user(user: User) -> None:
    """Make `user`, loaded and checked with `session_holds` by the caller, the request's current user,
    so flask-login does not load them again."""
    login_manager._update_request_context_with_user(user)


def start_session(user: User) -> None:
    """Log in with a fresh session: the old contents and identifier are thrown away (no fixation)."""
    session.clear()
    session.permanent = True
    login_user(user)
    session["sid"] = secrets.token_urlsafe(16)
    session["seen"] = int(time.time())


def end_session() -> None:
    """Log out this browser."""
    logout_user()
    session.clear()


def _expire_idle_sessions() -> None:
    if "_user_id" not in session:
        return
    now = int(time.time())
    idle_limit = current_app.config["SESSION_IDLE_TIMEOUT"].total_seconds()
    if now - int(session.get("seen", 0)) > idle_limit:
        session.clear()
        session["expired"] = True
        return
    if now - int(session.get("seen", 0)) > 60:  # rewrite the cookie at most once a minute
        session["seen"] = now


def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Wire the session checks and headers into the app."""
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to continue."
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # the per-user session version does the revoking
    app.before_request(_expire_idle_sessions)
    init_user_scope(app)
    app.after_request(_security_headers)


def _activate_user_scope() -> None:
    """Before any view: a signed-in user may see their own memberships; no organisation yet. Under
    /o/<slug>/ the organisation's own check does it, loading the user with the membership (one query)."""
    from flask_login import current_user

    from webapp import tenancy

    if "orgs" in request.blueprints:
        return
    tenancy.activate(None, current_user.id if current_user.is_authenticated else None)


def init_user_scope(app: Flask) -> None:
    """Registered after the idle check so an expired session scopes as anonymous."""
    app.before_request(_activate_user_scope)
