"""Event logs, their mining runs and the measured process, stored as rows (not pickles)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.accounts import User
from webapp.models.types import UTCDateTime, utcnow
from webapp.tenancy import OrgScoped

LOG_STATUSES = ("uploaded", "queued", "running", "finished", "failed")
RUN_STATUSES = ("queued", "running", "finished", "failed", "cancelled")


class EventLog(OrgScoped, db.Model):
    """An uploaded file, what we learned from its first rows, and how its columns map to events."""

    __tablename__ = "event_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    filename: Mapped[str] = mapped_column(sa.String(255))
    file_format: Mapped[str] = mapped_column(sa.String(16))  # csv | xes | parquet
    storage_key: Mapped[str] = mapped_column(sa.String(255))
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # uploaded: waiting for a mapping (or its preview); queued/running/finished/failed: its latest run.
    status: Mapped[str] = mapped_column(sa.String(16), default="uploaded")
    error: Mapped[str | None] = mapped_column(sa.Text)
    preview: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    mapping: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    duplicate_of_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event_logs.id", ondelete="SET NULL"))

    uploaded_by: Mapped[User | None] = relationship()


class MiningRun(OrgScoped, db.Model):
    """One mining of one log: the row, not RQ, is the source of truth for its state."""

    __tablename__ = "mining_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_log_id: Mapped[int] = mapped_column(sa.ForeignKey("event_logs.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(sa.String(16), default="queued")
    phase: Mapped[str] = mapped_column(sa.String(32), default="queued")
    progress: Mapped[int] = mapped_column(default=0)
    attempt: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=2)
    rq_job_id: Mapped[str | None] = mapped_column(sa.String(64))
    input_sha256: Mapped[str] = mapped_column(sa.String(64))
    mapping: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    timeout_s: Mapped[int] = mapped_column(default=600)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(sa.Text)
    notes: Mapped[list[str] | None] = mapped_column(sa.JSON)
    # {"start": iso, "end": iso, "attributes": {column: [values]}, "variant": [activities]}; None = all cases.
    filters: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

    event_log: Mapped[EventLog] = relationship(foreign_keys=[event_log_id])


class _RunResult(OrgScoped):
    """A row of a run's results."""

    run_id: Mapped[int] = mapped_column(sa.ForeignKey("mining_runs.id", ondelete="CASCADE"), index=True)


class LogSummary(_RunResult, db.Model):
    """Log-level figures of a run."""

    __tablename__ = "log_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    cases: Mapped[int]
    events: Mapped[int]
    activities: Mapped[int]
    variants: Mapped[int]
    resources: Mapped[int | None]
    first_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    case_duration_mean_s: Mapped[float | None]
    case_duration_median_s: Mapped[float | None]
    case_duration_p90_s: Mapped[float | None]
    case_duration_min_s: Mapped[float | None]
    case_duration_max_s: Mapped[float | None]
    has_start_timestamps: Mapped[bool] = mapped_column(default=False)
    cases_with_rework: Mapped[int] = mapped_column(default=0)
    rework_share: Mapped[float] = mapped_column(default=0.0)
    histogram_unit: Mapped[str] = mapped_column(sa.String(16), default="s")
    # Values of low-cardinality attribute columns with their case counts (for the filter form).
    attribute_values: Mapped[dict[str, dict[str, int]] | None] = mapped_column(sa.JSON)


class ActivityStat(_RunResult, db.Model):
    """Per-activity figures of a run (durations only when start timestamps exist)."""

    __tablename__ = "activity_stats"

    id: Mapped[int] = mapped_column(primary_key=True)
    activity: Mapped[str] = mapped_column(sa.String(500))
    events: Mapped[int]
    cases: Mapped[int]
    start_count: Mapped[int] = mapped_column(default=0)
    end_count: Mapped[int] = mapped_column(default=0)
    rework_cases: Mapped[int] = mapped_column(default=0)
    rework_events: Mapped[int] = mapped_column(default=0)
    rework_share: Mapped[float] = mapped_column(default=0.0)
    duration_mean_s: Mapped[float | None]
    duration_median_s: Mapped[float | None]
    resources: Mapped[int | None]


class DfgEdge(_RunResult, db.Model):
    """A directly-follows edge with frequency and waiting times (seconds)."""

    __tablename__ = "dfg_edges"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(500))
    target: Mapped[str] = mapped_column(sa.String(500))
    frequency: Mapped[int]
    mean_s: Mapped[float]
    median_s: Mapped[float]
    p90_s: Mapped[float]
    min_s: Mapped[float]
    max_s: Mapped[float]


class VariantStat(_RunResult, db.Model):
    """One of the most frequent variants of a run."""

    __tablename__ = "variants"

    id: Mapped[int] = mapped_column(primary_key=True)
    rank: Mapped[int]
    activities: Mapped[list[str]] = mapped_column(sa.JSON)
    cases: Mapped[int]
    share: Mapped[float]
    median_duration_s: Mapped[float]
    mean_duration_s: Mapped[float]


class CaseDurationBin(_RunResult, db.Model):
    """One bar of the case duration histogram: cases with lower_s <= duration < upper_s."""

    __tablename__ = "case_duration_bins"

    id: Mapped[int] = mapped_column(primary_key=True)
    lower_s: Mapped[float]
    upper_s: Mapped[float | None]
    cases: Mapped[int]


class SavedMapping(OrgScoped, db.Model):
    """The mapping last confirmed for a set of columns, proposed again for the next such upload."""

    __tablename__ = "saved_mappings"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "columns_signature", name="uq_saved_mappings_signature"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    columns_signature: Mapped[str] = mapped_column(sa.String(64))
    mapping: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
