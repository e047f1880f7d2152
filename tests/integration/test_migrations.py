"""Alembic is the only way the schema changes: up, down to base, up again; models and migrations agree;
one head."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa


@pytest.fixture
def scratch_database(database_urls):
    """An empty database of its own, so the suite's database is not disturbed."""
    if database_urls["dialect"] == "postgresql":
        parts = urlsplit(database_urls["owner"])
        name = parts.path.lstrip("/") + "_migrations"
        admin = sa.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield urlunsplit(parts._replace(path="/" + name))
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    else:
        folder = tempfile.mkdtemp(prefix="journeylens-migrations-")
        yield f"sqlite:///{Path(folder) / 'scratch.db'}"


def _app(url: str, app_config: dict):
    from webapp import create_app

    return create_app(
        {**app_config, "SQLALCHEMY_DATABASE_URI": url, "DATABASE_MIGRATION_URL": url}, env="test"
    )


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade(scratch_database, app_config):
    from flask_migrate import downgrade, upgrade

    from webapp.extensions import db

    app = _app(scratch_database, app_config)
    with app.app_context():
        upgrade()
        assert _tables(scratch_database) == set(db.metadata.tables)
        downgrade(revision="base")
        assert _tables(scratch_database) == set()
        upgrade()
        assert _tables(scratch_database) == set(db.metadata.tables)


def test_models_and_migrations_agree(scratch_database, app_config):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from flask_migrate import upgrade

    from webapp.extensions import db

    app = _app(scratch_database, app_config)
    with app.app_context():
        upgrade()
    engine = sa.create_engine(scratch_database, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    engine.dispose()
    assert differences == []


def test_migrations_have_a_single_head(app):
    from alembic.script import ScriptDirectory
    from flask import current_app

    with app.app_context():
        config = current_app.extensions["migrate"].migrate.get_config()
        heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1
