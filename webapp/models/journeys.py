"""Journey maps: personas, journeys with lanes x stages of steps, notes, their history, versions, templates.

A journey is a service blueprint: stages are its columns, lanes its rows, and each step sits in one
stage and one lane at a position within its stage. Elements carry a `version` that the services bump
on every change the user makes, so a client that saw an older version is told (optimistic concurrency).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.extensions import db
from webapp.models.accounts import User
from webapp.models.types import UTCDateTime, utcnow
from webapp.tenancy import OrgScoped

JOURNEY_KINDS = ("customer", "employee")
JOURNEY_STATES = ("current", "future")
JOURNEY_STATUSES = ("draft", "in_review", "published")
CHANNELS = ("web", "email", "phone", "chat", "in_person", "app", "self_service_portal", "other")
NOTE_KINDS = ("pain_point", "opportunity", "idea", "question")
CHANGE_ENTITIES = ("journey", "stage", "lane", "step", "note")
CHANGE_ACTIONS = ("create", "update", "delete", "move", "restore")
EMOTION_MIN, EMOTION_MAX = -3, 3


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that `column` holds one of `values` (constants of this module, never user input)."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


# Element ids are never reused (PostgreSQL sequences never are; SQLite needs AUTOINCREMENT for it), so
# a stale id in a client can never name a newer element, and an undone delete can bring its ids back.
NO_ID_REUSE = {"sqlite_autoincrement": True}


class Persona(OrgScoped, db.Model):
    """Who walks a journey: a named archetype with goals and frustrations."""

    __tablename__ = "personas"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(200), default="")
    goals: Mapped[str] = mapped_column(sa.Text, default="")
    frustrations: Mapped[str] = mapped_column(sa.Text, default="")
    quote: Mapped[str] = mapped_column(sa.Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Journey(OrgScoped, db.Model):
    """A journey map; `version` counts changes of its own fields (title, state, ...), not of its steps."""

    __tablename__ = "journeys"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", JOURNEY_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("state", JOURNEY_STATES), name="state"),
        sa.CheckConstraint(_one_of("status", JOURNEY_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(16), default="customer")
    persona_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("personas.id", ondelete="SET NULL"), index=True
    )
    scenario: Mapped[str] = mapped_column(sa.Text, default="")
    state: Mapped[str] = mapped_column(sa.String(16), default="current")
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"), index=True)
    tags: Mapped[list[str]] = mapped_column(sa.JSON, default=list)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Touched by every change inside the journey too, so a list or an editor can tell it moved on.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)

    persona: Mapped[Persona | None] = relationship()
    owner: Mapped[User | None] = relationship()


class _JourneyPart(OrgScoped):
    """A row that lives and dies with its journey."""

    journey_id: Mapped[int] = mapped_column(sa.ForeignKey("journeys.id", ondelete="CASCADE"), index=True)


class Lane(_JourneyPart, db.Model):
    """A row of the blueprint (actions, frontstage, backstage, support processes)."""

    __tablename__ = "lanes"
    # Steps name their lane in the export format, so a lane's name is unique within its journey.
    __table_args__ = (sa.UniqueConstraint("journey_id", "name", name="uq_lanes_journey_name"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int]
    version: Mapped[int] = mapped_column(default=1)


class Stage(_JourneyPart, db.Model):
    """A column of the blueprint: a phase the persona goes through."""

    __tablename__ = "stages"
    __table_args__ = (NO_ID_REUSE,)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    position: Mapped[int]
    version: Mapped[int] = mapped_column(default=1)


class Step(_JourneyPart, db.Model):
    """One thing that happens, in one stage and one lane; `position` orders the steps of its stage."""

    __tablename__ = "steps"
    __table_args__ = (
        sa.CheckConstraint(f"emotion BETWEEN {EMOTION_MIN} AND {EMOTION_MAX}", name="emotion_range"),
        sa.CheckConstraint(_one_of("channel", CHANNELS), name="channel"),
        sa.CheckConstraint("expected_duration_s IS NULL OR expected_duration_s >= 0", name="duration"),
        sa.Index("ix_steps_stage_id_position", "stage_id", "position"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    stage_id: Mapped[int] = mapped_column(sa.ForeignKey("stages.id", ondelete="CASCADE"))
    lane_id: Mapped[int] = mapped_column(sa.ForeignKey("lanes.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    channel: Mapped[str] = mapped_column(sa.String(32), default="other")
    touchpoint: Mapped[str] = mapped_column(sa.String(200), default="")
    owner_team: Mapped[str] = mapped_column(sa.String(200), default="")
    emotion: Mapped[int] = mapped_column(sa.SmallInteger, default=0)
    moment_of_truth: Mapped[bool] = mapped_column(default=False)
    expected_duration_s: Mapped[int | None]
    version: Mapped[int] = mapped_column(default=1)

    stage: Mapped[Stage] = relationship()
    lane: Mapped[Lane] = relationship()


class StepNote(OrgScoped, db.Model):
    """A pain point, opportunity, idea or question pinned to a step."""

    __tablename__ = "step_notes"
    __table_args__ = (sa.CheckConstraint(_one_of("kind", NOTE_KINDS), name="kind"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(primary_key=True)
    step_id: Mapped[int] = mapped_column(sa.ForeignKey("steps.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    text: Mapped[str] = mapped_column(sa.Text)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    step: Mapped[Step] = relationship()


class JourneyChange(_JourneyPart, db.Model):
    """One change of a journey or one of its elements: who, when, what, before -> after (its history)."""

    __tablename__ = "journey_changes"
    __table_args__ = (
        sa.CheckConstraint(_one_of("entity", CHANGE_ENTITIES), name="entity"),
        sa.CheckConstraint(_one_of("action", CHANGE_ACTIONS), name="action"),
        # "Who deleted this step?" and "who changed it last?" look an element up by entity and id.
        sa.Index("ix_journey_changes_entity_entity_id", "entity", "entity_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    entity: Mapped[str] = mapped_column(sa.String(16))
    entity_id: Mapped[int]
    action: Mapped[str] = mapped_column(sa.String(16))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    # A sentence for the history list when before/after alone would not say it ("from template ...").
    summary: Mapped[str] = mapped_column(sa.String(300), default="")
    # A restore that undid a delete points at that delete, so the same delete is never undone twice.
    reverts_change_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("journey_changes.id", ondelete="SET NULL"), index=True
    )

    actor: Mapped[User | None] = relationship()


class JourneyVersion(_JourneyPart, db.Model):
    """A named snapshot of a journey (its export JSON), to look back at or restore."""

    __tablename__ = "journey_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)

    created_by: Mapped[User | None] = relationship()


class JourneyTemplate(OrgScoped, db.Model):
    """An organisation's own starting point for new journeys (export JSON without the status)."""

    __tablename__ = "journey_templates"
    __table_args__ = (sa.UniqueConstraint("organisation_id", "name", name="uq_journey_templates_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    snapshot: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
