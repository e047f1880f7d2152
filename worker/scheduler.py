"""The calendar of recurring jobs, run by every worker (so `make run` has it) with a Redis lock so one
worker at a time ticks.

Every SCHEDULE_EVERY_S a tick enqueues what is due and not yet enqueued:

* `worker.jobs.dashboard.weekly_digests` once per week per organisation (the week that ended last
  Monday 00:00 UTC);
* `worker.jobs.dashboard.daily_sweep` once per UTC day, which runs `webapp.services.goals.daily_sweep()`
  (it visits every organisation itself) when the goals service has one.

"Not yet enqueued" is a Redis key per period (and organisation), set with NX, so a tick that runs again
(another worker, a restart) enqueues nothing twice. The jobs themselves are idempotent as well (one
digest per member per week, a mail only for a digest not yet mailed), so a lost key costs a no-op job.
A worker that was down when the week turned catches up at its first tick.
"""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime

import sqlalchemy as sa

log = logging.getLogger("worker.scheduler")

LOCK_KEY = "journeylens:scheduler"
WEEKLY_JOB = "worker.jobs.dashboard.weekly_digests"
DAILY_JOB = "worker.jobs.dashboard.daily_sweep"
KEY_TTL_S = 9 * 24 * 3600  # longer than a week, so a weekly key outlives its period


def tick(now: datetime | None = None) -> list[str]:
    """Enqueue what is due; returns a line per job enqueued. Needs an app context and Redis."""
    from webapp import queue
    from webapp.extensions import db
    from webapp.models import Organisation
    from webapp.models.types import utcnow
    from webapp.services.digests import period_for

    now = now or utcnow()
    connection = queue.redis_connection()
    _start, week_end = period_for(now)
    due: list[tuple[str, str, int | None, int]] = []  # (job, period, organisation, timeout)
    due.append((DAILY_JOB, f"daily-sweep:{now:%Y-%m-%d}", None, 1800))
    for organisation_id in db.session.scalars(sa.select(Organisation.id).order_by(Organisation.id)).all():
        due.append((WEEKLY_JOB, f"weekly-digests:{week_end:%Y-%m-%d}", organisation_id, 3600))
    enqueued = []
    for job_path, period, organisation_id, timeout_s in due:
        whose = "every organisation" if organisation_id is None else f"organisation {organisation_id}"
        key = f"journeylens:scheduled:{period}:{organisation_id or 'all'}"
        if not connection.set(key, now.isoformat(), nx=True, ex=KEY_TTL_S):
            continue
        try:
            queue.enqueue(
                "default",
                job_path,
                organisation_id=organisation_id,
                description=f"{period} of {whose}",
                job_timeout=timeout_s,
            )
        except Exception:
            connection.delete(key)  # try again at the next tick
            raise
        enqueued.append(f"{period} for {whose}")
    return enqueued


def schedule_forever(app, stop: threading.Event) -> None:
    """Tick every SCHEDULE_EVERY_S until `stop` is set (a worker's thread)."""
    from webapp.extensions import db
    from webapp.queue import redis_connection

    every_s = app.config["SCHEDULE_EVERY_S"]
    while not stop.wait(every_s):
        try:
            with app.app_context():
                if not redis_connection().set(LOCK_KEY, os.getpid(), nx=True, ex=every_s):
                    continue
                try:
                    for line in tick():
                        log.info("scheduled %s", line)
                finally:
                    db.session.remove()
        except Exception:  # keep ticking; the next round may succeed (database or Redis back)
            log.exception("scheduler tick failed")
