"""Event logs: upload, mapping, mining runs (queued, watched, reconciled), results, deletion.

The web process never reads an upload whole and never imports the miner: it streams the file to
storage and enqueues jobs by dotted path; workers inspect and mine.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePath
from typing import Any, BinaryIO

import sqlalchemy as sa
from flask import current_app
from redis.exceptions import RedisError

from webapp import queue, tenancy
from webapp.extensions import db
from webapp.models import (
    ActivityStat,
    CaseDurationBin,
    DfgEdge,
    EventLog,
    LogSummary,
    MiningRun,
    Organisation,
    SavedMapping,
    VariantStat,
)
from webapp.models.types import utcnow
from webapp.services import Actor, NotFound, ServiceError, audit
from webapp.storage import TooLarge, get_storage, new_key

logger = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".csv.gz": "csv",
    ".tsv.gz": "csv",
    ".xes": "xes",
    ".xes.gz": "xes",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MAPPING_ROLES = ("case", "activity", "timestamp", "start_timestamp", "resource")
REQUIRED_ROLES = ("case", "activity", "timestamp")
ROLE_LABELS = {
    "case": "Case id",
    "activity": "Activity",
    "timestamp": "Timestamp",
    "start_timestamp": "Start timestamp",
    "resource": "Resource",
}
ACTIVE = ("queued", "running")
# The routes that receive a log file: their body may be MAX_UPLOAD_BYTES, not the forms' MAX_CONTENT_LENGTH.
UPLOAD_ENDPOINTS = ("orgs.eventlogs.upload", "api.upload_event_log")
# While Redis is away, uploads and runs are kept and queued by the reconciler once it is back.
QUEUE_PAUSED = (
    "The file is saved. Background work is paused for a moment, so reading it waits; it starts by itself "
    "when the queue is back. You can leave this page."
)
RUN_QUEUE_PAUSED = "Background work is paused for a moment; this run starts by itself when the queue is back."


def too_large_message(limit_bytes: int) -> str:
    """What a person sees when the upload is over the limit (streamed, or declared up front)."""
    mib = 1024 * 1024
    limit = f"{limit_bytes / mib:,.0f} MiB" if limit_bytes >= mib else f"{limit_bytes:,} bytes"
    return (
        f"The file is larger than the limit of {limit}. Filter the export to a shorter period, or "
        "compress it (.csv.gz, .xes.gz)."
    )


def file_format(filename: str) -> str:
    """csv, xes or parquet from the file name; ServiceError for anything else."""
    lower = PurePath(filename.lower())
    two = "".join(lower.suffixes[-2:])
    fmt = FORMATS.get(two) or FORMATS.get(lower.suffix)
    if fmt is None:
        raise ServiceError(
            f"{filename!r} is not a file we can read. Upload CSV or TSV (also .csv.gz), XES (.xes, .xes.gz) "
            "or Parquet.",
            "file",
        )
    return fmt


def upload(
    filename: str, stream: BinaryIO, actor: Actor, name: str | None = None, *, inspect: bool = True
) -> EventLog:
    """Stream a file to storage, record it, and ask a worker to read its first rows."""
    filename = PurePath(filename or "").name
    if not filename:
        raise ServiceError("Choose a file to upload.", "file")
    fmt = file_format(filename)
    org_id = tenancy.current().organisation_id
    key = new_key(org_id, filename)
    limit = current_app.config["MAX_UPLOAD_BYTES"]
    storage = get_storage()
    try:
        stored = storage.save(key, stream, limit)
    except TooLarge:
        raise ServiceError(too_large_message(limit), "file")
    if stored.size_bytes == 0:
        storage.delete(key)
        raise ServiceError(
            "The file is empty. Export the log again and upload the file with its rows.", "file"
        )
    duplicate = db.session.scalar(
        sa.select(EventLog).where(EventLog.sha256 == stored.sha256).order_by(EventLog.id).limit(1)
    )
    log = EventLog(
        name=(name or "").strip()[:200] or PurePath(filename).name.split(".")[0][:200],
        filename=filename[:255],
        file_format=fmt,
        storage_key=key,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
        uploaded_by_id=actor.user_id,
        duplicate_of_id=duplicate.id if duplicate else None,
        status="uploaded",
    )
    db.session.add(log)
    audit.record(
        actor, "eventlog.upload", log.name, filename=filename, bytes=stored.size_bytes, sha256=stored.sha256
    )
    db.session.commit()
    if not inspect:
        return log
    try:
        _enqueue_inspection(log)
    except RedisError as error:
        logger.warning("upload %s kept, its preview waits for Redis: %s", log.id, error)
        log.queue_paused = QUEUE_PAUSED  # read by the views; the reconciler queues the preview later
    return log


def _inspect_job_id(log_id: int) -> str:
    return f"inspect-log-{log_id}"


def _enqueue_inspection(log: EventLog) -> None:
    queue.enqueue(
        "default",
        "worker.jobs.eventlogs.inspect_log",
        log.id,
        organisation_id=log.organisation_id,
        description=f"preview of {log.filename}",
        job_timeout=300,
        retries=1,
        job_id=_inspect_job_id(log.id),
    )


def get(log_id: int) -> EventLog:
    """The current organisation's log, or NotFound (the same for another organisation's)."""
    log = db.session.scalar(sa.select(EventLog).where(EventLog.id == log_id))
    if log is None:
        raise NotFound("No such event log.")
    return log


def all_logs() -> list[EventLog]:
    """The organisation's logs, newest first."""
    return list(
        db.session.scalars(sa.select(EventLog).order_by(EventLog.created_at.desc(), EventLog.id.desc()))
    )


def latest_run(log: EventLog) -> MiningRun | None:
    """The most recent mining run of a log."""
    return db.session.scalar(
        sa.select(MiningRun).where(MiningRun.event_log_id == log.id).order_by(MiningRun.id.desc()).limit(1)
    )


@dataclass(frozen=True)
class GaveWay:
    """How long a running mining job has been paused so far to give way to the site."""

    paused_s: float
    elapsed_s: float
    paused_now: bool


def gave_way(run: MiningRun | None) -> GaveWay | None:
    """What the worker's governor published about a running run (worker/governor.py), or None when the
    run has not given way, is not running, or Redis cannot tell."""
    if run is None or run.status != "running" or not run.rq_job_id:
        return None
    try:
        figures = queue.redis_connection().hgetall(queue.gave_way_key(run.rq_job_id))
    except (RedisError, queue.RedisNotConfigured):
        return None
    try:
        return GaveWay(
            paused_s=float(figures[b"paused_s"]),
            elapsed_s=float(figures[b"elapsed_s"]),
            paused_now=figures[b"paused"] == b"1",
        )
    except (KeyError, ValueError):
        return None


def latest_finished_run(log: EventLog, *, unfiltered: bool = False) -> MiningRun | None:
    """The most recent run with results (of all cases, when `unfiltered`)."""
    runs = db.session.scalars(
        sa.select(MiningRun)
        .where(MiningRun.event_log_id == log.id, MiningRun.status == "finished")
        .order_by(MiningRun.id.desc())
    )
    for run in runs:
        if not unfiltered or not run.filters:
            return run
    return None


def finished_run(log: EventLog, run_id: int) -> MiningRun:
    """One finished run of this log (NotFound otherwise)."""
    run = db.session.scalar(
        sa.select(MiningRun).where(
            MiningRun.id == run_id, MiningRun.event_log_id == log.id, MiningRun.status == "finished"
        )
    )
    if run is None:
        raise NotFound("No such mining run.")
    return run


def apply_filters(log: EventLog, raw: dict[str, Any], actor: Actor) -> MiningRun:
    """Re-mine the log in the background, keeping only the cases the filters select."""
    current = latest_run(log)
    if current is not None and current.status in ACTIVE:
        raise ServiceError("This log is being mined already; wait for it or cancel it first.")
    base = latest_finished_run(log, unfiltered=True)
    if base is None:
        raise ServiceError("Mine the whole log once before filtering it.")
    summary = db.session.scalar(sa.select(LogSummary).where(LogSummary.run_id == base.id))
    filters: dict[str, Any] = {}
    from datetime import date

    for key in ("start", "end"):
        value = (raw.get(key) or "").strip()
        if value:
            try:
                filters[key] = date.fromisoformat(value).isoformat()
            except ValueError:
                raise ServiceError(f"{value!r} is not a date (use YYYY-MM-DD).", key)
    if filters.get("start") and filters.get("end") and filters["start"] > filters["end"]:
        raise ServiceError("The period ends before it starts.", "end")
    known = (summary.attribute_values if summary else None) or {}
    attributes = {}
    for column, values in (raw.get("attributes") or {}).items():
        values = [v for v in values if v]
        if not values:
            continue
        if column not in known:
            raise ServiceError(f"The log has no attribute {column!r} to filter on.")
        unknown = [v for v in values if v not in known[column]]
        if unknown:
            raise ServiceError(f"{column} has no value {unknown[0]!r} in this log.")
        attributes[column] = values
    if attributes:
        filters["attributes"] = attributes
    variant_json = raw.get("variant")
    if variant_json:
        import json

        try:
            activities = json.loads(variant_json)
        except ValueError:
            activities = None
        known_variants = db.session.scalars(
            sa.select(VariantStat.activities).where(VariantStat.run_id == base.id)
        )
        if not isinstance(activities, list) or activities not in list(known_variants):
            raise ServiceError("Choose one of the listed variants.", "variant")
        filters["variant"] = activities
    if not filters:
        raise ServiceError("Choose at least one filter: a period, an attribute value or a variant.")
    audit.record(actor, "eventlog.filter", log.name, **{k: str(v) for k, v in filters.items()})
    return start_run(log, filters=filters)


def describe_filters(filters: dict[str, Any] | None) -> list[str]:
    """Filters in words, for the banner over filtered results."""
    if not filters:
        return []
    words = []
    if filters.get("start") or filters.get("end"):
        words.append(f"cases started {filters.get('start') or 'any time'} to {filters.get('end') or 'now'}")
    for column, values in (filters.get("attributes") or {}).items():
        words.append(f"{column} is {' or '.join(values)}")
    if filters.get("variant"):
        words.append("variant " + " → ".join(filters["variant"]))
    return words


def columns_signature(columns: list[str]) -> str:
    """Identifies a set of columns regardless of order (to reuse a saved mapping)."""
    return hashlib.sha256("\x1f".join(sorted(columns)).encode()).hexdigest()


def record_preview(log_id: int, preview: dict[str, Any]) -> EventLog:
    """Store what a worker read from the file's head; propose the saved or guessed mapping."""
    log = get(log_id)
    saved = db.session.scalar(
        sa.select(SavedMapping).where(SavedMapping.columns_signature == columns_signature(preview["columns"]))
    )
    preview = dict(preview)
    preview["saved_mapping"] = saved.mapping if saved else None
    log.preview = preview
    log.error = None
    db.session.commit()
    return log


def set_pending_mapping(log: EventLog, raw: dict[str, Any]) -> None:
    """A mapping given with the upload (API): used as soon as the worker has read the file's columns."""
    missing = [ROLE_LABELS[r] for r in REQUIRED_ROLES if not (raw.get(r) or "").strip()]
    if missing and log.file_format != "xes":
        raise ServiceError(
            "A mapping needs case, activity and timestamp columns; missing: " + ", ".join(missing)
        )
    log.mapping = {k: ((v or "").strip() or None) for k, v in raw.items()}
    db.session.commit()


def start_when_mapped(log_id: int) -> MiningRun | None:
    """After the preview: an XES file, or a log uploaded with a mapping, starts mining at once."""
    log = get(log_id)
    if latest_run(log) is not None:
        return None
    if log.file_format == "xes" and not log.mapping:
        log.mapping = {}
        return start_run(log)
    if log.mapping:
        try:
            log.mapping = validate_mapping(log, log.mapping)
        except MappingErrors as error:
            columns = ", ".join(repr(c) for c in (log.preview or {}).get("columns", []))
            log.status = "failed"
            log.error = f"{error.message} The file's columns are: {columns}."
            db.session.commit()
            return None
        _remember_mapping(log, log.mapping)
        return start_run(log)
    return None


def record_unreadable(log_id: int, message: str) -> None:
    """The file could not even be previewed: say why, keep the file."""
    log = get(log_id)
    log.status = "failed"
    log.error = message
    log.preview = log.preview or {"columns": [], "rows": []}
    db.session.commit()


def proposed_mapping(log: EventLog) -> dict[str, Any]:
    """What the mapping form starts with: the confirmed mapping, a saved one, or the worker's guess."""
    if log.mapping:
        return log.mapping
    preview = log.preview or {}
    if preview.get("saved_mapping"):
        return preview["saved_mapping"]
    proposal = preview.get("proposal") or {}
    return {role: proposal.get(role) for role in (*MAPPING_ROLES, "timestamp_format")}


class MappingErrors(ServiceError):
    """Per-field problems with a mapping."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("The column mapping needs a correction: " + " ".join(errors.values()))
        self.errors = errors


def validate_mapping(log: EventLog, raw: dict[str, Any]) -> dict[str, Any]:
    """A clean mapping, or MappingErrors that say per field what to fix."""
    columns = (log.preview or {}).get("columns") or []
    mapping: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for role in MAPPING_ROLES:
        value = (raw.get(role) or "").strip() or None
        if value is None and role in REQUIRED_ROLES and log.file_format != "xes":
            errors[role] = f"Choose the column that holds the {ROLE_LABELS[role].lower()}."
        elif value is not None and value not in columns:
            errors[role] = f"{ROLE_LABELS[role]}: the file has no column {value!r}."
        mapping[role] = value
    chosen = [mapping[r] for r in MAPPING_ROLES if mapping[r]]
    duplicates = {c for c in chosen if chosen.count(c) > 1}
    for role in MAPPING_ROLES:
        if mapping[role] in duplicates and role not in errors:
            errors[role] = f"{ROLE_LABELS[role]}: column {mapping[role]!r} is chosen for two roles."
    mapping["timestamp_format"] = (raw.get("timestamp_format") or "").strip() or None
    mapping["timezone"] = (raw.get("timezone") or "").strip() or None
    if mapping["timezone"]:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(mapping["timezone"])
        except (ZoneInfoNotFoundError, ValueError):
            errors["timezone"] = (
                f"Time zone {mapping['timezone']!r} is unknown; use a name like Europe/Amsterdam."
            )
    if errors:
        raise MappingErrors(errors)
    return mapping


def confirm_mapping(log: EventLog, raw: dict[str, Any], actor: Actor) -> MiningRun:
    """Save the mapping (and remember it for these columns), then start mining."""
    if latest_run(log) is not None and latest_run(log).status in ACTIVE:
        raise ServiceError("This log is being mined already; wait for it or cancel it first.")
    mapping = validate_mapping(log, raw)
    log.mapping = mapping
    _remember_mapping(log, mapping)
    audit.record(actor, "eventlog.mapping", log.name, **{k: v for k, v in mapping.items() if v})
    return start_run(log)


def _remember_mapping(log: EventLog, mapping: dict[str, Any]) -> None:
    """Keep the confirmed mapping for the next upload with the same columns."""
    if log.file_format == "xes":
        return
    signature = columns_signature((log.preview or {}).get("columns") or [])
    saved = db.session.scalar(sa.select(SavedMapping).where(SavedMapping.columns_signature == signature))
    if saved is None:
        db.session.add(SavedMapping(columns_signature=signature, mapping=mapping))
    else:
        saved.mapping = mapping


def timeout_for(size_bytes: int) -> int:
    """Per-job timeout that scales with the file: 5 min plus 10 s per MiB, at most 6 hours."""
    return int(min(6 * 3600, 300 + 10 * size_bytes / (1024 * 1024)))


def start_run(
    log: EventLog, attempt: int = 0, *, enqueue: bool = True, filters: dict[str, Any] | None = None
) -> MiningRun:
    """A new queued run for the log's current mapping, and its job (unless the caller mines in-process)."""
    run = MiningRun(
        filters=filters or None,
        event_log_id=log.id,
        status="queued",
        phase="queued",
        progress=0,
        attempt=attempt,
        input_sha256=log.sha256,
        mapping=log.mapping,
        timeout_s=timeout_for(log.size_bytes),
    )
    db.session.add(run)
    log.status = "queued"
    log.error = None
    db.session.commit()
    if enqueue:
        _enqueue(run)
    return run


def _run_job_id(run: MiningRun) -> str:
    return f"mining-run-{run.id}-{run.attempt}"


def _enqueue(run: MiningRun) -> None:
    """Queue the run's job; with Redis away, the run stays queued (and says so) for the reconciler."""
    try:
        job = queue.enqueue(
            "mining",
            "worker.jobs.eventlogs.mine_run",
            run.id,
            organisation_id=run.organisation_id,
            description=f"mining run {run.id}",
            job_timeout=run.timeout_s,
            retries=0,  # retries are ours: the reconciler re-drives a run whose worker died
            job_id=_run_job_id(run),
        )
    except RedisError as error:
        logger.warning("mining run %s stays queued until Redis is back: %s", run.id, error)
        run.error = RUN_QUEUE_PAUSED
        db.session.commit()
        return
    run.rq_job_id = job.id
    if run.error == RUN_QUEUE_PAUSED:
        run.error = None
    db.session.commit()


def remine(log: EventLog, actor: Actor) -> MiningRun:
    """Mine the kept upload again with its mapping."""
    run = latest_run(log)
    if run is not None and run.status in ACTIVE:
        raise ServiceError("This log is being mined already.")
    if log.mapping is None and log.file_format != "xes":
        raise ServiceError("Confirm the column mapping first.")
    if not get_storage().exists(log.storage_key):
        raise ServiceError("The uploaded file is no longer in storage; upload it again.")
    audit.record(actor, "eventlog.remine", log.name)
    return start_run(log)


def cancel(log: EventLog, actor: Actor) -> None:
    """Stop a queued or running mining run; the upload is kept for another try."""
    run = latest_run(log)
    if run is None or run.status not in ACTIVE:
        raise ServiceError("Nothing is being mined for this log.")
    run.cancel_requested = True
    if run.status == "queued":
        _cancel_rq_job(run)
    _finish_cancelled(run, log)
    audit.record(actor, "eventlog.cancel", log.name)
    db.session.commit()


def _cancel_rq_job(run: MiningRun) -> None:
    from rq.exceptions import InvalidJobOperation, NoSuchJobError
    from rq.job import Job

    if not run.rq_job_id:
        return
    # With Redis away the job cannot be cancelled there; the run's cancel_requested stops it when it starts.
    with contextlib.suppress(NoSuchJobError, InvalidJobOperation, RedisError):
        Job.fetch(run.rq_job_id, connection=queue.redis_connection()).cancel()


def _finish_cancelled(run: MiningRun, log: EventLog) -> None:
    run.status = "cancelled"
    run.phase = "cancelled"
    run.finished_at = utcnow()
    log.status = "failed"
    log.error = "Mining was cancelled. The upload is kept: mine it again when you are ready."


def delete(log: EventLog, actor: Actor) -> None:
    """Remove the file and every result of the log."""
    run = latest_run(log)
    if run is not None and run.status in ACTIVE:
        run.cancel_requested = True
        _cancel_rq_job(run)
    get_storage().delete(log.storage_key)
    audit.record(actor, "eventlog.delete", log.name, filename=log.filename)
    db.session.delete(log)
    db.session.commit()


# --- what workers call ------------------------------------------------------------------------


def begin_run(run_id: int) -> MiningRun | None:
    """Mark a run running (one more attempt); None when there is nothing to do (finished, cancelled)."""
    run = db.session.get(MiningRun, run_id)
    if run is None or run.status in ("finished", "cancelled", "failed") or run.cancel_requested:
        return None
    now = utcnow()
    run.status = "running"
    run.phase = "reading"
    run.attempt += 1
    run.started_at = now
    run.heartbeat_at = now
    run.error = None
    run.event_log.status = "running"
    db.session.commit()
    return run


PHASE_SPANS = {"reading": (0, 55), "sorting": (55, 65), "discovering": (65, 90), "saving": (90, 100)}


def report_progress(run_id: int, phase: str, fraction: float) -> bool:
    """Store a run's phase and overall percentage; False when the user asked to cancel."""
    low, high = PHASE_SPANS.get(phase, (0, 100))
    run = db.session.get(MiningRun, run_id)
    if run is None:
        return False
    db.session.refresh(run)
    run.phase = phase
    run.progress = max(run.progress, int(low + (high - low) * max(0.0, min(1.0, fraction))))
    run.heartbeat_at = utcnow()
    cancelled = run.cancel_requested
    db.session.commit()
    return not cancelled


def heartbeat(run_id: int) -> bool:
    """Refresh a run's heartbeat; False when cancelled (or gone)."""
    result = db.session.execute(
        sa.update(MiningRun)
        .where(MiningRun.id == run_id, MiningRun.status == "running")
        .values(heartbeat_at=utcnow())
        .returning(MiningRun.cancel_requested)
    ).first()
    db.session.commit()
    return result is not None and not result[0]


def store_results(run_id: int, result: dict[str, Any]) -> None:
    """Write a run's results in one transaction (replacing any partial ones) and mark it finished."""
    run = db.session.get(MiningRun, run_id)
    if run is None or run.status == "finished":
        return  # idempotent: a finished run is never rewritten
    org = run.organisation_id
    for model in (LogSummary, ActivityStat, DfgEdge, VariantStat, CaseDurationBin):
        db.session.execute(sa.delete(model).where(model.run_id == run_id))
    summary = result["summary"]
    histogram = result["case_duration_histogram"]
    db.session.add(
        LogSummary(
            run_id=run_id,
            cases=summary["n_cases"],
            events=summary["n_events"],
            activities=summary["n_activities"],
            variants=summary["n_variants"],
            resources=summary["n_resources"],
            first_timestamp=_parse_iso(summary["first_timestamp"]),
            last_timestamp=_parse_iso(summary["last_timestamp"]),
            case_duration_mean_s=summary["case_duration_mean_s"],
            case_duration_median_s=summary["case_duration_median_s"],
            case_duration_p90_s=summary["case_duration_p90_s"],
            case_duration_min_s=summary["case_duration_min_s"],
            case_duration_max_s=summary["case_duration_max_s"],
            has_start_timestamps=summary["has_start_timestamps"],
            cases_with_rework=summary["cases_with_rework"],
            rework_share=summary["rework_share"],
            histogram_unit=histogram["unit"],
            attribute_values=result.get("attributes") or None,
        )
    )
    rows = [
        (
            ActivityStat,
            [
                {
                    **{
                        k: a[k]
                        for k in (
                            "events",
                            "cases",
                            "start_count",
                            "end_count",
                            "rework_cases",
                            "rework_events",
                            "rework_share",
                            "duration_mean_s",
                            "duration_median_s",
                            "resources",
                        )
                    },
                    "activity": a["activity"],
                }
                for a in result["activities"]
            ],
        ),
        (
            DfgEdge,
            [
                {
                    "source": e["source"],
                    "target": e["target"],
                    "frequency": e["count"],
                    "mean_s": e["mean_s"],
                    "median_s": e["median_s"],
                    "p90_s": e["p90_s"],
                    "min_s": e["min_s"],
                    "max_s": e["max_s"],
                }
                for e in result["dfg"]
            ],
        ),
        (
            VariantStat,
            [
                {
                    "rank": v["rank"],
                    "activities": v["activities"],
                    "cases": v["count"],
                    "share": v["share"],
                    "median_duration_s": v["median_duration_s"],
                    "mean_duration_s": v["mean_duration_s"],
                }
                for v in result["variants"]
            ],
        ),
        (
            CaseDurationBin,
            [
                {"lower_s": b["lower_s"], "upper_s": b["upper_s"], "cases": b["count"]}
                for b in histogram["bins"]
            ],
        ),
    ]
    for model, values in rows:
        if values:
            db.session.execute(
                sa.insert(model), [{**v, "run_id": run_id, "organisation_id": org} for v in values]
            )
    run.status = "finished"
    run.phase = "finished"
    run.progress = 100
    run.finished_at = utcnow()
    run.notes = result.get("notes") or []
    run.event_log.status = "finished"
    run.event_log.error = None
    db.session.commit()
    if not run.filters:
        from webapp.services import overlay as overlay_service  # overlay builds on this module

        overlay_service.on_log_mined(run.event_log_id)  # journeys linked to this log are measured again


def fail_run(run_id: int, message: str) -> None:
    """End a run as failed with a message a person can act on; the upload stays."""
    run = db.session.get(MiningRun, run_id)
    if run is None or run.status in ("finished", "cancelled"):
        return
    run.status = "failed"
    run.phase = "failed"
    run.error = message
    run.finished_at = utcnow()
    if run.filters and latest_finished_run(run.event_log, unfiltered=True):
        # A failed filter leaves the log's own results standing; only the filtered run failed.
        run.event_log.status = "finished"
    else:
        run.event_log.status = "failed"
        run.event_log.error = message
    db.session.commit()


def finish_cancelled(run_id: int) -> None:
    """The worker noticed a cancel request and stopped."""
    run = db.session.get(MiningRun, run_id)
    if run is not None and run.status in ACTIVE:
        _finish_cancelled(run, run.event_log)
        db.session.commit()


def _parse_iso(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def reconcile_organisation(now=None) -> list[int]:
    """Re-drive or fail the current organisation's runs whose worker stopped beating; returns run ids."""
    now = now or utcnow()
    stale_after = timedelta(seconds=current_app.config["MINING_HEARTBEAT_STALE_S"])
    stale = list(
        db.session.scalars(
            sa.select(MiningRun).where(
                MiningRun.status == "running", MiningRun.heartbeat_at < now - stale_after
            )
        )
    )
    handled = []
    for run in stale:
        log = run.event_log
        if run.attempt < run.max_attempts and not run.cancel_requested:
            run.status = "queued"
            run.phase = "queued"
            run.progress = 0
            run.error = f"The worker stopped during attempt {run.attempt}; trying again."
            log.status = "queued"
            db.session.commit()
            _enqueue(run)
        else:
            run.status = "failed"
            run.phase = "failed"
            run.finished_at = now
            run.error = (
                f"The worker stopped while mining, {run.attempt} times. The upload is kept: mine it again, "
                "and if it keeps failing, the file may be too large for the worker's memory."
            )
            log.status = "failed"
            log.error = run.error
            db.session.commit()
        handled.append(run.id)
    return handled + _requeue_lost(now, stale_after)


def _requeue_lost(now, stale_after: timedelta) -> list[int]:
    """Queue again what Redis does not hold: runs and previews the web could not queue while Redis was
    away, or that a restart of Redis lost. Only after `stale_after`, so a web process that is queueing
    right now is never raced. Returns the runs' ids."""
    from rq.job import Job

    connection = queue.redis_connection()
    requeued = []
    waiting_runs = db.session.scalars(
        sa.select(MiningRun).where(
            MiningRun.status == "queued",
            MiningRun.queued_at < now - stale_after,
            MiningRun.cancel_requested.is_(False),
        )
    )
    for run in list(waiting_runs):
        if not Job.exists(run.rq_job_id or _run_job_id(run), connection=connection):
            _enqueue(run)
            requeued.append(run.id)
    unread = db.session.scalars(
        sa.select(EventLog).where(
            EventLog.status == "uploaded", EventLog.preview.is_(None), EventLog.created_at < now - stale_after
        )
    )
    for log in list(unread):
        if not Job.exists(_inspect_job_id(log.id), connection=connection):
            _enqueue_inspection(log)
            logger.warning("queued the preview of upload %s again", log.id)
    return requeued


def reconcile_all() -> list[int]:
    """The reconciler's sweep over every organisation, each scoped in turn so RLS admits it: stale
    mining runs and stale journey measurements."""
    handled: list[int] = []
    from webapp.services import overlay as overlay_service  # overlay builds on this module

    previous = tenancy.current()
    for org_id in db.session.scalars(sa.select(Organisation.id)).all():
        tenancy.activate(org_id)
        handled += reconcile_organisation()
        handled += overlay_service.reconcile_organisation()
    if previous is not None:
        tenancy.activate(previous.organisation_id, previous.user_id)
    return handled


# --- reading results --------------------------------------------------------------------------


@dataclass
class Results:
    """A finished run's figures, as the pages and the API show them."""

    run: MiningRun
    summary: LogSummary
    activities: list[ActivityStat]
    edges: list[DfgEdge]
    variants: list[VariantStat]
    histogram: list[CaseDurationBin]

    @property
    def start_activities(self) -> dict[str, int]:
        return {a.activity: a.start_count for a in self.activities if a.start_count}

    @property
    def end_activities(self) -> dict[str, int]:
        return {a.activity: a.end_count for a in self.activities if a.end_count}

    def dfg_json(self) -> dict[str, Any]:
        """The directly-follows graph as the API and the process map read it."""
        return {
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "frequency": e.frequency,
                    "mean_s": e.mean_s,
                    "median_s": e.median_s,
                    "p90_s": e.p90_s,
                }
                for e in self.edges
            ],
            "start_activities": self.start_activities,
            "end_activities": self.end_activities,
        }

    def bottlenecks(self, limit: int = 10) -> list[dict[str, Any]]:
        """Edges ranked by median wait x frequency: where the most case time is spent waiting."""
        ranked = sorted(self.edges, key=lambda e: e.median_s * e.frequency, reverse=True)
        total = sum(e.median_s * e.frequency for e in self.edges) or 1.0
        return [
            {"edge": e, "impact_s": e.median_s * e.frequency, "share": e.median_s * e.frequency / total}
            for e in ranked[:limit]
            if e.median_s > 0
        ]


def results(
    log: EventLog, variant_limit: int = 1000, *, run_id: int | None = None, unfiltered: bool = False
) -> Results | None:
    """A finished run's results (the latest, or `run_id`), or None."""
    run = finished_run(log, run_id) if run_id else latest_finished_run(log, unfiltered=unfiltered)
    if run is None:
        return None

    def rows(model, *order):
        return list(db.session.scalars(sa.select(model).where(model.run_id == run.id).order_by(*order)))

    summary = db.session.scalar(sa.select(LogSummary).where(LogSummary.run_id == run.id))
    return Results(
        run=run,
        summary=summary,
        activities=rows(ActivityStat, ActivityStat.events.desc(), ActivityStat.activity),
        edges=rows(DfgEdge, DfgEdge.frequency.desc(), DfgEdge.source, DfgEdge.target),
        variants=list(
            db.session.scalars(
                sa.select(VariantStat)
                .where(VariantStat.run_id == run.id)
                .order_by(VariantStat.rank)
                .limit(variant_limit)
            )
        ),
        histogram=rows(CaseDurationBin, CaseDurationBin.lower_s),
    )
