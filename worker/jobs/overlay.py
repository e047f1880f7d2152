"""Journey measurement jobs: project a mined log onto a drawn journey; draft a journey from a log."""

from __future__ import annotations

import logging

from flask import current_app

from webapp import tenancy
from webapp.extensions import db
from webapp.services import overlay
from webapp.storage import get_storage
from worker.jobs import Heartbeat, tenant_job
from worker.jobs.eventlogs import _mapping

log = logging.getLogger(__name__)


@tenant_job
def measure_snapshot(snapshot_id: int) -> str:
    """Read the log with its column mapping, measure the journey, store the figures."""
    from worker.mining import MiningInputError, read_log
    from worker.mining.calendar import BusinessCalendar
    from worker.mining.overlay import MapStep, measure_journey

    inputs = overlay.begin_snapshot(snapshot_id)
    if inputs is None:
        return "nothing to do"
    beat = Heartbeat(
        current_app._get_current_object(),
        tenancy.current().organisation_id,
        lambda: overlay.heartbeat(snapshot_id),
        f"measurement-heartbeat-{snapshot_id}",
    )
    beat.start()

    def progress(phase: str, fraction: float) -> None:
        overlay.report_progress(snapshot_id, phase, fraction)

    try:
        with get_storage().local_path(inputs.storage_key) as path:
            table = read_log(path, _mapping(inputs.column_mapping), progress=progress)
        steps = [MapStep(id=s["id"], name=s["name"], stage_index=s["stage_index"]) for s in inputs.steps]
        calendar = BusinessCalendar.from_dict(inputs.calendar) if inputs.calendar else None
        result = measure_journey(table, inputs.activities, steps, calendar=calendar, progress=progress)
        progress("saving", 0.0)
        overlay.store_snapshot(snapshot_id, result.to_dict())
        return "finished"
    except MiningInputError as error:
        db.session.rollback()
        overlay.fail_snapshot(snapshot_id, str(error))
        return "failed"
    except FileNotFoundError:
        db.session.rollback()
        overlay.fail_snapshot(snapshot_id, "The log's file is missing from storage. Upload the log again.")
        return "failed"
    except Exception as error:  # a bug: fail visibly with the reason, keep everything else
        log.exception("measurement %s failed", snapshot_id)
        db.session.rollback()
        overlay.fail_snapshot(
            snapshot_id, f"Measuring failed unexpectedly ({type(error).__name__}: {error}). Measure again."
        )
        return "failed"
    finally:
        beat.stop.set()
        beat.join(timeout=10)


@tenant_job
def draft_journey(event_log_id: int, user_id: int, title: str) -> int:
    """Propose a journey from a mined log and save it as a draft the team edits; returns its id."""
    from webapp.services import Actor
    from webapp.services import eventlogs as eventlog_service
    from webapp.services import journeys as journey_service
    from worker.mining import read_log
    from worker.mining.drafting import draft_journey as draft

    event_log = eventlog_service.get(event_log_id)
    run = eventlog_service.latest_finished_run(event_log, unfiltered=True)
    with get_storage().local_path(event_log.storage_key) as path:
        table = read_log(path, _mapping(run.mapping if run else event_log.mapping))
    journey = journey_service.import_json(draft(table, title=title), Actor(user_id))
    return journey.id
