"""Data vs story: journeys linked to mined logs, activity-to-step mappings, measured snapshots, survey scores.

A *link* joins one journey to one event log. Its activity-to-step mapping is versioned: every change
makes a new `MappingVersion`, and every `MeasurementSnapshot` points at the version (and keeps the
journey layout) it was computed with, so a trend never mixes definitions silently.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.accounts import User
from webapp.models.eventlogs import EventLog
from webapp.models.journeys import Journey
from webapp.models.types import UTCDateTime, utcnow
from webapp.tenancy import OrgScoped

SNAPSHOT_STATUSES = ("queued", "running", "finished", "failed")
SURVEY_METRICS = ("nps", "csat", "ces")


class JourneyLogLink(OrgScoped, db.Model):
    """A journey measured against an event log."""

    __tablename__ = "journey_log_links"
    __table_args__ = (sa.UniqueConstraint("journey_id", "event_log_id", name="uq_journey_log_links_pair"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    event_log_id: Mapped[int] = mapped_column(sa.ForeignKey("event_logs.id", ondelete="CASCADE"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    journey: Mapped[Journey] = relationship()
    event_log: Mapped[EventLog] = relationship()


class MappingVersion(OrgScoped, db.Model):
    """One confirmed activity-to-step mapping of a link: {activity name: step id}."""

    __tablename__ = "mapping_versions"
    __table_args__ = (sa.UniqueConstraint("link_id", "number", name="uq_mapping_versions_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(
        sa.ForeignKey("journey_log_links.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    activities: Mapped[dict[str, int]] = mapped_column(sa.JSON)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    created_by: Mapped[User | None] = relationship()


class MeasurementSnapshot(OrgScoped, db.Model):
    """The journey measured on one log with one mapping version: computed by a job, then read-only.

    `layout` keeps the steps as they were (id, name, stage, stage index) so an old snapshot still reads
    right after the map changed; `definition` hashes mapping + layout (+ calendar) to tell trends apart.
    """

    __tablename__ = "measurement_snapshots"
    __table_args__ = (sa.Index("ix_measurement_snapshots_journey_status", "journey_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"))
    link_id: Mapped[int] = mapped_column(
        sa.ForeignKey("journey_log_links.id", ondelete="CASCADE"), index=True
    )
    event_log_id: Mapped[int] = mapped_column(sa.ForeignKey("event_logs.id", ondelete="CASCADE"), index=True)
    mapping_version_id: Mapped[int] = mapped_column(
        sa.ForeignKey("mapping_versions.id", ondelete="CASCADE"), index=True
    )
    layout: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON)
    definition: Mapped[str] = mapped_column(sa.String(64))
    calendar: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    phase: Mapped[str] = mapped_column(sa.String(32), default="queued")
    progress: Mapped[int] = mapped_column(default=0)
    attempt: Mapped[int] = mapped_column(default=0)
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(64))
    error: Mapped[str | None] = mapped_column(sa.Text)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cases: Mapped[int | None]
    events: Mapped[int | None]
    following: Mapped[int | None]
    conformance_share: Mapped[float | None]
    # Departures, journey paths, case timelines, unmapped activities: read whole, never queried inside.
    # Tens of kB of JSON: loaded only when read (progress polls and trends never do).
    details: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON, deferred=True)

    event_log: Mapped[EventLog] = relationship()
    mapping_version: Mapped[MappingVersion] = relationship()


class _SnapshotRow(OrgScoped):
    snapshot_id: Mapped[int] = mapped_column(
        sa.ForeignKey("measurement_snapshots.id", ondelete="CASCADE"), index=True
    )


class StepMeasurement(_SnapshotRow, db.Model):
    """A step's measured figures in one snapshot (step_id is not a foreign key: the step may be gone)."""

    __tablename__ = "step_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int]
    cases_reached: Mapped[int]
    visits: Mapped[int]
    rework_cases: Mapped[int]
    median_visit_s: Mapped[float | None]
    median_wait_before_s: Mapped[float | None]
    median_visit_business_s: Mapped[float | None]
    median_wait_before_business_s: Mapped[float | None]


class TransitionMeasurement(_SnapshotRow, db.Model):
    """Consecutive visits A then B in one snapshot."""

    __tablename__ = "transition_measurements"

    id: Mapped[int] = mapped_column(primary_key=True)
    from_step_id: Mapped[int]
    to_step_id: Mapped[int]
    frequency: Mapped[int]
    median_s: Mapped[float | None]
    median_business_s: Mapped[float | None]


class SurveyScore(OrgScoped, db.Model):
    """A feedback figure for a step on a day: nps, csat, ces or a custom metric."""

    __tablename__ = "survey_scores"
    __table_args__ = (sa.Index("ix_survey_scores_journey_step", "journey_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("steps.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(sa.Date)
    metric: Mapped[str] = mapped_column(sa.String(64))
    value: Mapped[float]
    responses: Mapped[int] = mapped_column(default=1)
    source: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BusinessCalendarSetting(OrgScoped, db.Model):
    """The organisation's working time, for durations in business time."""

    __tablename__ = "business_calendars"
    __table_args__ = (sa.UniqueConstraint("organisation_id", name="uq_business_calendars_organisation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    working_days: Mapped[list[int]] = mapped_column(sa.JSON, default=lambda: [0, 1, 2, 3, 4])
    day_start: Mapped[str] = mapped_column(sa.String(5), default="09:00")
    day_end: Mapped[str] = mapped_column(sa.String(5), default="17:00")
    holidays: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
