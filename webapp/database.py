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
        _note_writes(engine)


WROTE = "journeylens_wrote"  # in a connection's info: the open transaction ran something not a SELECT


def _note_writes(engine: sa.Engine) -> None:
    """Mark the connection of a transaction that ran anything but a plain SELECT (a flush, an UPDATE, a
    data-modifying WITH, DDL): only a transaction that did not may end in COMMIT instead of ROLLBACK
    (see `_remove_session`). The mark goes with the transaction."""

    @event.listens_for(engine, "before_cursor_execute")
    def _note(connection, _cursor, statement: str, _parameters, _context, _executemany) -> None:
        if statement.lstrip()[:6].upper() != "SELECT":
            connection.info[WROTE] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _forget(connection) -> None:
        connection.info.pop(WROTE, None)


def _read_only(session) -> bool:
    """Whether the session's open transaction (on PostgreSQL) only read: it holds no pending change and
    its connection ran nothing but SELECTs. (No SELECT of ours has a side effect that COMMIT would keep
    and ROLLBACK drop, such as pg_notify.)"""
    if session.new or session.dirty or session.deleted:
        return False
    connection = session.connection()  # the open transaction's own: the app has one database
    return connection.dialect.name == "postgresql" and not connection.info.get(WROTE)


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


def _remove_session(error: BaseException | None) -> None:
    """End the request's session. A transaction that only read ends in COMMIT, which for it is the same
    as ROLLBACK, because psycopg forgets its prepared statements on every ROLLBACK (a rollback may undo
    the DDL they depend on): ending every read in ROLLBACK had PostgreSQL plan every statement of every
    request afresh. Anything else (a failed request, a pending change, a statement that wrote and was
    not committed) is rolled back as before.

    A connection killed after the request's last statement fails the closing COMMIT or ROLLBACK: the
    answer is made and SQLAlchemy has invalidated the connection, so the session is dropped (else it
    would stay in the registry, broken, for a later request) instead of failing the request with a 500."""
    from webapp.extensions import db

    try:
        session = db.session()
        if error is None and session.in_transaction() and _read_only(session):
            # As the rollback-and-close did, leave loaded objects readable after the request (the
            # session is discarded just below; code that holds an object past its context still works).
            session.expire_on_commit = False
            session.commit()
        db.session.remove()
    except sa.exc.DBAPIError as error:
        log.warning("closing the database session failed: %s", str(error).splitlines()[0])
        db.session.registry.clear()
