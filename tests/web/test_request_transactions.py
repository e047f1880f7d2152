"""How a request's transaction ends: a request that only read ends in COMMIT, so PostgreSQL keeps the
statements psycopg prepared (a ROLLBACK makes psycopg drop them all, and every statement of every request
was planned afresh); anything that wrote and was not committed is still rolled back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.support import login, new_journey

pytestmark = pytest.mark.postgres


def _transaction_ends(app) -> tuple[list[str], callable]:
    """A list that records 'commit' / 'rollback' as the app's engine ends transactions; and its remover."""
    from webapp.extensions import db

    with app.app_context():
        engine = db.engine
    ends: list[str] = []

    def commit(_connection) -> None:
        ends.append("commit")

    def rollback(_connection) -> None:
        ends.append("rollback")

    sa.event.listen(engine, "commit", commit)
    sa.event.listen(engine, "rollback", rollback)

    def remove() -> None:
        sa.event.remove(engine, "commit", commit)
        sa.event.remove(engine, "rollback", rollback)

    return ends, remove


def test_a_read_only_poll_ends_in_commit_and_its_statements_stay_prepared(app, tenant_a, client):
    login(client, tenant_a.emails["editor"])
    journey_url = new_journey(client, tenant_a.slug)
    poll = f"/o/{tenant_a.slug}/inbox/unread?since=0"
    assert client.get(poll, headers={"HX-Request": "true"}).status_code == 204

    from webapp.extensions import db

    with app.app_context():
        engine = db.engine
    drivers = set()

    def note(connection, *_args) -> None:
        drivers.add(connection.connection.driver_connection)

    ends, remove = _transaction_ends(app)
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        for _ in range(8):  # psycopg prepares a statement from its 6th run on a connection
            assert client.get(poll, headers={"HX-Request": "true"}).status_code == 204
        assert client.get(journey_url).status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
        remove()
    assert ends and set(ends) == {"commit"}, ends

    prepared = 0
    for driver in drivers:
        with driver.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_prepared_statements", prepare=False)
            prepared += cursor.fetchone()[0]
        driver.commit()  # out of the transaction that query opened; the pool expects an idle connection
    assert prepared >= 3  # the poll's membership and count, and the journey page's, at least


def test_an_uncommitted_write_is_still_rolled_back(app, tenant_a, client):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Journey

    login(client, tenant_a.emails["editor"])
    journey_id = int(new_journey(client, tenant_a.slug, title="Kept title").rsplit("/", 1)[1])

    ends, remove = _transaction_ends(app)
    try:
        # A request that reads, then changes a row and forgets to commit (or fails before it could).
        with app.test_request_context():
            tenancy.activate(tenant_a.organisation_id)
            db.session.scalar(sa.select(Journey.title).where(Journey.id == journey_id))
            db.session.execute(sa.update(Journey).where(Journey.id == journey_id).values(title="Lost"))
        # One that changes an object in memory only, and one that flushed it.
        with app.test_request_context():
            tenancy.activate(tenant_a.organisation_id)
            db.session.get(Journey, journey_id).title = "Lost too"
        with app.test_request_context():
            tenancy.activate(tenant_a.organisation_id)
            db.session.get(Journey, journey_id).title = "Lost as well"
            db.session.flush()
    finally:
        remove()
    assert ends == ["rollback", "rollback", "rollback"]
    assert "Kept title" in client.get(f"/o/{tenant_a.slug}/journeys/{journey_id}").get_data(as_text=True)
