"""The weekly digest end to end: a real worker's scheduler thread (what `make run` starts) enqueues the
week's digests of every organisation, the job stores one per member, and the members whose organisation
had goal changes get a mail at a local SMTP recorder. Ticking on, and even losing the scheduler's Redis
keys, makes no second digest and no second mail."""

from __future__ import annotations

import email
import email.policy
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa
from redis import Redis

from tests.integration.test_worker import Recorder
from tests.servers import rq_worker, stack_env
from tests.web.test_dashboard import add_event, add_goal, add_journey, user_ids


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    from webapp.embedded_redis import free_port

    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield recorder, f"smtp://127.0.0.1:{controller.port}"
    controller.stop()


def digests_of(app, organisation_id: int) -> list[tuple[int, int, bool]]:
    """(digest id, user id, mailed) of an organisation's digests."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.goals import Digest

    with app.app_context():
        tenancy.activate(organisation_id)
        rows = db.session.execute(
            sa.select(Digest.id, Digest.user_id, Digest.emailed_at.is_not(None)).order_by(Digest.user_id)
        ).all()
        db.session.remove()
    return [tuple(row) for row in rows]


def digest_mails(recorder) -> list:
    """The weekly digests among the mails (the goals' daily sweep may mail about an overdue check-in)."""
    parsed = [
        (message.rcpt_tos, email.message_from_bytes(message.content, policy=email.policy.default))
        for message in recorder.messages
    ]
    return [(to, mail) for to, mail in parsed if mail["Subject"].startswith("Weekly goals digest")]


def wait_until(condition, timeout_s: float = 45) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError("timed out")


def test_the_scheduler_of_a_real_worker_makes_and_mails_each_weekly_digest_once(
    app, app_config, tenant_a, tenant_b, smtp, redis_url
):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models.types import utcnow
    from webapp.services.digests import period_for

    recorder, smtp_url = smtp
    start, end = period_for(utcnow())
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        users = user_ids(tenant_a)
        journey = add_journey("Laptop repair", "customer", users["owner"])
        goal = add_goal(
            journey, "Faster laptop repairs", status="at_risk", owner_id=users["editor"], values=(9.0,)
        )
        add_event(
            goal, "status_change", "Slipped behind the plan", start + timedelta(days=2), "on_track", "at_risk"
        )
        add_event(goal, "measurement", "New measurement: 9", start + timedelta(days=2))
        db.session.remove()

    env = stack_env(
        app_config, SMTP_URL=smtp_url, PUBLIC_URL="https://journeylens.example", SCHEDULE_EVERY_S="1"
    )
    with rq_worker(env):
        wait_until(
            lambda: len(digests_of(app, tenant_a.organisation_id)) == 4 and len(digest_mails(recorder)) == 4
        )
        wait_until(lambda: all(mailed for _id, _user, mailed in digests_of(app, tenant_a.organisation_id)))
        assert len(digests_of(app, tenant_b.organisation_id)) == 4  # stored, not mailed: nothing changed in B
        assert not any(mailed for _id, _user, mailed in digests_of(app, tenant_b.organisation_id))

        time.sleep(3)  # three more ticks
        # The scheduler's keys lost (Redis flushed, say): the next tick enqueues the week again, for nothing.
        connection = Redis.from_url(redis_url)
        lost = connection.keys("journeylens:scheduled:weekly-digests:*")
        assert len(lost) == 2
        connection.delete(*lost)
        wait_until(lambda: len(connection.keys("journeylens:scheduled:weekly-digests:*")) == 2)
        time.sleep(2)  # the re-enqueued jobs run

    assert len(digests_of(app, tenant_a.organisation_id)) == 4
    assert len(digests_of(app, tenant_b.organisation_id)) == 4
    mails = digest_mails(recorder)
    assert sorted(to[0] for to, _mail in mails) == sorted(tenant_a.emails.values())
    parsed = next(mail for to, mail in mails if to == [tenant_a.emails["editor"]])
    assert parsed["Subject"] == "Weekly goals digest: 1 status change, 1 new measurement"
    body = parsed.get_content()
    assert "Goals of Alpha Services, week of" in body
    assert "Faster laptop repairs (your goal): Slipped behind the plan [On track → At risk]" in body
    digest_id = next(
        d for d, user, _m in digests_of(app, tenant_a.organisation_id) if user == users["editor"]
    )
    assert f"https://journeylens.example/o/{tenant_a.slug}/dashboard/digests/{digest_id}" in body
