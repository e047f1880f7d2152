"""Error answers: JSON objects under /api/, friendly pages elsewhere."""

from __future__ import annotations

import contextlib

from flask import Flask, current_app, jsonify, render_template, request
from redis.exceptions import RedisError
from sqlalchemy.exc import InterfaceError, OperationalError, PendingRollbackError
from werkzeug.exceptions import HTTPException

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "unprocessable",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}
# A connection to PostgreSQL dropped or refused (also a deadlock or a cancelled statement): worth a retry.
# PendingRollbackError: such a failure was caught and the request went on with the broken transaction.
DATABASE_DOWN = (OperationalError, InterfaceError, PendingRollbackError)
DATABASE_MESSAGE = "The database is not answering for a moment. Wait a few seconds and try again."
REDIS_MESSAGE = (
    "Background work is paused for a moment (the queue is not answering). What you saved is kept; "
    "wait a few seconds and try again."
)
RETRY_AFTER_S = 5


def api_error(status: int, message: str, code: str | None = None):
    """The API's error object: {"error": {"code", "message"}}."""
    response = jsonify({"error": {"code": code or CODES.get(status, "error"), "message": message}})
    response.status_code = status
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def _message(error: HTTPException) -> str:
    if error.code == 429:
        return "Too many attempts. Wait a minute and try again."
    if error.code == 413:
        from webapp.services.eventlogs import UPLOAD_ENDPOINTS, too_large_message

        if request.endpoint in UPLOAD_ENDPOINTS:
            return too_large_message(current_app.config["MAX_UPLOAD_BYTES"])
        return "The form is too large to be sent. Shorten the text or the file in it, and try again."
    if error.code == 400 and "CSRF" in (error.description or ""):
        return "The form expired or was sent from elsewhere. Reload the page and try again."
    return error.description or error.name


def _ensure_user_scope() -> None:
    """An error raised before the user's scope is set (CSRFProtect's check and the size limit run
    first) still renders the page, whose header lists the user's organisations."""
    from flask_login import current_user

    from webapp import tenancy

    if tenancy.current() is None:
        tenancy.activate(None, current_user.id if current_user.is_authenticated else None)


def unavailable(message: str):
    """503 with Retry-After: a JSON error under /api/, else a page that needs neither the database nor
    Redis (rendered without the context processors, which read the user's organisations)."""
    from webapp.extensions import db

    with contextlib.suppress(Exception):
        db.session.rollback()  # a dropped connection is discarded; the next request takes a fresh one
    if _wants_json():
        response = api_error(503, message)
    else:
        html = current_app.jinja_env.get_template("errors/unavailable.html").render(message=message)
        response = current_app.response_class(html, status=503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        message = _message(error)
        if _wants_json():
            return api_error(error.code or 500, message)
        try:
            _ensure_user_scope()
            return render_template("errors/error.html", error=error, message=message), error.code
        except DATABASE_DOWN:  # the page's header reads the user's organisations
            return unavailable(DATABASE_MESSAGE)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_down(error: Exception):
        app.logger.warning("database unavailable: %s", str(error).splitlines()[0])
        return unavailable(DATABASE_MESSAGE)

    @app.errorhandler(PendingRollbackError)
    def _database_failure_swallowed(error: PendingRollbackError):
        # An earlier database error of this request was caught without a rollback: that code is to be
        # fixed (hence the traceback), but the user may simply try again.
        app.logger.error("a database error was swallowed earlier in this request", exc_info=error)
        return unavailable(DATABASE_MESSAGE)

    @app.errorhandler(RedisError)
    def _redis_down(error: RedisError):
        app.logger.warning("redis unavailable: %s", error)
        return unavailable(REDIS_MESSAGE)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        if app.config.get("TESTING") and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        if _wants_json():
            return api_error(500, "Something went wrong on our side; it has been logged.")
        try:
            return render_template(
                "errors/error.html", error=None, message="Something went wrong on our side."
            ), 500
        except DATABASE_DOWN:
            return unavailable(DATABASE_MESSAGE)
