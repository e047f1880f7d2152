"""Alembic environment: migrations run as the schema owner (DATABASE_MIGRATION_URL); afterwards the
app role (DATABASE_APP_ROLE) is granted data access, never ownership, so row-level security binds it."""

import logging
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from flask import current_app

config = context.config
if config.config_file_name and not logging.getLogger().handlers:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = current_app.extensions["migrate"].db.metadata
migration_url = current_app.config["DATABASE_MIGRATION_URL"]
app_role = current_app.config.get("DATABASE_APP_ROLE")


def grant_app_role(connection: sa.Connection) -> None:
    """The app role may read and write rows, nothing more (it owns nothing and does not bypass RLS)."""
    if connection.dialect.name != "postgresql" or not app_role:
        return
    quoted = connection.dialect.identifier_preparer.quote_identifier(app_role)
    literal = app_role.replace("'", "''")
    connection.execute(
        sa.text(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{literal}') THEN "
            f"CREATE ROLE {quoted} NOLOGIN NOSUPERUSER NOBYPASSRLS; END IF; END $$"
        )
    )
    connection.execute(sa.text(f"GRANT USAGE ON SCHEMA public TO {quoted}"))
    connection.execute(
        sa.text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}")
    )
    connection.execute(sa.text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}"))
    connection.execute(sa.text(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {quoted}"))


def run_migrations_offline() -> None:
    context.configure(
        url=migration_url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = sa.create_engine(migration_url, poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            grant_app_role(connection)
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
