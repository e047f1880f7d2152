"""Error answers: JSON objects under /api/, friendly pages elsewhere."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
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
}


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


def init_app(app: Flask) -> None:
    """Register the handlers."""

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        message = _message(error)
        if _wants_json():
            return api_error(error.code or 500, message)
        _ensure_user_scope()
        return render_template("errors/error.html", error=error, message=message), error.code

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        app.logger.exception("unhandled error")
        if app.config.get("TESTING") and app.config.get("PROPAGATE_UNEXPECTED", True):
            raise error
        if _wants_json():
            return api_error(500, "Something went wrong on our side; it has been logged.")
        return render_template(
            "errors/error.html", error=None, message="Something went wrong on our side."
        ), 500
