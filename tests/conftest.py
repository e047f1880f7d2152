"""Test fixtures: a real database (PostgreSQL when TEST_DATABASE_URL/DATABASE_URL names one, else SQLite)
migrated once per session and emptied per test, and a real Redis (REDIS_URL/TEST_REDIS_URL, else an
embedded redis-server)."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_INSTANCE = tempfile.mkdtemp(prefix="journeylens-test-")
os.environ["JOURNEYLENS_INSTANCE"] = _INSTANCE
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")

import pytest  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from tests import support  # noqa: E402

SHARED_EVENTLOGS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "eventlogs"


def _postgres_urls() -> tuple[str, str] | None:
    """(owner URL, app URL) for the test database, or None for SQLite."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        base = os.environ.get("DATABASE_URL", "")
        if not base.startswith("postgresql"):
            return None
        parts = urlsplit(base)
        url = urlunsplit(parts._replace(path=parts.path + "_test"))
    if not url.startswith("postgresql"):
        return None
    url = re.sub(r"^postgresql(\+\w+)?://", "postgresql+psycopg://", url)
    app_url = os.environ.get("TEST_DATABASE_APP_URL")
    if not app_url:
        parts = urlsplit(url)
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        app_url = urlunsplit(parts._replace(netloc=f"{support.APP_ROLE}@{host}"))
    return url, app_url


def _prepare_postgres(owner_url: str) -> None:
    parts = urlsplit(owner_url)
    database = parts.path.lstrip("/")
    assert database not in {"test", "root", "postgres"}, "never run the suite in a shared database"
    admin = sa.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": database}
        ).scalar()
        if not exists:
            connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
        role = connection.execute(
            sa.text("SELECT rolcanlogin FROM pg_roles WHERE rolname = :r"), {"r": support.APP_ROLE}
        ).scalar()
        if role is None:
            connection.execute(sa.text(f"CREATE ROLE {support.APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS"))
        elif not role:
            connection.execute(sa.text(f"ALTER ROLE {support.APP_ROLE} LOGIN"))
    admin.dispose()


@pytest.fixture(scope="session")
def database_urls() -> dict[str, str]:
    """Where the suite's data lives: {'app': ..., 'owner': ..., 'dialect': ...}."""
    postgres = _postgres_urls()
    if postgres:
        owner_url, app_url = postgres
        _prepare_postgres(owner_url)
        return {"app": app_url, "owner": owner_url, "dialect": "postgresql"}
    path = Path(_INSTANCE) / "test.db"
    url = f"sqlite:///{path}"
    return {"app": url, "owner": url, "dialect": "sqlite"}


@pytest.fixture(scope="session")
def redis_url():
    """A real Redis: the configured one (database 15) or an embedded redis-server."""
    url = os.environ.get("TEST_REDIS_URL")
    if not url and os.environ.get("REDIS_URL"):
        parts = urlsplit(os.environ["REDIS_URL"])
        url = urlunsplit(parts._replace(path="/15"))
    if url:
        yield url
        return
    from webapp import embedded_redis

    process, url = embedded_redis.start(Path(_INSTANCE) / "redis")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture(scope="session")
def app_config(database_urls, redis_url) -> dict:
    """The configuration every test app (and every server or worker a test starts) uses."""
    return {
        "SQLALCHEMY_DATABASE_URI": database_urls["app"],
        "DATABASE_MIGRATION_URL": database_urls["owner"],
        "DATABASE_APP_ROLE": support.APP_ROLE,
        "REDIS_URL": redis_url,
        "SECRET_KEY": os.environ["SECRET_KEY"],
        "WTF_CSRF_ENABLED": True,
    }


@pytest.fixture(scope="session")
def migrated(app_config):
    """The schema at head, once per session."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(app_config, env="test")
    with app.app_context():
        upgrade()
    return True


@pytest.fixture
def app(app_config, migrated, redis_url):
    """A fresh app over an empty database and an empty Redis."""
    from redis import Redis

    from webapp import create_app

    support.empty_database(app_config)
    Redis.from_url(redis_url).flushdb()
    application = create_app(app_config, env="test")
    yield application
    with application.app_context():
        from webapp.extensions import db

        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def make_client(app):
    """Another browser (its own cookie jar)."""
    return app.test_client


@pytest.fixture
def tenant_a(app):
    """Organisation A with an owner, an admin, an editor and a viewer."""
    return support.make_tenant(app, "Alpha Services", "a")


@pytest.fixture
def tenant_b(app):
    """Organisation B, whose members must never see anything of A."""
    return support.make_tenant(app, "Beta Support", "b")


@pytest.fixture
def shared_eventlogs() -> Path:
    if not SHARED_EVENTLOGS.is_dir():
        pytest.skip("../shared/data/eventlogs is missing (shared data not beside the checkout)")
    return SHARED_EVENTLOGS


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` prove PostgreSQL-only walls (RLS); on SQLite they are deselected, loudly.

    CI always runs against PostgreSQL, so there every one of them runs.
    """
    if _postgres_urls() is not None:
        return
    selected, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("postgres") else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
        print(f"\n{len(deselected)} PostgreSQL-only tests deselected: no TEST_DATABASE_URL / DATABASE_URL")
