"""Improvement goals: KPIs tied to journeys, their measurements, check-ins, initiatives, and what changed.

A goal's latest figures (current value, progress, expected progress, status) are stored on the goal
itself and recomputed at every measurement, so the executive dashboard reads one row per goal.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.accounts import User
from webapp.models.journeys import Journey
from webapp.models.types import UTCDateTime, utcnow
from webapp.tenancy import OrgScoped

KPI_SOURCES = ("event_log", "survey", "manual")
JOURNEY_KPIS = ("median_case_duration_s", "conformance_share", "rework_share", "cases")
STEP_KPIS = ("median_visit_s", "median_wait_before_s", "cases_reached_share", "rework_cases_share")
SURVEY_KPIS = ("nps", "csat", "ces")
DIRECTIONS = ("lower", "higher")
GOAL_STATUSES = ("no_data", "on_track", "at_risk", "off_track", "achieved", "missed")
INITIATIVE_STATES = ("planned", "in_progress", "done", "dropped")
GOAL_EVENT_KINDS = ("created", "status_change", "measurement", "check_in", "initiative", "updated")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Goal(OrgScoped, db.Model):
    """A commitment: move a KPI of a journey (or one of its steps) from a baseline to a target by a date."""

    __tablename__ = "goals"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kpi_source", KPI_SOURCES), name="kpi_source"),
        sa.CheckConstraint(_one_of("direction", DIRECTIONS), name="direction"),
        sa.CheckConstraint(_one_of("status", GOAL_STATUSES), name="status"),
        sa.CheckConstraint("due_on >= start_on", name="dates"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    why: Mapped[str] = mapped_column(sa.Text, default="")
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)
    step_id: Mapped[int | None] = mapped_column(sa.ForeignKey("steps.id", ondelete="SET NULL"), index=True)
    kpi_metric: Mapped[str] = mapped_column(sa.String(64))
    kpi_source: Mapped[str] = mapped_column(sa.String(16))
    kpi_unit: Mapped[str] = mapped_column(sa.String(32), default="")
    direction: Mapped[str] = mapped_column(sa.String(8))
    baseline: Mapped[float | None]
    target: Mapped[float]
    start_on: Mapped[date] = mapped_column(sa.Date)
    due_on: Mapped[date] = mapped_column(sa.Date)
    review_every_days: Mapped[int] = mapped_column(default=14)
    # Recomputed at every measurement (and daily, as time passes).
    status: Mapped[str] = mapped_column(sa.String(16), default="no_data")
    current_value: Mapped[float | None]
    progress: Mapped[float | None]
    expected: Mapped[float | None]
    last_measured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_check_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    watermelon: Mapped[str | None] = mapped_column(sa.Text)  # why a green KPI hides worse figures
    version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    journey: Mapped[Journey] = relationship()


class _GoalPart(OrgScoped):
    goal_id: Mapped[int] = mapped_column(sa.ForeignKey("goals.id", ondelete="CASCADE"), index=True)


class GoalMeasurement(_GoalPart, db.Model):
    """One value of a goal's KPI at a moment, with where it came from."""

    __tablename__ = "goal_measurements"
    __table_args__ = (sa.Index("ix_goal_measurements_goal_at", "goal_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    value: Mapped[float]
    source: Mapped[str] = mapped_column(sa.String(32))  # event_log | survey | manual
    event_log_id: Mapped[int | None] = mapped_column(sa.ForeignKey("event_logs.id", ondelete="SET NULL"))
    snapshot_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("measurement_snapshots.id", ondelete="SET NULL"), index=True
    )
    note: Mapped[str] = mapped_column(sa.Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CheckIn(_GoalPart, db.Model):
    """The owner's status note at the review cadence, with their confidence (1-5)."""

    __tablename__ = "goal_check_ins"
    __table_args__ = (sa.CheckConstraint("confidence BETWEEN 1 AND 5", name="confidence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    note: Mapped[str] = mapped_column(sa.Text)
    confidence: Mapped[int]

    author: Mapped[User | None] = relationship()


class Initiative(_GoalPart, db.Model):
    """An action under a goal; its start date splits the data into before and after."""

    __tablename__ = "goal_initiatives"
    __table_args__ = (sa.CheckConstraint(_one_of("state", INITIATIVE_STATES), name="state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    start_on: Mapped[date | None] = mapped_column(sa.Date)
    due_on: Mapped[date | None] = mapped_column(sa.Date)
    state: Mapped[str] = mapped_column(sa.String(16), default="planned")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    owner: Mapped[User | None] = relationship()


class GoalEvent(_GoalPart, db.Model):
    """What happened to a goal, for "what changed since my last visit" and the weekly digest."""

    __tablename__ = "goal_events"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", GOAL_EVENT_KINDS), name="kind"),
        sa.Index("ix_goal_events_organisation_at", "organisation_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(sa.String(16))
    summary: Mapped[str] = mapped_column(sa.String(500))
    from_status: Mapped[str | None] = mapped_column(sa.String(16))
    to_status: Mapped[str | None] = mapped_column(sa.String(16))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))


class GoalSettings(OrgScoped, db.Model):
    """The organisation's status tolerances: on track within `on_track_tolerance` of the expected
    progress, at risk within `at_risk_tolerance`, else off track."""

    __tablename__ = "goal_settings"
    __table_args__ = (sa.UniqueConstraint("organisation_id", name="uq_goal_settings_organisation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    on_track_tolerance: Mapped[float] = mapped_column(default=0.10)
    at_risk_tolerance: Mapped[float] = mapped_column(default=0.30)


class DashboardVisit(OrgScoped, db.Model):
    """When a member last opened the dashboard (for "what changed since my last visit")."""

    __tablename__ = "dashboard_visits"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "user_id", name="uq_dashboard_visits_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    previous_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_visit_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Digest(OrgScoped, db.Model):
    """A member's weekly summary of goal changes (mailed when SMTP is configured, always readable here)."""

    __tablename__ = "goal_digests"
    __table_args__ = (
        sa.UniqueConstraint("organisation_id", "user_id", "period_end", name="uq_goal_digests"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[dict] = mapped_column(sa.JSON)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
