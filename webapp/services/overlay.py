"""Data vs story: link a journey to mined logs, map activities to steps, measure in the background, read back.

The figures are computed by `worker.jobs.overlay.measure_snapshot` with `worker.mining.overlay` (a pure
library) and stored as rows; everything here reads and writes those rows. A snapshot freezes the
mapping version and the journey layout it was computed with; `definition` hashes both (and the
business calendar), so a trend across snapshots can say where the definition changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm
from flask import current_app

from webapp import queue, tenancy
from webapp.extensions import db
from webapp.models import ActivityStat, EventLog, Lane, Stage, Step
from webapp.models.overlay import (
    BusinessCalendarSetting,
    JourneyLogLink,
    MappingVersion,
    MeasurementSnapshot,
    StepMeasurement,
    TransitionMeasurement,
)
from webapp.models.types import utcnow
from webapp.services import Actor, NotFound, ServiceError, audit
from webapp.services import eventlogs as eventlog_service
from webapp.services import journeys as journey_service

logger = logging.getLogger(__name__)
ACTIVE = ("queued", "running")
MAX_ATTEMPTS = 2
DEFAULT_CALENDAR = {
    "timezone": "UTC",
    "working_days": [0, 1, 2, 3, 4],
    "day_start": "09:00",
    "day_end": "17:00",
    "holidays": [],
}


# --- links --------------------------------------------------------------------------------------


def links(journey_id: int) -> list[JourneyLogLink]:
    """The journey's links to logs, oldest first."""
    journey_service.get_journey(journey_id)
    return _links(journey_id)


def _links(journey_id: int) -> list[JourneyLogLink]:
    """`links` for a caller that has already found the journey, each with its log (pages name it)."""
    return list(db.session.scalars(_LINKS, {"journey_id": journey_id}))


# The data-vs-story page and the measurement progress bars run these on every view and poll
# (see tenancy.prebuilt).
_LINKS = tenancy.prebuilt(
    sa.select(JourneyLogLink)
    .where(JourneyLogLink.journey_id == sa.bindparam("journey_id"))
    .options(sa.orm.joinedload(JourneyLogLink.event_log))
    .order_by(JourneyLogLink.id)
)
_CURRENT_MAPPING = tenancy.prebuilt(
    sa.select(MappingVersion)
    .where(MappingVersion.link_id == sa.bindparam("link_id"))
    .order_by(MappingVersion.number.desc())
    .limit(1)
)
_LATEST_SNAPSHOT = tenancy.prebuilt(
    sa.select(MeasurementSnapshot)
    .where(MeasurementSnapshot.link_id == sa.bindparam("link_id"))
    .order_by(MeasurementSnapshot.id.desc())
    .limit(1)
)
_LATEST_FINISHED = tenancy.prebuilt(
    sa.select(MeasurementSnapshot)
    .where(MeasurementSnapshot.link_id == sa.bindparam("link_id"), MeasurementSnapshot.status == "finished")
    .order_by(MeasurementSnapshot.id.desc())
    .limit(1)
)
_CALENDAR = tenancy.prebuilt(sa.select(BusinessCalendarSetting))
_STEP_ROWS = tenancy.prebuilt(
    sa.select(StepMeasurement).where(
        StepMeasurement.snapshot_id.in_(sa.bindparam("snapshot_ids", expanding=True))
    )
)
_TRANSITION_ROWS = tenancy.prebuilt(
    sa.select(TransitionMeasurement)
    .where(TransitionMeasurement.snapshot_id == sa.bindparam("snapshot_id"))
    .order_by(TransitionMeasurement.frequency.desc())
)


def get_link(journey_id: int, link_id: int) -> JourneyLogLink:
    link = db.session.get(JourneyLogLink, link_id)
    if link is None or link.journey_id != journey_id:
        raise NotFound("This journey is not linked to that log.")
    return link


def link_for_log(journey_id: int, event_log_id: int) -> JourneyLogLink:
    link = db.session.scalar(
        sa.select(JourneyLogLink).where(
            JourneyLogLink.journey_id == journey_id, JourneyLogLink.event_log_id == event_log_id
        )
    )
    if link is None:
        raise NotFound(f"This journey is not linked to event log {event_log_id}; link it first.")
    return link


def linkable_logs(journey_id: int, linked: set[int] | None = None) -> list[sa.Row]:
    """Mined logs of the organisation not yet linked to the journey, newest first, as (id, name) rows
    for the picker (`linked`: the ids of the logs it is linked to, when the caller has them). Plain
    rows: whole logs would carry their previews and mappings to a select box."""
    if linked is None:
        linked = {link.event_log_id for link in links(journey_id)}
    query = (
        sa.select(EventLog.id, EventLog.name)
        .where(EventLog.status == "finished")
        .order_by(EventLog.created_at.desc(), EventLog.id.desc())
    )
    if linked:
        query = query.where(EventLog.id.not_in(linked))
    return list(db.session.execute(query))


def link_log(journey_id: int, event_log_id: int, actor: Actor) -> JourneyLogLink:
    """Link a mined log; the mapping proposal waits for the user to confirm it."""
    journey = journey_service.get_journey(journey_id)
    log = db.session.get(EventLog, event_log_id)
    if log is None:
        raise NotFound("There is no such event log.")
    if eventlog_service.latest_finished_run(log, unfiltered=True) is None:
        raise ServiceError(
            f"“{log.name}” has not been mined yet; wait until its mining has finished, then link it.",
            field="event_log",
        )
    existing = db.session.scalar(
        sa.select(JourneyLogLink).where(
            JourneyLogLink.journey_id == journey_id, JourneyLogLink.event_log_id == event_log_id
        )
    )
    if existing is not None:
        return existing
    link = JourneyLogLink(journey_id=journey.id, event_log_id=log.id, created_by_id=actor.user_id)
    db.session.add(link)
    db.session.flush()
    audit.record(actor, "journey.log_linked", f"journey {journey.id}", event_log=log.id, name=log.name)
    db.session.commit()
    return link


def unlink(journey_id: int, link_id: int, actor: Actor) -> None:
    """Remove a link with its mappings and snapshots."""
    link = get_link(journey_id, link_id)
    audit.record(actor, "journey.log_unlinked", f"journey {journey_id}", event_log=link.event_log_id)
    db.session.delete(link)
    db.session.commit()


# --- activities and mappings ----------------------------------------------------------------------


def log_activities(event_log: EventLog) -> list[tuple[str, int]]:
    """(activity, events) of the log's latest unfiltered mining, most frequent first."""
    run = eventlog_service.latest_finished_run(event_log, unfiltered=True)
    if run is None:
        return []
    rows = db.session.execute(
        sa.select(ActivityStat.activity, ActivityStat.events)
        .where(ActivityStat.run_id == run.id)
        .order_by(ActivityStat.events.desc(), ActivityStat.activity)
    ).all()
    return [(name, events) for name, events in rows]


def current_mapping(link: JourneyLogLink) -> MappingVersion | None:
    return db.session.scalar(_CURRENT_MAPPING, {"link_id": link.id})


def mapping_versions(link: JourneyLogLink) -> list[MappingVersion]:
    return list(
        db.session.scalars(
            sa.select(MappingVersion).where(MappingVersion.link_id == link.id).order_by(MappingVersion.number)
        )
    )


def _steps(journey_id: int) -> list[tuple[Step, Stage, Lane]]:
    return list(
        db.session.execute(
            sa.select(Step, Stage, Lane)
            .join(Stage, Step.stage_id == Stage.id)
            .join(Lane, Step.lane_id == Lane.id)
            .where(Step.journey_id == journey_id)
            .order_by(Stage.position, Lane.position, Step.position)
        ).all()
    )


def _earlier_choices() -> dict[str, str]:
    """Activity name -> step name from the organisation's earlier confirmed mappings (newest wins)."""
    rows = db.session.execute(
        sa.select(MappingVersion.activities, MappingVersion.link_id).order_by(MappingVersion.id)
    ).all()
    step_ids = {step_id for activities, _ in rows for step_id in activities.values()}
    names = (
        dict(db.session.execute(sa.select(Step.id, Step.name).where(Step.id.in_(step_ids))).all())
        if step_ids
        else {}
    )
    earlier: dict[str, str] = {}
    for activities, _ in rows:
        for activity, step_id in activities.items():
            if step_id in names:
                earlier[activity] = names[step_id]
    return earlier


def proposal(link: JourneyLogLink) -> dict[str, int]:
    """The mapping to show: the confirmed one, else one proposed by name and by earlier mappings."""
    mapping = current_mapping(link)
    steps = [(step.id, step.name) for step, _, _ in _steps(link.journey_id)]
    if mapping is not None:
        valid = {step_id for step_id, _ in steps}
        return {a: s for a, s in mapping.activities.items() if s in valid}
    from webapp.services.activity_matching import propose

    activities = [name for name, _ in log_activities(link.event_log)]
    return propose(activities, steps, _earlier_choices())


def resolve_mapping(journey_id: int, link: JourneyLogLink, raw: Mapping[str, Any]) -> dict[str, int]:
    """{activity: step id or step name} -> {activity: step id}; unknown names and ambiguity are errors."""
    if not isinstance(raw, Mapping):
        raise ServiceError("“activities” must be an object of activity name → step name or id.")
    steps = [step for step, _, _ in _steps(journey_id)]
    by_id = {step.id: step for step in steps}
    by_name: dict[str, list[Step]] = {}
    for step in steps:
        by_name.setdefault(step.name.strip().casefold(), []).append(step)
    known = {name for name, _ in log_activities(link.event_log)}
    resolved: dict[str, int] = {}
    errors: list[str] = []
    for activity, target in raw.items():
        if activity not in known:
            errors.append(f"“{activity}” is not an activity of this log.")
            continue
        if target is None or target == "":
            continue  # explicitly unmapped
        if isinstance(target, bool):
            errors.append(f"“{activity}”: give a step name or id, not {target}.")
        elif isinstance(target, int) or (
            isinstance(target, str) and target.strip().isdigit() and int(target) in by_id
        ):
            step_id = int(target)
            if step_id not in by_id:
                errors.append(f"“{activity}”: step {step_id} is not a step of this journey.")
            else:
                resolved[activity] = step_id
        elif isinstance(target, str):
            matches = by_name.get(target.strip().casefold(), [])
            if not matches:
                errors.append(f"“{activity}”: there is no step named “{target}” in this journey.")
            elif len(matches) > 1:
                ids = ", ".join(str(s.id) for s in matches)
                errors.append(
                    f"“{activity}”: {len(matches)} steps are named “{target}” (ids {ids}); use the id."
                )
            else:
                resolved[activity] = matches[0].id
        else:
            errors.append(f"“{activity}”: give a step name or id.")
    if errors:
        raise ServiceError(
            " ".join(errors[:20]) + (f" (and {len(errors) - 20} more)" if len(errors) > 20 else "")
        )
    return resolved


def save_mapping(
    journey_id: int, link_id: int, raw: Mapping[str, Any], actor: Actor, *, enqueue: bool = True
) -> MappingVersion:
    """Confirm a mapping: a new version when it differs, then measure with it in the background
    (`enqueue=False`: only create the queued snapshot, for a caller that measures in-process)."""
    link = get_link(journey_id, link_id)
    activities = resolve_mapping(journey_id, link, raw)
    mapping = current_mapping(link)
    if mapping is None or mapping.activities != activities:
        mapping = MappingVersion(
            link_id=link.id,
            number=(mapping.number + 1) if mapping else 1,
            activities=activities,
            created_by_id=actor.user_id,
        )
        db.session.add(mapping)
        db.session.flush()
        audit.record(
            actor,
            "journey.mapping_saved",
            f"journey {journey_id}",
            event_log=link.event_log_id,
            version=mapping.number,
            mapped=len(activities),
        )
    db.session.commit()
    measure(link, enqueue=enqueue)
    return mapping


def mapping_json(link: JourneyLogLink, mapping: MappingVersion | None) -> dict[str, Any]:
    activities = dict(mapping.activities) if mapping else {}
    names = {step.id: step.name for step, _, _ in _steps(link.journey_id)}
    return {
        "event_log": link.event_log_id,
        "version": mapping.number if mapping else None,
        "activities": {a: {"step_id": s, "step": names.get(s)} for a, s in sorted(activities.items())},
        "unmapped_activities": [a for a, _ in log_activities(link.event_log) if a not in activities],
    }


# --- measuring ------------------------------------------------------------------------------------


def calendar() -> dict[str, Any]:
    """The organisation's business calendar (the default one until an admin saves another)."""
    setting = db.session.scalar(_CALENDAR)
    if setting is None:
        return dict(DEFAULT_CALENDAR)
    return {
        "timezone": setting.timezone,
        "working_days": list(setting.working_days),
        "day_start": setting.day_start,
        "day_end": setting.day_end,
        "holidays": list(setting.holidays),
    }


def save_calendar(fields: Mapping[str, Any], actor: Actor) -> dict[str, Any]:
    """Validate and store the business calendar; later measurements use it."""
    from datetime import date, time
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    tz = str(fields.get("timezone") or "UTC").strip()
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ServiceError(
            f"“{tz}” is not a time zone name; use one like Europe/Amsterdam.", field="timezone"
        ) from None
    try:
        days = sorted({int(d) for d in fields.get("working_days") or []})
    except (TypeError, ValueError):
        raise ServiceError(
            "Working days are numbers 0 (Monday) to 6 (Sunday).", field="working_days"
        ) from None
    if not days or any(d < 0 or d > 6 for d in days):
        raise ServiceError("Choose at least one working day.", field="working_days")
    try:
        start, end = (time.fromisoformat(str(fields.get(k) or "")) for k in ("day_start", "day_end"))
    except ValueError:
        raise ServiceError("Working hours are times like 09:00 and 17:30.", field="day_start") from None
    if end <= start:
        raise ServiceError("The working day must end after it starts.", field="day_end")
    holidays: list[str] = []
    for line_no, text in enumerate(fields.get("holidays") or [], start=1):
        text = str(text).strip()
        if not text:
            continue
        try:
            holidays.append(date.fromisoformat(text).isoformat())
        except ValueError:
            raise ServiceError(
                f"Holiday {line_no} (“{text[:40]}”) is not a date like 2026-12-25.", field="holidays"
            ) from None
    setting = db.session.scalar(sa.select(BusinessCalendarSetting))
    if setting is None:
        setting = BusinessCalendarSetting()
        db.session.add(setting)
    setting.timezone, setting.working_days = tz, days
    setting.day_start, setting.day_end = start.strftime("%H:%M"), end.strftime("%H:%M")
    setting.holidays = sorted(set(holidays))
    audit.record(actor, "organisation.calendar_saved", "business calendar", **calendar_dict(setting))
    db.session.commit()
    return calendar_dict(setting)


def calendar_dict(setting: BusinessCalendarSetting) -> dict[str, Any]:
    return {
        "timezone": setting.timezone,
        "working_days": list(setting.working_days),
        "day_start": setting.day_start,
        "day_end": setting.day_end,
        "holidays": list(setting.holidays),
    }


def layout(journey_id: int) -> list[dict[str, Any]]:
    """The journey's steps as a snapshot keeps them: the definition its figures were computed on."""
    return _layout_of(_steps(journey_id))


def layout_of_board(board: journey_service.Board) -> list[dict[str, Any]]:
    """`layout` from a board already loaded (the same rows, without reading the steps again)."""
    stages = {stage.id: stage for stage in board.stages}
    lanes = {lane.id: lane for lane in board.lanes}
    rows = [(step, stages[step.stage_id], lanes[step.lane_id]) for step in board.steps]
    rows.sort(key=lambda row: (row[1].position, row[2].position, row[0].position))
    return _layout_of(rows)


def _layout_of(rows: list[tuple[Step, Stage, Lane]]) -> list[dict[str, Any]]:
    ordered = sorted({stage.id: stage for _, stage, _ in rows}.values(), key=lambda s: s.position)
    stage_index = {stage.id: i for i, stage in enumerate(ordered)}
    return [
        {
            "id": step.id,
            "name": step.name,
            "stage_id": stage.id,
            "stage": stage.name,
            "stage_index": stage_index[stage.id],
            "lane": lane.name,
            "emotion": step.emotion,
            "expected_duration_s": step.expected_duration_s,
        }
        for step, stage, lane in rows
    ]


def definition_of(activities: Mapping[str, int], steps: list[dict[str, Any]], cal: Mapping[str, Any]) -> str:
    """What a snapshot's figures mean: the mapping, each step's stage order, the calendar."""
    shape = {
        "activities": sorted(activities.items()),
        "steps": sorted((s["id"], s["stage_index"]) for s in steps),
        "calendar": cal,
    }
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def measure(link: JourneyLogLink, *, enqueue: bool = True) -> MeasurementSnapshot | None:
    """A new snapshot with the current mapping, layout and calendar, measured by a job."""
    mapping = current_mapping(link)
    if mapping is None:
        return None
    steps = layout(link.journey_id)
    cal = calendar()
    snapshot = MeasurementSnapshot(
        journey_id=link.journey_id,
        link_id=link.id,
        event_log_id=link.event_log_id,
        mapping_version_id=mapping.id,
        layout=steps,
        calendar=cal,
        definition=definition_of(mapping.activities, steps, cal),
        status="queued",
        phase="queued",
    )
    db.session.add(snapshot)
    db.session.commit()
    if enqueue:
        _enqueue(snapshot)
    return snapshot


QUEUE_PAUSED = "Waiting for the job queue (Redis is not answering); it is measured as soon as it is back."


def _job_id(snapshot: MeasurementSnapshot) -> str:
    return f"measurement-{snapshot.id}-{snapshot.attempt}"


def _enqueue(snapshot: MeasurementSnapshot) -> None:
    """Queue the snapshot's job; with Redis away it stays queued (and says so) for the reconciler."""
    from redis.exceptions import RedisError

    try:
        job = queue.enqueue(
            "mining",
            "worker.jobs.overlay.measure_snapshot",
            snapshot.id,
            organisation_id=snapshot.organisation_id,
            description=f"journey measurement {snapshot.id}",
            job_timeout=eventlog_service.timeout_for(snapshot.event_log.size_bytes),
            retries=0,  # the reconciler re-drives a snapshot whose worker died
            job_id=_job_id(snapshot),
        )
    except RedisError as error:
        logger.warning("measurement %s stays queued until Redis is back: %s", snapshot.id, error)
        snapshot.error = QUEUE_PAUSED
        db.session.commit()
        return
    snapshot.rq_job_id = job.id
    if snapshot.error == QUEUE_PAUSED:
        snapshot.error = None
    db.session.commit()


def refresh(journey_id: int, link_id: int, actor: Actor) -> MeasurementSnapshot:
    """Measure again with the current mapping and map (after the journey changed)."""
    link = get_link(journey_id, link_id)
    if current_mapping(link) is None:
        raise ServiceError("Confirm the activity mapping first; then the journey is measured.")
    busy = db.session.scalar(
        sa.select(MeasurementSnapshot).where(
            MeasurementSnapshot.link_id == link.id, MeasurementSnapshot.status.in_(ACTIVE)
        )
    )
    if busy is not None:
        return busy
    audit.record(actor, "journey.measured", f"journey {journey_id}", event_log=link.event_log_id)
    snapshot = measure(link)
    assert snapshot is not None
    return snapshot


def on_log_mined(event_log_id: int) -> list[MeasurementSnapshot]:
    """A log was mined again: measure every journey linked to it with its confirmed mapping."""
    snapshots = []
    for link in db.session.scalars(
        sa.select(JourneyLogLink).where(JourneyLogLink.event_log_id == event_log_id)
    ):
        snapshot = measure(link)
        if snapshot is not None:
            snapshots.append(snapshot)
    return snapshots


@dataclass(frozen=True)
class JobInputs:
    """What the worker needs to measure a snapshot, read in one go."""

    storage_key: str
    column_mapping: dict[str, Any] | None
    activities: dict[str, int]
    steps: list[dict[str, Any]]
    calendar: dict[str, Any] | None
    size_bytes: int


def begin_snapshot(snapshot_id: int) -> JobInputs | None:
    """Mark a snapshot running; None when there is nothing to do."""
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None or snapshot.status not in ACTIVE:
        return None
    run = eventlog_service.latest_finished_run(snapshot.event_log, unfiltered=True)
    now = utcnow()
    snapshot.status, snapshot.phase, snapshot.progress = "running", "reading", 0
    snapshot.attempt += 1
    snapshot.started_at = snapshot.heartbeat_at = now
    snapshot.error = None
    inputs = JobInputs(
        storage_key=snapshot.event_log.storage_key,
        column_mapping=(run.mapping if run else snapshot.event_log.mapping),
        activities=dict(snapshot.mapping_version.activities),
        steps=list(snapshot.layout),
        calendar=snapshot.calendar,
        size_bytes=snapshot.event_log.size_bytes,
    )
    db.session.commit()
    return inputs


PHASE_SPANS = {"reading": (0, 60), "sorting": (60, 70), "measuring": (70, 95), "saving": (95, 100)}


def report_progress(snapshot_id: int, phase: str, fraction: float) -> bool:
    """Store phase and percentage (and beat); False when the snapshot is gone."""
    low, high = PHASE_SPANS.get(phase, (0, 100))
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None:
        return False
    db.session.refresh(snapshot)
    snapshot.phase = phase
    snapshot.progress = max(snapshot.progress, int(low + (high - low) * max(0.0, min(1.0, fraction))))
    snapshot.heartbeat_at = utcnow()
    db.session.commit()
    return True


def heartbeat(snapshot_id: int) -> bool:
    done = db.session.execute(
        sa.update(MeasurementSnapshot)
        .where(MeasurementSnapshot.id == snapshot_id, MeasurementSnapshot.status == "running")
        .values(heartbeat_at=utcnow())
    ).rowcount
    db.session.commit()
    return bool(done)


def _iso(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def store_snapshot(snapshot_id: int, result: dict[str, Any]) -> None:
    """Write a measurement in one transaction and mark it finished (idempotent)."""
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None or snapshot.status == "finished":
        return
    org = snapshot.organisation_id
    for model in (StepMeasurement, TransitionMeasurement):
        db.session.execute(sa.delete(model).where(model.snapshot_id == snapshot_id))
    step_rows = [
        {
            "snapshot_id": snapshot_id,
            "organisation_id": org,
            "step_id": s["step_id"],
            "cases_reached": s["cases_reached"],
            "visits": s["visits"],
            "rework_cases": s["rework_cases"],
            "median_visit_s": s["median_visit_s"],
            "median_wait_before_s": s["median_wait_before_s"],
            "median_visit_business_s": s.get("median_visit_business_s"),
            "median_wait_before_business_s": s.get("median_wait_before_business_s"),
        }
        for s in result["steps"]
    ]
    transition_rows = [
        {
            "snapshot_id": snapshot_id,
            "organisation_id": org,
            "from_step_id": t["from_step"],
            "to_step_id": t["to_step"],
            "frequency": t["frequency"],
            "median_s": t["median_s"],
            "median_business_s": t.get("median_business_s"),
        }
        for t in result["transitions"]
    ]
    if step_rows:
        db.session.execute(sa.insert(StepMeasurement), step_rows)
    if transition_rows:
        db.session.execute(sa.insert(TransitionMeasurement), transition_rows)
    snapshot.cases = result["cases"]
    snapshot.events = result["events"]
    snapshot.following = result["conformance"]["following"]
    snapshot.conformance_share = result["conformance"]["share"]
    snapshot.period_start = _iso(result.get("period_start"))
    snapshot.period_end = _iso(result.get("period_end"))
    snapshot.details = {
        key: result.get(key)
        for key in ("departures", "paths", "case_timelines", "unmapped_activities", "activity_events")
    }
    snapshot.status, snapshot.phase, snapshot.progress = "finished", "finished", 100
    snapshot.finished_at = utcnow()
    db.session.commit()
    _after_measurement(snapshot)


def _after_measurement(snapshot: MeasurementSnapshot) -> None:
    """Goals on this journey's measured KPIs record their new values (goals build on this module)."""
    from webapp.services import goals

    goals.record_from_snapshot(snapshot.id)


def fail_snapshot(snapshot_id: int, message: str) -> None:
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None or snapshot.status == "finished":
        return
    snapshot.status, snapshot.phase = "failed", "failed"
    snapshot.error = message
    snapshot.finished_at = utcnow()
    db.session.commit()


def reconcile_organisation(now=None) -> list[int]:
    """Re-drive once, then fail, the snapshots whose worker stopped beating."""
    now = now or utcnow()
    stale_after = timedelta(seconds=current_app.config["MINING_HEARTBEAT_STALE_S"])
    stale = list(
        db.session.scalars(
            sa.select(MeasurementSnapshot).where(
                MeasurementSnapshot.status == "running", MeasurementSnapshot.heartbeat_at < now - stale_after
            )
        )
    )
    for snapshot in stale:
        if snapshot.attempt < MAX_ATTEMPTS:
            snapshot.status, snapshot.phase, snapshot.progress = "queued", "queued", 0
            snapshot.error = f"The worker stopped during attempt {snapshot.attempt}; trying again."
            db.session.commit()
            _enqueue(snapshot)
        else:
            snapshot.status, snapshot.phase = "failed", "failed"
            snapshot.finished_at = now
            snapshot.error = f"The worker stopped while measuring, {snapshot.attempt} times. Measure again."
            db.session.commit()
    return [s.id for s in stale] + _requeue_lost(now, stale_after)


def _requeue_lost(now, stale_after: timedelta) -> list[int]:
    """Queue again the snapshots Redis does not hold (queued while it was away, or lost by a restart),
    only once they waited `stale_after`, so a web process queueing right now is never raced."""
    from rq.job import Job

    connection = queue.redis_connection()
    requeued = []
    waiting = db.session.scalars(
        sa.select(MeasurementSnapshot).where(
            MeasurementSnapshot.status == "queued", MeasurementSnapshot.queued_at < now - stale_after
        )
    )
    for snapshot in list(waiting):
        if not Job.exists(snapshot.rq_job_id or _job_id(snapshot), connection=connection):
            _enqueue(snapshot)
            requeued.append(snapshot.id)
    return requeued


# --- reading figures -----------------------------------------------------------------------------


def snapshot_for(journey_id: int, snapshot_id: int) -> MeasurementSnapshot:
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None or snapshot.journey_id != journey_id:
        raise NotFound("There is no such measurement of this journey.")
    return snapshot


def latest_snapshot(link: JourneyLogLink) -> MeasurementSnapshot | None:
    """The link's newest snapshot in any state (for a progress bar)."""
    return db.session.scalar(_LATEST_SNAPSHOT, {"link_id": link.id})


def latest_finished(link: JourneyLogLink) -> MeasurementSnapshot | None:
    return db.session.scalar(_LATEST_FINISHED, {"link_id": link.id})


def timeline(journey_id: int, states: list[Progress] | None = None) -> list[MeasurementSnapshot]:
    """One snapshot per linked log (its latest finished one), ordered by the log's period: the trend.
    From the links' `states` when the caller has them."""
    if states is not None:
        snapshots = [state.finished for state in states if state.finished is not None]
    else:
        snapshots = [s for link in links(journey_id) if (s := latest_finished(link)) is not None]
    return sorted(snapshots, key=lambda s: (s.period_end or s.finished_at, s.id))


def step_rows(snapshot_id: int) -> dict[int, StepMeasurement]:
    return step_rows_of([snapshot_id])[snapshot_id]


def step_rows_of(snapshot_ids: list[int]) -> dict[int, dict[int, StepMeasurement]]:
    """The step figures of several snapshots in one query: snapshot id -> step id -> row."""
    rows: dict[int, dict[int, StepMeasurement]] = {snapshot_id: {} for snapshot_id in snapshot_ids}
    if snapshot_ids:
        for row in db.session.scalars(_STEP_ROWS, {"snapshot_ids": snapshot_ids}):
            rows[row.snapshot_id][row.step_id] = row
    return rows


def transition_rows(snapshot_id: int) -> list[TransitionMeasurement]:
    return list(db.session.scalars(_TRANSITION_ROWS, {"snapshot_id": snapshot_id}))


def measurements_json(journey_id: int, event_log_id: int) -> dict[str, Any]:
    """The API's answer, from the link's latest finished snapshot."""
    link = link_for_log(journey_id, event_log_id)
    snapshot = latest_finished(link)
    if snapshot is None:
        pending = latest_snapshot(link)
        if pending is not None and pending.status in ACTIVE:
            raise ServiceError(
                "The measurement is still being computed; ask again in a moment.", field="pending"
            )
        if pending is not None and pending.status == "failed":
            raise ServiceError(f"The measurement failed: {pending.error}")
        raise ServiceError("Nothing is measured yet: save the activity mapping first.")
    names = {s["id"]: s["name"] for s in snapshot.layout}
    rows = step_rows(snapshot.id)
    details = snapshot.details or {}
    return {
        "event_log": event_log_id,
        "snapshot": snapshot.id,
        "mapping_version": snapshot.mapping_version.number,
        "period": {"start": _isoformat(snapshot.period_start), "end": _isoformat(snapshot.period_end)},
        "cases": snapshot.cases,
        "conformance": {"following": snapshot.following, "share": snapshot.conformance_share},
        "steps": [
            {
                "step_id": step["id"],
                "name": names[step["id"]],
                "cases_reached": rows[step["id"]].cases_reached if step["id"] in rows else 0,
                "visits": rows[step["id"]].visits if step["id"] in rows else 0,
                "rework_cases": rows[step["id"]].rework_cases if step["id"] in rows else 0,
                "median_visit_s": rows[step["id"]].median_visit_s if step["id"] in rows else None,
                "median_wait_before_s": rows[step["id"]].median_wait_before_s if step["id"] in rows else None,
            }
            for step in snapshot.layout
        ],
        "transitions": [
            {
                "from_step": t.from_step_id,
                "to_step": t.to_step_id,
                "frequency": t.frequency,
                "median_s": t.median_s,
            }
            for t in transition_rows(snapshot.id)
        ],
        "unmapped_activities": [
            {"name": a["name"], "events": a["events"]} for a in details.get("unmapped_activities") or []
        ],
    }


def _isoformat(value) -> str | None:
    return value.isoformat() if value else None


@dataclass
class Progress:
    """A link's state for the page: its log, mapping and latest measurement."""

    link: JourneyLogLink
    mapping: MappingVersion | None
    snapshot: MeasurementSnapshot | None
    finished: MeasurementSnapshot | None
    stale: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def link_states(journey_id: int, *, board: journey_service.Board | None = None) -> list[Progress]:
    """Every link with its mapping, latest snapshot and whether the map changed since it was measured.
    With the journey's `board` already loaded, neither the journey nor its steps are read again."""
    if board is None:
        return _states(journey_id, links(journey_id))
    return _states(journey_id, _links(journey_id), layout_of_board(board))


def link_state(journey_id: int, link_id: int) -> Progress:
    """One link's state (its progress bar polls this)."""
    return _states(journey_id, [get_link(journey_id, link_id)])[0]


def _states(
    journey_id: int, of_links: list[JourneyLogLink], current_layout: list[dict[str, Any]] | None = None
) -> list[Progress]:
    cal = None
    states = []
    for link in of_links:
        mapping = current_mapping(link)
        snapshot = latest_snapshot(link)
        # The newest snapshot is usually the newest finished one too: no second query then.
        finished = (
            snapshot if snapshot is not None and snapshot.status == "finished" else latest_finished(link)
        )
        stale = False
        if mapping is not None and finished is not None:
            current_layout = current_layout if current_layout is not None else layout(journey_id)
            cal = cal if cal is not None else calendar()
            stale = finished.definition != definition_of(mapping.activities, current_layout, cal)
        states.append(Progress(link, mapping, snapshot, finished, stale))
    return states


def add_shadow_activity(journey_id: int, link_id: int, activity: str, actor: Actor) -> Step:
    """Put an activity the map misses onto it: a new step in the stage where its cases usually are just
    before it (its most frequent mapped predecessor in the log), in the backstage lane when there is one;
    then map the activity to it and measure again."""
    from webapp.models import DfgEdge

    link = get_link(journey_id, link_id)
    known = dict(log_activities(link.event_log))
    if activity not in known:
        raise ServiceError(f"“{activity}” is not an activity of this log.")
    mapping = current_mapping(link)
    activities = dict(mapping.activities) if mapping else {}
    if activity in activities:
        raise ServiceError(f"“{activity}” is already on the map.")
    rows = _steps(journey_id)
    if not rows:
        raise ServiceError("Draw at least one stage with a step first.")
    stage_of_step = {step.id: stage for step, stage, _ in rows}
    run = eventlog_service.latest_finished_run(link.event_log, unfiltered=True)
    predecessors = db.session.execute(
        sa.select(DfgEdge.source, DfgEdge.frequency)
        .where(DfgEdge.run_id == run.id, DfgEdge.target == activity)
        .order_by(DfgEdge.frequency.desc())
    ).all()
    stage = next(
        (stage_of_step[activities[src]] for src, _ in predecessors if activities.get(src) in stage_of_step),
        rows[0][1],
    )
    lanes = journey_service.board(journey_id).lanes
    lane = next((la for la in lanes if la.name.casefold() == "backstage"), lanes[0])
    step = journey_service.add_step(stage.id, lane.id, {"name": activity[:200]}, actor)
    activities[activity] = step.id
    save_mapping(journey_id, link.id, activities, actor)
    return step


# --- drafting a journey from a log ---------------------------------------------------------------


@dataclass(frozen=True)
class DraftState:
    status: str  # queued | started | finished | failed
    journey_id: int | None = None
    error: str | None = None


def start_draft(event_log_id: int, title: str, actor: Actor) -> str:
    """Queue the proposal of a journey from a mined log; returns the job id the page polls."""
    import uuid

    log = db.session.get(EventLog, event_log_id)
    if log is None:
        raise NotFound("There is no such event log.")
    if eventlog_service.latest_finished_run(log, unfiltered=True) is None:
        raise ServiceError("Mine the log first; a journey is drafted from its mined activities.")
    title = (title or "").strip()[:200] or f"Drafted from {log.name}"[:200]
    job = queue.enqueue(
        "mining",
        "worker.jobs.overlay.draft_journey",
        log.id,
        actor.user_id,
        title,
        organisation_id=log.organisation_id,
        description=f"draft journey from log {log.id}",
        job_timeout=eventlog_service.timeout_for(log.size_bytes),
        retries=0,
        job_id=f"draft-journey-{log.organisation_id}-{log.id}-{uuid.uuid4().hex[:12]}",
    )
    audit.record(actor, "journey.draft_requested", f"event log {log.id}", title=title)
    db.session.commit()
    return job.id


def draft_state(event_log_id: int, job_id: str) -> DraftState:
    """A draft job's state; NotFound for another organisation's or another log's job."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from webapp import tenancy

    tenant = tenancy.current()
    prefix = f"draft-journey-{tenant.organisation_id if tenant else 0}-{event_log_id}-"
    if not job_id.startswith(prefix):
        raise NotFound("There is no such draft.")
    try:
        job = Job.fetch(job_id, connection=queue.redis_connection())
    except NoSuchJobError:
        raise NotFound("There is no such draft (drafts are kept for a day).") from None
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    if status == "finished":
        return DraftState("finished", journey_id=int(job.return_value()))
    if status in ("failed", "stopped", "canceled"):
        return DraftState(
            "failed", error="Drafting failed; the log may be unreadable now. Mine it again first."
        )
    return DraftState("started" if status == "started" else "queued")
