"""The one place that knows the current organisation and scopes every query to it.

Two walls keep tenants apart:
1. Every ORM statement touching a tenant-owned model gets `with_loader_criteria` for the current
   organisation (one `do_orm_execute` hook). A statement on a tenant-owned model with no tenant set
   raises: we fail closed rather than return everybody's rows.
2. On PostgreSQL, row-level security: each transaction starts with `set_config(..., is_local => true)`
   (the SET LOCAL form, which dies with the transaction and so cannot leak through the pool), and every
   tenant table has a policy that matches no row while the setting is empty. A tenant chosen inside a
   transaction reaches PostgreSQL just before that transaction's next statement or flush.
New tenant-owned rows get the current organisation; a row for another organisation is refused.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import sqlalchemy as sa
from flask import current_app, g, has_app_context
from psycopg import generators, pq
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column, with_loader_criteria
from sqlalchemy.sql import Executable


class TenantNotSet(RuntimeError):
    """A query on tenant-owned data ran with no organisation chosen."""


class CrossTenantWrite(RuntimeError):
    """A row was about to be written into an organisation other than the current one."""


@dataclass(frozen=True)
class Tenant:
    """Who is asking: the organisation in scope (None: none yet) and the user (None: a job or the CLI)."""

    organisation_id: int | None
    user_id: int | None = None


class TenantOwned:
    """Marker base of every table that belongs to one organisation (carries organisation_id)."""

    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )


class OrgScoped(TenantOwned):
    """Rows visible only inside their own organisation."""


class OrgOrSelfScoped(TenantOwned):
    """Rows visible inside their organisation and to the user they belong to (memberships), so a
    user can list the organisations they may switch to."""

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)


def current() -> Tenant | None:
    """The tenant of this app context (a request or a job), or None."""
    if not has_app_context():
        return None
    return g.get("_journeylens_tenant")


def activate(organisation_id: int | None, user_id: int | None = None) -> Tenant:
    """Make `organisation_id` the organisation every following query is scoped to."""
    from webapp.extensions import db

    tenant = Tenant(organisation_id, user_id)
    if tenant == current():
        return tenant  # PostgreSQL already knows, or will before the next statement
    g._journeylens_tenant = tenant
    # Inside a transaction PostgreSQL learns of the change just before the next statement (see
    # _sync_database_tenant), not now: a request activates the user, then the organisation, and
    # telling the database once saves a round trip on every page and poll.
    g._journeylens_tenant_pending = db.session().in_transaction()
    return tenant


def deactivate() -> None:
    """Forget the tenant (end of a request or job)."""
    if has_app_context():
        g.pop("_journeylens_tenant", None)
        g.pop("_journeylens_tenant_pending", None)
        g.pop("_journeylens_unscoped", None)


@contextmanager
def unscoped(reason: str) -> Iterator[None]:
    """The one escape hatch: ORM queries inside see every organisation. Maintenance code only.

    On PostgreSQL the RLS wall still applies unless the connection's role bypasses it.
    """
    assert reason, "say why the tenant scope is lifted"
    previous = g.get("_journeylens_unscoped", False)
    g._journeylens_unscoped = True
    try:
        yield
    finally:
        g._journeylens_unscoped = previous


def _orm_scoping_enabled() -> bool:
    return bool(current_app.config.get("TENANT_ORM_SCOPING", True)) and not g.get(
        "_journeylens_unscoped", False
    )


def _set_database_tenant(connection: sa.Connection, tenant: Tenant | None) -> None:
    if connection.dialect.name != "postgresql":
        return
    org = "" if tenant is None or tenant.organisation_id is None else str(int(tenant.organisation_id))
    user = "" if tenant is None or tenant.user_id is None else str(int(tenant.user_id))
    command = (
        f"SELECT set_config('journeylens.organisation_id', '{org}', true),"
        f" set_config('journeylens.user_id', '{user}', true)"
    )
    driver = connection.connection.driver_connection
    if (
        driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        and not driver.autocommit
        and driver.isolation_level is None
        and driver.read_only is None
    ):
        _begin_with(connection, driver, "BEGIN; " + command)
    else:
        connection.exec_driver_sql(command)


def _begin_with(connection: sa.Connection, driver: psycopg.Connection, command: str) -> None:
    """Start the transaction and tell it the tenant in one round trip. Left alone, psycopg sends its BEGIN
    on its own before the first statement: one more round trip on every request and poll. psycopg sees
    the transaction open and sends no BEGIN of its own; errors reach the app as SQLAlchemy's, so a
    dropped connection still answers 503 and leaves the pool."""
    try:
        driver.pgconn.send_query(command.encode())
        results = driver.wait(generators.execute(driver.pgconn))
        failed = [r for r in results if r.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)]
        if failed:
            raise psycopg.OperationalError(failed[0].error_message.decode(errors="replace"))
    except psycopg.Error as error:
        if driver.broken or driver.closed:
            connection.invalidate(error)
        raise sa.exc.DBAPIError.instance(command, None, error, psycopg.Error) from error


@event.listens_for(Session, "after_begin")
def _on_transaction_begin(session: Session, transaction, connection: sa.Connection) -> None:
    """Every transaction tells PostgreSQL whose rows it may see (SET LOCAL semantics). With neither an
    organisation nor a user in scope there is nothing to tell: a transaction starts with both settings
    empty (the last one's SET LOCAL died with it), which matches no row; that saves a round trip at the
    start of every request, whose first statement loads the session's user."""
    if has_app_context():
        g._journeylens_tenant_pending = False  # this transaction starts with the current tenant
    tenant = current()
    if tenant is None or (tenant.organisation_id is None and tenant.user_id is None):
        return
    _set_database_tenant(connection, tenant)


def _sync_database_tenant(session: Session) -> None:
    """Before a statement or a flush: if the tenant changed inside the open transaction, tell PostgreSQL.
    Every statement of the session passes here (Session.execute, lazy loads and flushes alike)."""
    if not has_app_context() or not g.get("_journeylens_tenant_pending", False):
        return
    connection = session.connection()  # may begin the transaction, whose after_begin tells it instead
    if g.get("_journeylens_tenant_pending", False):
        _set_database_tenant(connection, current())
        g._journeylens_tenant_pending = False


def _touches_tenant_data(state) -> bool:
    return any(issubclass(mapper.class_, TenantOwned) for mapper in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_orm_statement(state) -> None:
    """Add the current organisation's criteria to every ORM select, update and delete."""
    _sync_database_tenant(state.session)
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if not has_app_context() or not _orm_scoping_enabled():
        return
    tenant = current()
    if tenant is None:
        if _touches_tenant_data(state):
            raise TenantNotSet("query on tenant-owned data with no organisation in scope")
        return
    if state.execution_options.get(_PREBUILT):
        state.statement = _scoped_prebuilt(state.statement, tenant)
    else:
        state.statement = state.statement.options(*_criteria(tenant))


_PREBUILT = "journeylens_prebuilt"


def prebuilt(statement: Executable) -> Executable:
    """Mark a statement built once, at import, and run with bound parameters (`sa.bindparam`): its
    scoped form is made once per tenant and kept. Building a statement, scoping it and computing its
    cache key cost about a quarter of a small query's CPU (the membership lookup: 750 µs built per call,
    555 µs prebuilt); the queries every page and poll runs skip all three."""
    return statement.execution_options(**{_PREBUILT: True})


# (id of a prebuilt statement, tenant) -> (that statement, its scoped form). The statement is kept
# beside its id so that a reused id is never mistaken for it.
_scoped_statements: dict[tuple[int, Tenant], tuple[Executable, Executable]] = {}


def _scoped_prebuilt(statement: Executable, tenant: Tenant) -> Executable:
    key = (id(statement), tenant)
    known = _scoped_statements.get(key)
    if known is None or known[0] is not statement:
        if len(_scoped_statements) >= 4096:  # one per statement and signed-in user; a bound, no policy
            _scoped_statements.clear()
        known = (statement, statement.options(*_criteria(tenant)))
        _scoped_statements[key] = known
    return known[1]


@functools.lru_cache(maxsize=1024)
def _criteria(tenant: Tenant) -> tuple:
    """The loader criteria of one tenant. Built once per tenant and reused (building them took ~6% of a
    request's CPU, at ten statements a page): the lambdas' closure values are bound parameters, read
    afresh at every execution, so one option object serves every statement of that tenant."""
    org_id, user_id = tenant.organisation_id, tenant.user_id
    return (
        with_loader_criteria(OrgScoped, lambda cls: cls.organisation_id == org_id, include_aliases=True),
        with_loader_criteria(
            OrgOrSelfScoped,
            lambda cls: sa.or_(cls.organisation_id == org_id, cls.user_id == user_id),
            include_aliases=True,
        ),
    )


@event.listens_for(Session, "before_flush")
def _stamp_new_rows(session: Session, flush_context, instances) -> None:
    """New tenant rows belong to the current organisation; writing into another one is refused."""
    if not has_app_context():
        return
    _sync_database_tenant(session)
    tenant = current()
    unscoped_now = g.get("_journeylens_unscoped", False)
    for obj in session.new:
        if not isinstance(obj, TenantOwned):
            continue
        if obj.organisation_id is None:
            if tenant is None or tenant.organisation_id is None:
                raise TenantNotSet(f"new {type(obj).__name__} with no organisation in scope")
            obj.organisation_id = tenant.organisation_id
        elif not unscoped_now and (tenant is None or obj.organisation_id != tenant.organisation_id):
            raise CrossTenantWrite(f"{type(obj).__name__} for organisation {obj.organisation_id}")


def tenant_tables(metadata: sa.MetaData) -> list[sa.Table]:
    """Every table that carries organisation_id (each must have an RLS policy)."""
    return [t for t in metadata.sorted_tables if "organisation_id" in t.columns]
