"""Engine-level behaviour: SQLite foreign keys, live pooled connections on PostgreSQL, and the PostgreSQL
role the app acts as."""

from __future__ import annotations

import logging
import select
import time

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event

log = logging.getLogger(__name__)


def register_database_events(engine: sa.Engine, app: Flask) -> None:
    """Per-connection setup, once per engine; and a session teardown that survives a dropped connection."""
    app.teardown_appcontext(_remove_session)  # runs before Flask-SQLAlchemy's own (registered earlier)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it
            cursor.execute("PRAGMA journal_mode=WAL")  # web and worker write concurrently
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    if engine.dialect.name == "postgresql":
        _check_connections_on_checkout(engine)


IDLE_PING_AFTER_S = 30.0


def _check_connections_on_checkout(engine: sa.Engine) -> None:
    """Hand out only live connections, without a round trip per request (pool_pre_ping costs one: a
    sixth of a poll's). A server that ends a connection (restart, pg_terminate_backend) sends its
    goodbye and closes the socket, so a pooled connection whose socket has something to read is dead:
    an idle one is otherwise silent (we LISTEN to nothing). One that sat idle longer than
    IDLE_PING_AFTER_S, where a network could have dropped it silently, is pinged as pre-ping would.
    Raising DisconnectionError makes the pool discard it and connect afresh."""

    @event.listens_for(engine, "checkin")
    def _note_checkin(_dbapi_connection, record) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check_liveness(dbapi_connection, record, _proxy) -> None:
        if dbapi_connection.closed or dbapi_connection.broken:
            raise sa.exc.DisconnectionError("the connection is closed")
        try:
            readable, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
        except (OSError, ValueError) as error:
            raise sa.exc.DisconnectionError(f"the connection's socket is gone: {error}") from error
        if readable:
            raise sa.exc.DisconnectionError("the server ended the connection")
        idle = time.monotonic() - record.info.get("checked_in_at", time.monotonic())
        if idle > IDLE_PING_AFTER_S:
            try:
                engine.dialect.do_ping(dbapi_connection)
            except engine.dialect.loaded_dbapi.Error as error:
                raise sa.exc.DisconnectionError(f"the ping failed: {error}") from error


def rls_bypassed(connection: sa.Connection) -> bool:
    """True when the connected role would see through row-level security (superuser, BYPASSRLS, owner)."""
    if connection.dialect.name != "postgresql":
        return False
    row = connection.execute(
        sa.text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    owns = connection.execute(
        sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user")
    ).scalar()
    return bool(row) or bool(owns)


ORG_SETTING = "NULLIF(current_setting('journeylens.organisation_id', true), '')::integer"
USER_SETTING = "NULLIF(current_setting('journeylens.user_id', true), '')::integer"


def tenant_policy_sql(table: str, self_column: str | None = None) -> list[str]:
    """Statements that put a tenant table behind row-level security (used by migrations).

    FORCE makes the policy bind the table owner too; an unset setting is NULL and matches no row.
    With `self_column`, a user also sees their own rows in other organisations (memberships), but may
    write only inside the current one.
    """
    visible = f"organisation_id = {ORG_SETTING}"
    if self_column:
        visible = f"({visible} OR {self_column} = {USER_SETTING})"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY {table}_tenant_isolation ON {table} USING ({visible}) "
        f"WITH CHECK (organisation_id = {ORG_SETTING})",
    ]


def _remove_session(_error: BaseException | None) -> None:
    """End the request's session. A connection killed after the request's last statement fails the
    closing ROLLBACK: the answer is made and SQLAlchemy has invalidated the connection, so the session is
    dropped (else it would stay in the registry, broken, for a later request) instead of failing the
    request with a 500."""
    from webapp.extensions import db

    try:
        db.session.remove()
    except sa.exc.DBAPIError as error:
        log.warning("closing the database session failed: %s", str(error).splitlines()[0])
        db.session.registry.clear()
