"""`journeylens worker` / `python -m worker`: an RQ worker on the mining and default queues, with two
threads: the reconciler (stale mining runs) and the scheduler of recurring jobs (worker/scheduler.py)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from contextlib import suppress
from pathlib import Path

from rq import Worker

from worker import governor

log = logging.getLogger("worker")


class JourneylensWorker(Worker):
    """RQ's forking worker, telling which job its horse runs and the queue it came from (the governor
    pauses only mining horses and publishes under the job's id, worker/governor.py)."""

    current_queue_name: str | None = None
    current_job_id: str | None = None

    def execute_job(self, job, queue):
        self.current_queue_name, self.current_job_id = queue.name, job.id
        try:
            return super().execute_job(job, queue)
        finally:
            self.current_queue_name = self.current_job_id = None


def _reconcile_forever(app, stop: threading.Event) -> None:
    """Every few seconds one worker (a Redis lock decides which) re-drives or fails runs whose worker died.

    RQ alone would leave a SIGKILLed job 'started' until its maintenance sweep; the run rows are what
    users see, so we watch their heartbeats instead.
    """
    from webapp.extensions import db
    from webapp.queue import redis_connection
    from webapp.services.eventlogs import reconcile_all

    every_s = app.config["RECONCILE_EVERY_S"]
    while not stop.wait(every_s):
        try:
            with app.app_context():
                if not redis_connection().set("journeylens:reconciler", os.getpid(), nx=True, ex=every_s):
                    continue
                try:
                    handled = reconcile_all()
                    if handled:
                        log.warning("reconciled stale mining runs %s", handled)
                finally:
                    db.session.remove()
        except Exception:  # keep sweeping; the next round may succeed (database or Redis back)
            log.exception("reconciler round failed")


_lowered: list[int] = []


def _lower_priority(nice: int, idle: bool = False) -> None:
    """Yield the CPU to the web processes on a shared machine: `nice` steps lower for this process (its
    threads and the work horses it forks inherit it) and, when it leads a session of its own, for that
    session's autogroup too. Linux's autogroup scheduling shares the CPU between sessions first, whatever
    the niceness inside them, and a process manager (`journeylens up`, the tests' servers) starts the web
    and the worker each in its own session. Under systemd or containers, give the worker a lower CPU
    weight there (CPUWeight=, cpu_shares). Once per process.

    With `idle`, the process also takes Linux's SCHED_IDLE policy (inherited by its threads and work
    horses): a web thread that wakes on a CPU where mining runs takes it at once, and a waking web
    thread is placed on such a CPU as if it were free. Niceness alone only shrinks the worker's share,
    so pages still queued behind a mining thread (web p95 x2.6-3.9 while mining, bench/RESULTS.md). The
    autogroup's niceness still gives the worker its share when the web is busy for long, so mining is
    slowed, never starved."""
    if _lowered:
        return
    _lowered.append(nice)
    if nice > 0:
        os.nice(nice)
        if os.getsid(0) == os.getpid():
            with suppress(OSError):
                Path("/proc/self/autogroup").write_text(str(nice))
    if idle and hasattr(os, "SCHED_IDLE"):
        with suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def run_worker(app=None, burst: bool = False, queues: list[str] | None = None) -> bool:
    """Start an RQ worker inside an app context (returns when it stops; SIGTERM stops it gracefully)."""
    from sqlalchemy.orm import configure_mappers

    from webapp import create_app
    from webapp.extensions import db
    from webapp.queue import QUEUE_NAMES, get_queue, redis_connection

    app = app or create_app()
    # Before any thread starts: they inherit it.
    _lower_priority(app.config.get("WORKER_NICE", 0), idle=app.config.get("WORKER_SCHED_IDLE", False))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with app.app_context():
        configure_mappers()  # once, before forking work horses
        # numpy once too (its thread pool is fork-safe), rather than in every work horse; polars is
        # still imported after the fork, in the horse, as polars asks (its threads are not fork-safe).
        import numpy  # noqa: F401

        engine = db.engine
        engine.dispose()  # no pooled connection may cross the fork into a work horse
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
        connection = redis_connection()
        worker = JourneylensWorker(
            [get_queue(name, connection) for name in (queues or QUEUE_NAMES)], connection=connection
        )
        stop = threading.Event()
        governor.start(worker, app, stop)
        if not burst:
            threading.Thread(
                target=_reconcile_forever, args=(app, stop), daemon=True, name="reconciler"
            ).start()
            from worker.scheduler import schedule_forever

            threading.Thread(target=schedule_forever, args=(app, stop), daemon=True, name="scheduler").start()
        try:
            return worker.work(burst=burst, with_scheduler=True)
        finally:
            stop.set()


def main() -> None:
    """Entry point of `python -m worker`."""
    run_worker(burst="--burst" in sys.argv)


if __name__ == "__main__":
    main()
