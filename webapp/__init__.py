"""Journeylens: journeys drawn, measured against event logs, governed by goals."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask


def create_app(config: Mapping[str, Any] | None = None, env: str | None = None) -> Flask:
    """The app factory: reads like a table of contents."""
    from webapp.config import INSTANCE_DIR, load_config

    app = Flask(__name__, instance_path=str(INSTANCE_DIR), instance_relative_config=False)
    app.config.from_object(load_config(env))
    if config:
        app.config.update(config)
    register_extensions(app)
    register_blueprints(app)
    register_proxy_fix(app)
    register_security(app)
    register_errors(app)
    register_templating(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions."""
    from webapp import models  # noqa: F401  (every mapper known before first use)
    from webapp.database import register_database_events
    from webapp.extensions import csrf, db, limiter, login_manager, migrate

    db.init_app(app)
    with app.app_context():
        register_database_events(db.engine, app)
    migrate.init_app(app, db, directory=str(_migrations_dir()))

    @app.before_request
    def _upload_limit() -> None:
        """Before CSRFProtect reads the form (it runs next): a log upload may exceed the forms' limit."""
        from flask import request

        from webapp.services.eventlogs import UPLOAD_ENDPOINTS

        if request.endpoint in UPLOAD_ENDPOINTS:
            request.max_content_length = app.config["MAX_UPLOAD_BYTES"] + 1024 * 1024

    csrf.init_app(app)
    login_manager.init_app(app)
    if app.config.get("REDIS_URL"):
        app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    else:
        app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)


def _migrations_dir():
    from webapp.config import PROJECT_ROOT

    return PROJECT_ROOT / "migrations"


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature."""
    from webapp.api import bp as api_bp
    from webapp.auth import bp as auth_bp
    from webapp.collab import share_bp
    from webapp.core import bp as core_bp
    from webapp.orgs import bp as orgs_bp

    app.register_blueprint(core_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(orgs_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(share_bp)


def register_proxy_fix(app: Flask) -> None:
    """Behind a proxy, take the client address and scheme from the headers it sets (and only then)."""
    count = app.config.get("TRUSTED_PROXY_COUNT", 0)
    if count:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def register_security(app: Flask) -> None:
    """Sessions that can be revoked and expire when idle; security headers on every answer."""
    from webapp import security

    security.init_app(app)


def register_errors(app: Flask) -> None:
    """Error pages (HTML) and error objects (JSON, under /api/)."""
    from webapp import errors

    errors.init_app(app)


def register_templating(app: Flask) -> None:
    """Template globals shared by every page."""
    from webapp import templating

    templating.init_app(app)


def register_cli(app: Flask) -> None:
    """The `journeylens` commands."""
    from webapp.cli import register_commands

    register_commands(app)
