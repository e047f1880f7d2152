"""RQ entry points. Each runs inside an app context with the job's organisation as tenant."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from rq import get_current_job

from webapp import tenancy


def _app():
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app._get_current_object()
    from webapp import create_app

    return create_app()


def tenant_job(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run the job in an app context, scoped to the organisation named in the job's meta."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = _app()
        job = get_current_job()
        organisation_id = job.meta.get("organisation_id") if job else kwargs.pop("organisation_id", None)
        with app.app_context():
            from webapp.extensions import db

            tenancy.activate(organisation_id)
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()
                tenancy.deactivate()

    return wrapper


HEARTBEAT_EVERY_S = 5


class Heartbeat(threading.Thread):
    """Calls `beat()` every few seconds from its own app context and session while a long job works,
    so the reconciler can tell a live job from one whose worker died; `cancelled` is set once `beat()`
    answers False (the row was cancelled or is gone)."""

    def __init__(self, app, organisation_id: int, beat: Callable[[], bool], name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.app, self.organisation_id, self.beat = app, organisation_id, beat
        self.stop = threading.Event()
        self.cancelled = threading.Event()

    def run(self) -> None:
        from webapp.extensions import db

        with self.app.app_context():
            tenancy.activate(self.organisation_id)
            try:
                while not self.stop.wait(HEARTBEAT_EVERY_S):
                    if not self.beat():
                        self.cancelled.set()
            finally:
                db.session.remove()
