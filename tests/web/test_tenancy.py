"""The scoping mechanism itself: fail closed, stamp new rows, refuse cross-tenant writes; and on
PostgreSQL the row-level-security wall, proven with the ORM scoping switched off."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from tests.support import login


def _models():
    from webapp.models import ApiToken, AuditEvent, Invitation, Membership

    return ApiToken, AuditEvent, Invitation, Membership


def test_every_table_with_organisation_id_is_tenant_owned(app):
    from webapp.extensions import db
    from webapp.tenancy import TenantOwned

    mapped = {m.class_.__table__.name: m.class_ for m in db.Model.registry.mappers}
    for table in db.metadata.sorted_tables:
        if "organisation_id" in table.columns:
            assert issubclass(mapped[table.name], TenantOwned), table.name


def test_query_on_tenant_data_without_a_tenant_fails_closed(app, tenant_a):
    from webapp.extensions import db
    from webapp.models import Invitation
    from webapp.tenancy import TenantNotSet

    with app.app_context(), pytest.raises(TenantNotSet):
        db.session.scalars(sa.select(Invitation)).all()


def test_queries_see_only_the_current_organisation(app, tenant_a, tenant_b):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import AuditEvent

    with app.app_context():
        tenancy.activate(tenant_b.organisation_id)
        events = db.session.scalars(sa.select(AuditEvent)).all()
        assert events and {e.organisation_id for e in events} == {tenant_b.organisation_id}
        # Joins and aliases are scoped too.
        alias = sa.orm.aliased(AuditEvent)
        rows = db.session.scalars(sa.select(alias.organisation_id)).all()
        assert set(rows) == {tenant_b.organisation_id}


def test_new_rows_join_the_current_organisation_and_cannot_target_another(app, tenant_a, tenant_b):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import AuditEvent
    from webapp.tenancy import CrossTenantWrite

    with app.app_context():
        tenancy.activate(tenant_b.organisation_id)
        event = AuditEvent(action="test.stamp")
        db.session.add(event)
        db.session.commit()
        assert event.organisation_id == tenant_b.organisation_id
        db.session.add(AuditEvent(action="test.smuggle", organisation_id=tenant_a.organisation_id))
        with pytest.raises(CrossTenantWrite):
            db.session.flush()
        db.session.rollback()


def test_a_user_sees_their_own_memberships_in_every_organisation(app, tenant_a, tenant_b, client):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Role, User
    from webapp.services import Actor, accounts

    with app.test_request_context():
        user = db.session.scalar(sa.select(User).where(User.email == "viewer@a.example"))
        tenancy.activate(tenant_b.organisation_id)
        accounts.add_member(user, Role.EDITOR, Actor(None))
    login(client, "viewer@a.example")
    page = client.get("/").get_data(as_text=True)  # two organisations: the chooser
    assert "Alpha Services" in page and "Beta Support" in page
    page = client.get(f"/o/{tenant_b.slug}/").get_data(as_text=True)
    menu_url = re.search(r'class="dropdown org-switcher" hx-get="([^"]+)"', page).group(1)
    switcher = client.get(unescape(menu_url), headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f"/o/{tenant_a.slug}/" in switcher  # the switcher, once opened, offers the other one


# --- PostgreSQL's row-level security, the second wall -------------------------------------------------


@pytest.mark.postgres
def test_every_tenant_table_has_forced_rls_with_using_and_with_check(app, database_urls):
    from webapp.extensions import db
    from webapp.tenancy import tenant_tables

    engine = sa.create_engine(database_urls["owner"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        for table in tenant_tables(db.metadata):
            flags = connection.execute(
                sa.text("SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = :t"),
                {"t": table.name},
            ).one()
            assert flags == (True, True), table.name
            policies = connection.execute(
                sa.text("SELECT qual, with_check FROM pg_policies WHERE tablename = :t"), {"t": table.name}
            ).all()
            assert policies and all(q and w for q, w in policies), table.name
    engine.dispose()


@pytest.mark.postgres
def test_a_connection_lost_as_its_transaction_begins_fails_as_sqlalchemys_and_leaves_the_pool(
    app, database_urls, tenant_a
):
    """The tenant setting travels with the BEGIN, outside SQLAlchemy's execute: a connection the server
    dropped must still fail with SQLAlchemy's OperationalError (which the app answers with 503) and be
    invalidated, so the pool hands out a live one next."""
    from webapp import tenancy
    from webapp.extensions import db

    owner = sa.create_engine(database_urls["owner"], poolclass=sa.pool.NullPool)
    with app.app_context():
        connection = db.engine.connect()
        pid = connection.connection.driver_connection.info.backend_pid
        with owner.connect() as killer:
            assert killer.execute(sa.text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar()
        with pytest.raises(sa.exc.OperationalError):
            tenancy._set_database_tenant(connection, tenancy.Tenant(tenant_a.organisation_id, None))
        assert connection.invalidated
        connection.close()
        with db.engine.connect() as fresh:
            assert fresh.connection.driver_connection.info.backend_pid != pid
            assert fresh.execute(sa.text("SELECT 1")).scalar() == 1
    owner.dispose()


@pytest.mark.postgres
def test_the_app_role_neither_owns_tables_nor_bypasses_rls(app):
    from webapp.database import rls_bypassed
    from webapp.extensions import db

    with app.app_context(), db.engine.connect() as connection:
        assert rls_bypassed(connection) is False


@pytest.mark.postgres
def test_rls_alone_keeps_tenants_apart_when_orm_scoping_is_off(app, tenant_a, tenant_b):
    from webapp import tenancy
    from webapp.extensions import db

    app.config["TENANT_ORM_SCOPING"] = False
    with app.app_context():
        for model in _models():
            tenancy.activate(tenant_b.organisation_id)
            orgs = set(db.session.scalars(sa.select(model.organisation_id)))
            assert tenant_a.organisation_id not in orgs, model.__tablename__
            # Core SQL that forgets every filter still sees nothing of A.
            raw = db.session.execute(sa.text(f"SELECT organisation_id FROM {model.__tablename__}")).scalars()
            assert tenant_a.organisation_id not in set(raw), model.__tablename__
            db.session.commit()
        # No tenant at all: nothing, not everything.
        tenancy.deactivate()
        assert db.session.execute(sa.text("SELECT count(*) FROM audit_events")).scalar() == 0
        db.session.rollback()


@pytest.mark.postgres
def test_rls_refuses_writes_into_another_organisation(app, tenant_a, tenant_b):
    from sqlalchemy.exc import ProgrammingError

    from webapp import tenancy
    from webapp.extensions import db

    app.config["TENANT_ORM_SCOPING"] = False
    with app.app_context():
        tenancy.activate(tenant_b.organisation_id)
        with pytest.raises(ProgrammingError, match="row-level security"):
            db.session.execute(
                sa.text(
                    "INSERT INTO audit_events (organisation_id, action, target, details, created_at)"
                    " VALUES (:org, 'smuggle', '', '{}', now())"
                ),
                {"org": tenant_a.organisation_id},
            )
        db.session.rollback()


@pytest.mark.postgres
def test_tenant_setting_does_not_leak_through_the_pool(app, tenant_a, tenant_b):
    from webapp import tenancy
    from webapp.extensions import db

    app.config["TENANT_ORM_SCOPING"] = False
    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        assert db.session.execute(sa.text("SELECT count(*) FROM invitations WHERE true")).scalar() == 0
        assert db.session.execute(sa.text("SELECT count(*) FROM audit_events")).scalar() > 0
        db.session.commit()
        tenancy.deactivate()
        # Same pooled connection, new transaction, no tenant: the SET LOCAL died with the transaction.
        setting = db.session.execute(
            sa.text("SELECT coalesce(current_setting('journeylens.organisation_id', true), '')")
        ).scalar()
        assert setting == ""
        db.session.rollback()


@pytest.mark.postgres
def test_a_tenant_switched_inside_a_transaction_reaches_the_database_before_the_next_statement(
    app, tenant_a, tenant_b
):
    """activate() tells PostgreSQL lazily (one round trip for a request that picks the user, then the
    organisation); the next query, Core statement or flush must still run under the new tenant."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import AuditEvent

    app.config["TENANT_ORM_SCOPING"] = False
    setting = sa.text("SELECT current_setting('journeylens.organisation_id', true)")
    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        assert set(db.session.scalars(sa.select(AuditEvent.organisation_id))) == {tenant_a.organisation_id}
        tenancy.activate(tenant_b.organisation_id)  # same transaction
        assert db.session.execute(setting).scalar() == str(tenant_b.organisation_id)
        assert set(db.session.scalars(sa.select(AuditEvent.organisation_id))) == {tenant_b.organisation_id}
        tenancy.activate(tenant_a.organisation_id)
        # A flush is the first statement after the switch: RLS's WITH CHECK admits the row only if
        # PostgreSQL was told of A first.
        db.session.add(AuditEvent(action="test.lazy_switch", target="", details={}))
        db.session.flush()
        assert db.session.execute(setting).scalar() == str(tenant_a.organisation_id)
        db.session.rollback()


@pytest.mark.parametrize("orm_scoping", [True, False], ids=["orm+rls", "rls-only"])
def test_a_wrong_guess_of_the_organisation_never_opens_it(app, tenant_a, tenant_b, client, orm_scoping):
    """Each process remembers which organisation a slug named, to tell PostgreSQL user and organisation
    in one round trip. A wrong memory (a slug now naming another organisation) must neither show the
    guessed organisation nor keep a member out of the right one."""
    import webapp.orgs as orgs

    app.config["TENANT_ORM_SCOPING"] = orm_scoping
    # A member of B only, whose process believes A's slug means B: still no way into A.
    orgs._organisation_ids[tenant_a.slug] = tenant_b.organisation_id
    login(client, tenant_b.emails["viewer"])
    assert client.get(f"/o/{tenant_a.slug}/").status_code == 404
    assert client.get(f"/o/{tenant_a.slug}/journeys").status_code == 404
    client = app.test_client()  # another browser
    # A member of A whose process believes A's slug means B: A's pages, nothing of B.
    orgs._organisation_ids[tenant_a.slug] = tenant_b.organisation_id
    login(client, tenant_a.emails["viewer"])
    page = client.get(f"/o/{tenant_a.slug}/members")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "viewer@a.example" in html and "@b.example" not in html
    assert orgs._organisation_ids[tenant_a.slug] == tenant_a.organisation_id  # corrected


def _each_run_carries_its_tenant(app, tenant_a, tenant_b, run) -> None:
    """`run()` reads audit events' organisation ids for A, B, A, B in turn: each time it must see only the
    organisation in scope, and the statement sent must carry that organisation and not the other one
    (checked on the parameters sent, whatever RLS would add)."""
    from webapp import tenancy
    from webapp.extensions import db

    sent: list[dict] = []

    def record(_conn, _cursor, statement, parameters, *_):
        if "audit_events" in statement:
            sent.append(dict(parameters) if isinstance(parameters, dict) else {"": parameters})

    with app.app_context():
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            for org in (tenant_a, tenant_b, tenant_a, tenant_b):
                tenancy.activate(org.organisation_id)
                rows = run()
                assert rows and set(rows) == {org.organisation_id}
                values = set(sent[-1].values())
                other = tenant_b if org is tenant_a else tenant_a
                assert org.organisation_id in values and other.organisation_id not in values, sent[-1]
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
            db.session.rollback()


def test_the_orm_criteria_follow_the_tenant_from_statement_to_statement(app, tenant_a, tenant_b):
    """The criteria objects are built once per tenant and reused: each statement must still carry the
    organisation in scope at that moment."""
    from webapp.extensions import db
    from webapp.models import AuditEvent

    _each_run_carries_its_tenant(
        app, tenant_a, tenant_b, lambda: db.session.scalars(sa.select(AuditEvent.organisation_id)).all()
    )


def test_a_prebuilt_statement_is_scoped_to_each_tenant_in_turn(app, tenant_a, tenant_b):
    """A prebuilt statement's scoped form is kept per tenant: run for A, B, A, B in one process, each
    run must carry the organisation in scope then, never the one before."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import AuditEvent

    statement = tenancy.prebuilt(
        sa.select(AuditEvent.organisation_id).where(AuditEvent.id > sa.bindparam("after"))
    )
    _each_run_carries_its_tenant(
        app, tenant_a, tenant_b, lambda: db.session.scalars(statement, {"after": 0}).all()
    )
