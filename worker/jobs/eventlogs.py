"""Event-log jobs: read a file's head for the mapping screen; mine a run with progress and heartbeat."""

from __future__ import annotations

import logging

from flask import current_app

from webapp.extensions import db
from webapp.services import eventlogs
from webapp.storage import get_storage
from worker.jobs import Heartbeat, tenant_job

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """The user asked to stop this run."""


@tenant_job
def inspect_log(event_log_id: int) -> str:
    """Preview the first rows and propose a mapping (XES: standard keys, so mining starts at once)."""
    from worker.mining import MiningInputError, preview

    event_log = eventlogs.get(event_log_id)
    try:
        with get_storage().local_path(event_log.storage_key) as path:
            result = preview(path, n_rows=20).to_dict()
    except MiningInputError as error:
        eventlogs.record_unreadable(event_log_id, str(error))
        return "unreadable"
    except Exception as error:  # whatever the file holds, the user learns it and the upload stays
        log.exception("preview of log %s failed", event_log_id)
        db.session.rollback()
        eventlogs.record_unreadable(
            event_log_id,
            f"We could not read the start of this file ({type(error).__name__}: {error}). Check that it is a "
            "CSV, XES or Parquet export and upload it again.",
        )
        return "unreadable"
    eventlogs.record_preview(event_log_id, result)
    eventlogs.start_when_mapped(event_log_id)
    return "previewed"


def _mapping(raw: dict | None):
    from worker.mining import ColumnMapping

    if not raw or not raw.get("case"):
        return None  # XES: its standard keys
    return ColumnMapping(
        case=raw["case"],
        activity=raw["activity"],
        timestamp=raw["timestamp"],
        start_timestamp=raw.get("start_timestamp"),
        resource=raw.get("resource"),
        timestamp_format=raw.get("timestamp_format"),
        timezone=raw.get("timezone"),
    )


@tenant_job
def mine_run(run_id: int) -> str:
    """Mine one run: reading, sorting, discovering, saving, with the row as the source of truth."""
    from worker.mining import Filters, MiningInputError, mine

    run = eventlogs.begin_run(run_id)
    if run is None:
        return "nothing to do"
    organisation_id, storage_key = run.organisation_id, run.event_log.storage_key
    mapping = _mapping(run.mapping)
    filters = Filters.from_dict(run.filters)
    beat = Heartbeat(
        current_app._get_current_object(),
        organisation_id,
        lambda: eventlogs.heartbeat(run_id),
        f"heartbeat-{run_id}",
    )
    beat.start()

    def progress(phase: str, fraction: float) -> None:
        if beat.cancelled.is_set() or not eventlogs.report_progress(run_id, phase, fraction):
            raise Cancelled

    try:
        with get_storage().local_path(storage_key) as path:
            result = mine(path, mapping, progress=progress, filters=filters)
        progress("saving", 0.0)
        eventlogs.store_results(run_id, result.to_dict())
        return "finished"
    except Cancelled:
        db.session.rollback()
        eventlogs.finish_cancelled(run_id)
        return "cancelled"
    except MiningInputError as error:
        db.session.rollback()
        eventlogs.fail_run(run_id, str(error))
        return "failed"
    except FileNotFoundError:
        db.session.rollback()
        eventlogs.fail_run(run_id, "The uploaded file is missing from storage. Upload it again.")
        return "failed"
    except MemoryError:
        db.session.rollback()
        eventlogs.fail_run(
            run_id, "The log is too large for this worker's memory. Filter the export, or add memory."
        )
        return "failed"
    except Exception as error:  # an unexpected bug: fail visibly with the reason, keep the upload
        log.exception("mining run %s failed", run_id)
        db.session.rollback()
        eventlogs.fail_run(
            run_id,
            f"Mining failed unexpectedly ({type(error).__name__}: {error}). Try again; "
            "if it fails again, report it with the log's name.",
        )
        return "failed"
    finally:
        beat.stop.set()
        beat.join(timeout=10)


@tenant_job
def reconcile() -> list[int]:
    """Periodic sweep (any worker may run it): re-drive or fail runs whose worker died."""
    return eventlogs.reconcile_all()
