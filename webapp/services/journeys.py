"""Journey maps drawn together: journeys, their lanes, stages, steps and notes, personas, templates,
history, undo, named versions, export and import.

Every use case is one transaction (`use_case`: commit when it returns, roll back when it refuses) and
writes its JourneyChange rows in that same transaction, so the history cannot miss a change.

Writers of one journey are serialised by locking the journey row first (SELECT ... FOR UPDATE on
PostgreSQL; SQLite has one writer anyway). That keeps positions contiguous without deadlocks and means a
version check cannot race the write it guards. Elements carry a version the client echoes back as
`expected_version`: a stale one raises Conflict with both sides; an element that is gone raises NotFound
saying who deleted it.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import aliased, joinedload, selectinload

from webapp import tenancy
from webapp.extensions import db
from webapp.models import (
    Journey,
    JourneyChange,
    JourneyTemplate,
    JourneyVersion,
    Lane,
    Persona,
    Stage,
    Step,
    StepNote,
    User,
)
from webapp.models.journeys import JOURNEY_KINDS, JOURNEY_STATES, JOURNEY_STATUSES
from webapp.models.types import utcnow
from webapp.services import Actor, Conflict, NotFound, ServiceError, audit
from webapp.services import journey_format as fmt
from webapp.services.journey_templates import BLUEPRINT_LANES, BUILTIN

P = ParamSpec("P")
R = TypeVar("R")

Element = Stage | Lane | Step


def use_case(function: Callable[P, R]) -> Callable[P, R]:
    """One use case, one transaction: commit when it returns; roll back (and release locks) when it raises."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = function(*args, **kwargs)
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise
        return result

    return wrapper


# --- reading ----------------------------------------------------------------------------------------


def get_journey(journey_id: int, *, with_people: bool = False) -> Journey:
    """The current organisation's journey, or NotFound (the same for another organisation's); with its
    owner and persona loaded by the same query when `with_people` (the journey page names them)."""
    query = _JOURNEY_WITH_PEOPLE if with_people else _JOURNEY
    journey = db.session.scalar(query, {"journey_id": journey_id})
    if journey is None:
        raise NotFound("No such journey.")
    return journey


# Every journey page, poll and edit loads its journey first (see tenancy.prebuilt).
_JOURNEY = tenancy.prebuilt(sa.select(Journey).where(Journey.id == sa.bindparam("journey_id")))
_JOURNEY_WITH_PEOPLE = tenancy.prebuilt(
    sa.select(Journey)
    .where(Journey.id == sa.bindparam("journey_id"))
    .options(joinedload(Journey.owner), joinedload(Journey.persona))
)


def change_marker(journey_id: int) -> int:
    """The id of the journey's newest change (0 before any), in one indexed query: a live view redraws
    only when it moved on. NotFound for a journey that is not the current organisation's."""
    row = db.session.execute(_CHANGE_MARKER, {"journey_id": journey_id}).first()
    if row is None:
        raise NotFound("No such journey.")
    return row[1] or 0


# Every live board polls it (see tenancy.prebuilt).
_CHANGE_MARKER = tenancy.prebuilt(
    sa.select(
        Journey.id,
        sa.select(sa.func.max(JourneyChange.id))
        .where(JourneyChange.journey_id == Journey.id)
        .scalar_subquery(),
    ).where(Journey.id == sa.bindparam("journey_id"))
)


def stage_of(journey_id: int, stage_id: Any) -> Stage:
    """A stage of this journey; NotFound for another journey's or organisation's, saying who deleted it
    when this journey's history knows."""
    return _element_of(Stage, "stage", journey_id, stage_id)


def lane_of(journey_id: int, lane_id: Any) -> Lane:
    """A lane of this journey (NotFound otherwise, as for stage_of)."""
    return _element_of(Lane, "lane", journey_id, lane_id)


def step_of(journey_id: int, step_id: Any) -> Step:
    """A step of this journey (NotFound otherwise, as for stage_of)."""
    return _element_of(Step, "step", journey_id, step_id)


def note_of(journey_id: int, note_id: Any) -> StepNote:
    """A note on a step of this journey (NotFound otherwise, as for stage_of)."""
    note = db.session.scalar(
        sa.select(StepNote)
        .join(Step, Step.id == StepNote.step_id)
        .where(StepNote.id == _id(note_id), Step.journey_id == journey_id)
    )
    if note is None:
        raise _missing("note", journey_id, note_id)
    return note


@dataclass(frozen=True)
class CurvePoint:
    """One stage on the emotion curve: its steps' average emotion (None without steps), its pain points."""

    stage_id: int
    stage_name: str
    average_emotion: float | None
    pain_points: int


@dataclass(frozen=True)
class Board:
    """A journey with its lanes, stages, steps (in stage order) and notes: what an editor draws."""

    journey: Journey
    lanes: list[Lane]
    stages: list[Stage]
    steps: list[Step]
    notes: dict[int, list[StepNote]]

    def cell(self, stage_id: int, lane_id: int) -> list[Step]:
        """The steps in one stage and one lane, in order."""
        return [s for s in self.steps if s.stage_id == stage_id and s.lane_id == lane_id]

    def curve(self) -> list[CurvePoint]:
        """The emotion curve across the stages, from what is loaded (no query)."""
        emotions: dict[int, list[int]] = {}
        pains: dict[int, int] = {}
        for step in self.steps:
            emotions.setdefault(step.stage_id, []).append(step.emotion)
            pain = sum(1 for note in self.notes.get(step.id, ()) if note.kind == "pain_point")
            pains[step.stage_id] = pains.get(step.stage_id, 0) + pain
        return [
            CurvePoint(
                stage.id,
                stage.name,
                sum(emotions[stage.id]) / len(emotions[stage.id]) if stage.id in emotions else None,
                pains.get(stage.id, 0),
            )
            for stage in self.stages
        ]


@dataclass(frozen=True)
class StepCard:
    """What the editor redraws after a step edit: that step with its notes, the stages and lanes its Move
    form offers, and the emotion curve (the same names as Board, so the same templates draw it)."""

    journey: Journey
    step: Step
    stages: list[Stage]
    lanes: list[Lane]
    notes: dict[int, list[StepNote]]
    curve_points: list[CurvePoint]

    def curve(self) -> list[CurvePoint]:
        """The emotion curve across the stages (computed by the database)."""
        return self.curve_points


def board(journey_id: int, *, journey: Journey | None = None) -> Board:
    """Everything needed to draw a journey, in four queries (three when the journey is given)."""
    if journey is None or journey.id != journey_id:
        journey = get_journey(journey_id)
    steps = _steps_of(journey.id)
    return Board(
        journey, _lanes(journey.id), _stages(journey.id), steps, _notes_by_step([s.id for s in steps])
    )


def step_card(journey_id: int, step_id: int) -> StepCard:
    """One step and what its card needs, without loading the other steps: four small queries whatever
    the size of the journey (the database sums the emotion curve)."""
    row = db.session.execute(
        sa.select(Step, Journey)
        .join(Journey, Journey.id == Step.journey_id)
        .where(Step.id == _id(step_id), Step.journey_id == journey_id)
    ).first()
    if row is None:
        get_journey(journey_id)
        raise _missing("step", journey_id, step_id)
    step, journey = row
    in_stage = Step.stage_id == Stage.id
    emotion_total = sa.select(sa.func.sum(Step.emotion)).where(in_stage).scalar_subquery()
    step_count = sa.select(sa.func.count(Step.id)).where(in_stage).scalar_subquery()
    pain_points = (
        sa.select(sa.func.count(StepNote.id))
        .join(Step, Step.id == StepNote.step_id)
        .where(in_stage, StepNote.kind == "pain_point")
        .scalar_subquery()
    )
    stages, curve = [], []
    for stage, total, count, pains in db.session.execute(
        sa.select(Stage, emotion_total, step_count, pain_points)
        .where(Stage.journey_id == journey.id)
        .order_by(Stage.position, Stage.id)
    ):
        stages.append(stage)
        curve.append(CurvePoint(stage.id, stage.name, total / count if count else None, pains))
    return StepCard(journey, step, stages, _lanes(journey.id), _notes_by_step([step.id]), curve)


def list_journeys(
    *,
    search: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    status: str | None = None,
    tag: str | None = None,
    owner_id: int | None = None,
    archived: bool | None = False,
) -> list[Journey]:
    """The organisation's journeys, recently changed first; `archived` None lists both."""
    query = (
        sa.select(Journey)
        .options(joinedload(Journey.owner))  # the list names each owner
        .order_by(Journey.updated_at.desc(), Journey.id.desc())
    )
    for value, column, choices in (
        (kind, Journey.kind, JOURNEY_KINDS),
        (state, Journey.state, JOURNEY_STATES),
        (status, Journey.status, JOURNEY_STATUSES),
    ):
        if value:
            query = query.where(column == fmt.choice(value, "", column.key, choices, column.key))
    if search and search.strip():
        escaped = search.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            sa.or_(Journey.title.ilike(pattern, escape="\\"), Journey.scenario.ilike(pattern, escape="\\"))
        )
    if owner_id is not None:
        query = query.where(Journey.owner_id == owner_id)
    if archived is not None:
        query = query.where(Journey.archived_at.is_not(None) if archived else Journey.archived_at.is_(None))
    journeys = list(db.session.scalars(query))
    if tag and tag.strip():
        # Tags are a JSON list, which SQLite and PostgreSQL query differently; an organisation has
        # hundreds of journeys, not millions, so filtering here is simpler and fast enough.
        wanted = tag.strip().lower()
        journeys = [j for j in journeys if wanted in {t.lower() for t in j.tags or []}]
    return journeys


def history(journey_id: int, *, limit: int = 200, before: int | None = None) -> list[JourneyChange]:
    """The journey's changes, newest first (with `before`, those older than that change), with who."""
    journey = get_journey(journey_id)
    query = (
        sa.select(JourneyChange)
        .where(JourneyChange.journey_id == journey.id)
        .options(selectinload(JourneyChange.actor))
        .order_by(JourneyChange.id.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(JourneyChange.id < before)
    return list(db.session.scalars(query))


def list_versions(journey_id: int) -> list[JourneyVersion]:
    """The journey's named versions, newest first."""
    journey = get_journey(journey_id)
    return list(
        db.session.scalars(
            sa.select(JourneyVersion)
            .where(JourneyVersion.journey_id == journey.id)
            .order_by(JourneyVersion.id.desc())
        )
    )


def export_json(journey_id: int) -> dict[str, Any]:
    """The journey in the exchange format (see journey_format): what import_json reads back."""
    return _export(get_journey(journey_id))


def export_csv(journey_id: int) -> str:
    """One CSV row per step, safe to open in a spreadsheet (no formula injection)."""
    return fmt.csv_text(export_json(journey_id))


def digest(export: Mapping[str, Any]) -> str:
    """A fingerprint of an export (the API's ETag): equal content, equal digest."""
    canonical = json.dumps(export, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- journeys ---------------------------------------------------------------------------------------


@use_case
def create_journey(
    title: str,
    actor: Actor,
    *,
    kind: str = "customer",
    state: str = "current",
    persona_id: int | None = None,
    scenario: str = "",
    tags: list[str] | None = None,
) -> Journey:
    """A blank journey with the four service-blueprint lanes and one stage."""
    fields = fmt.journey_fields(
        {"title": title, "kind": kind, "state": state, "scenario": scenario, "tags": tags or []},
        partial=False,
    )
    persona = _persona(persona_id) if persona_id is not None else None
    journey = _new_journey(fields, persona, actor)
    _build_content(journey, {"lanes": BLUEPRINT_LANES, "stages": [{"name": "Stage 1", "steps": []}]}, actor)
    _record(journey, actor, "journey", journey.id, "create", after=_export(journey), summary="Created blank")
    return journey


@use_case
def import_json(data: Any, actor: Actor) -> Journey:
    """A new journey from export JSON, validated strictly first (ServiceError says what to fix)."""
    cleaned = fmt.validate(data)
    journey = _journey_from(cleaned, actor)
    _record(
        journey, actor, "journey", journey.id, "create", after=_export(journey), summary="Imported from JSON"
    )
    return journey


@use_case
def update_journey(
    journey_id: int, changes: Mapping[str, Any], actor: Actor, *, expected_version: int
) -> Journey:
    """Change the journey's own fields (title, kind, state, status, scenario, tags, persona_id, owner_id)."""
    journey = _journey_for_update(journey_id)
    _editable(journey)
    own = {k: v for k, v in changes.items() if k not in ("persona_id", "owner_id")}
    wanted = fmt.journey_fields(own, partial=True)
    if "persona_id" in changes:
        persona_id = changes["persona_id"]
        wanted["persona_id"] = None if persona_id is None else _persona(persona_id).id
    if "owner_id" in changes:
        wanted["owner_id"] = _member_id(changes["owner_id"])
    diff = {k: v for k, v in wanted.items() if getattr(journey, k) != v}
    if not diff:
        return journey
    _check_version("journey", journey, expected_version, "update", diff)
    before = {k: getattr(journey, k) for k in diff}
    for key, value in diff.items():
        setattr(journey, key, value)
    journey.version += 1
    _record(journey, actor, "journey", journey.id, "update", before=before, after=diff)
    return journey


@use_case
def archive_journey(journey_id: int, actor: Actor) -> Journey:
    """Hide a journey from the default list; it stays readable and can be restored."""
    journey = _journey_for_update(journey_id)
    if journey.archived_at is not None:
        return journey
    journey.archived_at = utcnow()
    journey.version += 1
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "update",
        before={"archived_at": None},
        after={"archived_at": journey.archived_at.isoformat()},
        summary="Archived",
    )
    return journey


@use_case
def restore_journey(journey_id: int, actor: Actor) -> Journey:
    """Bring an archived journey back."""
    journey = _journey_for_update(journey_id)
    if journey.archived_at is None:
        return journey
    before = {"archived_at": journey.archived_at.isoformat()}
    journey.archived_at = None
    journey.version += 1
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "restore",
        before=before,
        after={"archived_at": None},
        summary="Restored from the archive",
    )
    return journey


@use_case
def delete_journey(journey_id: int, actor: Actor) -> None:
    """Delete a journey with everything in it (its history goes too, so the audit log keeps the fact)."""
    journey = _journey_for_update(journey_id)
    audit.record(actor, "journey.delete", journey.title, journey_id=journey.id)
    db.session.delete(journey)


@use_case
def duplicate_journey(
    journey_id: int, actor: Actor, *, title: str | None = None, state: str | None = None
) -> Journey:
    """A draft copy of a journey, e.g. its future state drawn from the current one."""
    source = get_journey(journey_id)
    data = _export(source)
    if state is not None:
        data["state"] = fmt.choice(state, "", "state", JOURNEY_STATES, "state")
    if title is None:
        suffix = " (future state)" if data["state"] == "future" and source.state != "future" else " (copy)"
        title = source.title[: fmt.MAX_TITLE - len(suffix)] + suffix
    data["title"] = fmt.text(title, "", "title", fmt.MAX_TITLE, required=True, what="the title")
    data["status"] = "draft"
    journey = _journey_from(data, actor)
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "create",
        after=_export(journey),
        summary=f"Duplicated from “{source.title}” (#{source.id})",
    )
    return journey


@use_case
def replace_from_json(
    journey_id: int, data: Any, actor: Actor, *, expected_digest: str | None = None
) -> Journey:
    """Replace a journey's content by export JSON; with `expected_digest`, only if nobody changed it since."""
    journey = _journey_for_update(journey_id)
    _editable(journey)
    cleaned = fmt.validate(data)
    snapshot = _snapshot(journey)
    before = snapshot_export(snapshot)
    if expected_digest is not None and digest(before) != expected_digest:
        raise Conflict(
            "Someone changed this journey after you loaded it, so it was not replaced. "
            "Compare both versions and choose.",
            entity="journey",
            entity_id=journey.id,
            action="update",
            expected_version=expected_digest,
            stored_version=digest(before),
            stored=before,
            attempted=cleaned,
            **_last_change_by("journey", journey.id, journey_id=journey.id),
        )
    _replace_content(journey, cleaned, actor)
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "update",
        before=snapshot,
        after=_snapshot(journey),
        summary="Replaced from JSON",
    )
    return journey


# --- named versions ---------------------------------------------------------------------------------


@use_case
def save_named_version(journey_id: int, name: str, actor: Actor) -> JourneyVersion:
    """Keep a named snapshot of the journey as it is now."""
    journey = _journey_for_update(journey_id)  # no writer mid-way: the snapshot is one consistent state
    name = fmt.text(name, "", "name", fmt.MAX_NAME, required=True, what="the version's name")
    version = JourneyVersion(
        journey_id=journey.id, name=name, created_by_id=actor.user_id, snapshot=_export(journey)
    )
    db.session.add(version)
    return version


@use_case
def restore_version(journey_id: int, version_id: int, actor: Actor) -> Journey:
    """Replace the journey's content by a named version's snapshot (recorded in the history)."""
    journey = _journey_for_update(journey_id)
    _editable(journey)
    version = db.session.scalar(
        sa.select(JourneyVersion).where(
            JourneyVersion.id == version_id, JourneyVersion.journey_id == journey.id
        )
    )
    if version is None:
        raise NotFound("No such version of this journey.")
    before = _snapshot(journey)
    _replace_content(journey, fmt.validate(version.snapshot), actor)
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "restore",
        before=before,
        after=_snapshot(journey),
        summary=f"Restored version “{version.name}”",
    )
    return journey


# --- restoring to any point of the history ----------------------------------------------------------


@use_case
def restore_to_change(journey_id: int, change_id: int, actor: Actor) -> JourneyChange | None:
    """Put the journey back exactly as it was right after one change of its history.

    The later changes are undone on a copy of the content, newest first, each from what it recorded
    (the `before` of an edit, a move or a delete, the snapshot of a replace or a restore). The journey
    is then brought to that copy element by element: ids stay, so comment threads and undo stay
    attached, and what changes gets a higher version, so someone still editing the present is told
    (Conflict) instead of silently overwriting the past. The owner and the archive state stay.

    The restore is itself a change with both sides in full, so restoring to the change before it
    undoes it. Returns None, recording nothing, when the journey already is as it was then.
    """
    journey = _journey_for_update(journey_id)
    _editable(journey)
    point = db.session.scalar(
        sa.select(JourneyChange).where(
            JourneyChange.id == _id(change_id), JourneyChange.journey_id == journey.id
        )
    )
    if point is None:
        raise NotFound("No such change in this journey's history.")
    later = db.session.scalars(
        sa.select(JourneyChange)
        .where(JourneyChange.journey_id == journey.id, JourneyChange.id > point.id)
        .order_by(JourneyChange.id.desc())
    )
    now = _state(journey)
    seen: dict[tuple[str, int], int] = {}
    _see_versions(now, seen)
    target = copy.deepcopy(now)
    for change in later:
        try:
            target = _reverse(target, change, seen)
        except _Unreplayable as problem:
            raise ServiceError(
                f"The journey cannot be taken back past change #{change.id} of "
                f"{change.at:%Y-%m-%d %H:%M} UTC: {problem}. Restore a named version instead."
            ) from None
    before = _snapshot_of(now)
    wanted = snapshot_export(_snapshot_of(target))
    if wanted == snapshot_export(before):
        return None
    _apply_state(journey, target, seen)
    after = _snapshot(journey)
    if snapshot_export(after) != wanted:
        raise ServiceError(
            "The journey could not be restored exactly as it was; nothing was changed. "
            "Restore a named version instead."
        )
    who = _who(point.actor_id) or "someone"
    return _record(
        journey,
        actor,
        "journey",
        journey.id,
        "restore",
        before=before,
        after=after,
        summary=f"Restored the journey as it was after change #{point.id} "
        f"({point.action} {point.entity} by {who}, {point.at:%Y-%m-%d %H:%M} UTC)",
    )


class _Unreplayable(Exception):
    """A recorded change that cannot be undone on the copy: the history does not say enough."""


def _reverse(state: dict[str, Any], change: JourneyChange, seen: dict[tuple[str, int], int]) -> dict:
    """`state` as it was before `change` (which must be the newest change `state` still contains)."""
    entity, action, element_id = change.entity, change.action, change.entity_id
    before, after = change.before or {}, change.after or {}
    known = (
        {"create", "restore", "update", "move", "delete"}
        if entity != "note"
        else {"create", "restore", "delete"}
    )
    if action not in known:
        raise _Unreplayable(f"it is a kind of change this version cannot take back ({action} {entity})")
    if entity == "journey":
        if "stages" in before:  # the whole content was replaced: it recorded what it replaced
            replaced = _state_from_snapshot(before)
            if replaced is None:
                raise _Unreplayable("that change was recorded without the elements' ids")
            _see_versions(replaced, seen)
            return replaced
        if action == "create":
            raise _Unreplayable("that change created the journey")
        for key in _STATE_FIELDS:
            if key in before:
                state["journey"][key] = copy.deepcopy(before[key])
        return state
    stages, lanes = state["stages"], state["lanes"]
    if entity == "stage":
        if action in ("create", "restore"):
            _take(stages, element_id)
        elif action == "update":
            _pick(stages, element_id)["name"] = before["name"]
        elif action == "move":
            stages.insert(before["position"], _take(stages, element_id))
        elif action == "delete":
            stage = {"id": before["id"], "name": before["name"], "version": before["version"]}
            _see(seen, "stage", stage)
            ordered = sorted(before["steps"], key=lambda s: s["position"])
            stage["steps"] = [_state_step(record, seen) for record in ordered]
            stages.insert(before["position"], stage)
    elif entity == "lane":
        if action in ("create", "restore"):
            _take(lanes, element_id)
            for stage in stages:
                stage["steps"] = [s for s in stage["steps"] if s["lane_id"] != element_id]
        elif action == "update":
            _pick(lanes, element_id)["name"] = before["name"]
        elif action == "move":
            lanes.insert(before["position"], _take(lanes, element_id))
        elif action == "delete":
            lane = {"id": before["id"], "name": before["name"], "version": before["version"]}
            _see(seen, "lane", lane)
            lanes.insert(before["position"], lane)
            # Positions are within a stage: put each stage's steps back lowest position first.
            for record in sorted(before["steps"], key=lambda s: (s["stage_id"], s["position"])):
                steps = _pick(stages, record["stage_id"])["steps"]
                steps.insert(record["position"], _state_step(record, seen))
    elif entity == "step":
        if action in ("create", "restore"):
            _take_step(stages, element_id)
        elif action == "update":
            step = _find_step(stages, element_id)
            step.update({key: value for key, value in before.items() if key in fmt.STEP_FIELDS})
        elif action == "move":
            step = _take_step(stages, element_id)
            step["lane_id"] = before["lane_id"]
            _pick(lanes, before["lane_id"])
            _pick(stages, before["stage_id"])["steps"].insert(before["position"], step)
        elif action == "delete":
            _pick(stages, before["stage_id"])["steps"].insert(before["position"], _state_step(before, seen))
    elif entity == "note":
        if action in ("create", "restore"):
            _take(_find_step(stages, after["step_id"])["notes"], element_id)
        elif action == "delete":
            notes = _find_step(stages, before["step_id"])["notes"]
            notes.append(_state_note(before))
            notes.sort(key=lambda note: note["id"])
    return state


def _state_step(record: Mapping[str, Any], seen: dict[tuple[str, int], int]) -> dict[str, Any]:
    """A step as a delete recorded it (with its notes), as the state holds it."""
    step = {
        "id": record["id"],
        "lane_id": record["lane_id"],
        "version": record["version"],
        **{key: record[key] for key in fmt.STEP_FIELDS},
        "notes": [_state_note(note) for note in record.get("notes", [])],
    }
    _see(seen, "step", step)
    return step


def _state_note(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": record["id"],
        "kind": record["kind"],
        "text": record["text"],
        "created_by_id": record.get("created_by_id"),
    }


def _see(seen: dict[tuple[str, int], int], entity: str, element: Mapping[str, Any]) -> None:
    """Remember the highest version an element had, so that bringing it back goes above it."""
    key = (entity, element["id"])
    seen[key] = max(seen.get(key, 0), element["version"])


def _see_versions(state: Mapping[str, Any], seen: dict[tuple[str, int], int]) -> None:
    for lane in state["lanes"]:
        _see(seen, "lane", lane)
    for stage in state["stages"]:
        _see(seen, "stage", stage)
        for step in stage["steps"]:
            _see(seen, "step", step)


def _pick(items: list[dict[str, Any]], element_id: int) -> dict[str, Any]:
    for item in items:
        if item["id"] == element_id:
            return item
    raise _Unreplayable(f"element #{element_id} is not where the history says it is")


def _take(items: list[dict[str, Any]], element_id: int) -> dict[str, Any]:
    item = _pick(items, element_id)
    items.remove(item)
    return item


def _find_step(stages: list[dict[str, Any]], step_id: int) -> dict[str, Any]:
    for stage in stages:
        for step in stage["steps"]:
            if step["id"] == step_id:
                return step
    raise _Unreplayable(f"step #{step_id} is not where the history says it is")


def _take_step(stages: list[dict[str, Any]], step_id: int) -> dict[str, Any]:
    for stage in stages:
        for step in stage["steps"]:
            if step["id"] == step_id:
                stage["steps"].remove(step)
                return step
    raise _Unreplayable(f"step #{step_id} is not where the history says it is")


def _apply_state(journey: Journey, target: Mapping[str, Any], seen: dict[tuple[str, int], int]) -> None:
    """Bring the journey's rows to `target`: update what differs, bring back what is missing (with its
    old id), delete what `target` lacks. Whatever changes gets a version above any it ever had."""

    def bump(element: Any, entity: str) -> None:
        element.version = max(element.version, seen.get((entity, element.id), 0)) + 1

    def update(element: Any, entity: str, values: Mapping[str, Any]) -> bool:
        if all(getattr(element, key) == value for key, value in values.items()):
            return False
        for key, value in values.items():
            setattr(element, key, value)
        bump(element, entity)
        return True

    def version_for(entity: str, entry: Mapping[str, Any]) -> int:
        return max(seen.get((entity, entry["id"]), 0), entry["version"]) + 1

    fields = {key: target["journey"][key] for key in _STATE_FIELDS}
    if fields["persona_id"] is not None and db.session.get(Persona, fields["persona_id"]) is None:
        fields["persona_id"] = None  # the persona was deleted since: the journey has none
    if any(getattr(journey, key) != value for key, value in fields.items()):
        for key, value in fields.items():
            setattr(journey, key, value)
        journey.version += 1

    lanes = {lane.id: lane for lane in _lanes(journey.id)}
    stages = {stage.id: stage for stage in _stages(journey.id)}
    steps = {
        step.id: step for step in db.session.scalars(sa.select(Step).where(Step.journey_id == journey.id))
    }
    notes: dict[int, list[StepNote]] = {}
    for note in db.session.scalars(
        sa.select(StepNote)
        .join(Step, Step.id == StepNote.step_id)
        .where(Step.journey_id == journey.id)
        .order_by(StepNote.id)
    ):
        notes.setdefault(note.step_id, []).append(note)

    # Lane names are unique within a journey, so a lane that is renamed or goes away first takes a
    # temporary name: another lane may be about to take its name.
    lane_names = {entry["id"]: entry["name"] for entry in target["lanes"]}
    for lane in lanes.values():
        if lane_names.get(lane.id) != lane.name:
            lane.name = f"(restoring {lane.id}) {secrets.token_hex(6)}"
    db.session.flush()
    for position, entry in enumerate(target["lanes"]):
        values = {"name": entry["name"], "position": position}
        if entry["id"] in lanes:
            update(lanes[entry["id"]], "lane", values)
        else:
            db.session.add(
                Lane(id=entry["id"], journey_id=journey.id, version=version_for("lane", entry), **values)
            )
    for position, entry in enumerate(target["stages"]):
        values = {"name": entry["name"], "position": position}
        if entry["id"] in stages:
            update(stages[entry["id"]], "stage", values)
        else:
            db.session.add(
                Stage(id=entry["id"], journey_id=journey.id, version=version_for("stage", entry), **values)
            )
    db.session.flush()

    kept_notes: set[int] = set()
    for stage in target["stages"]:
        for position, entry in enumerate(stage["steps"]):
            values = {
                "stage_id": stage["id"],
                "lane_id": entry["lane_id"],
                "position": position,
                **{key: entry[key] for key in fmt.STEP_FIELDS},
            }
            step = steps.pop(entry["id"], None)
            if step is None:
                db.session.add(
                    Step(id=entry["id"], journey_id=journey.id, version=version_for("step", entry), **values)
                )
            else:
                now_notes = [note.id for note in notes.get(step.id, [])]
                # A note added or removed changes its step (as add_note and delete_note count it).
                if not update(step, "step", values) and now_notes != [n["id"] for n in entry["notes"]]:
                    bump(step, "step")
            kept_notes.update(note["id"] for note in entry["notes"])
    db.session.flush()
    present = {note.id for step_notes in notes.values() for note in step_notes}
    for stage in target["stages"]:
        for entry in stage["steps"]:
            for note in entry["notes"]:
                if note["id"] not in present:
                    db.session.add(StepNote(step_id=entry["id"], **note))
    for step_notes in notes.values():
        for note in step_notes:
            if note.id not in kept_notes:
                db.session.delete(note)
    for step in steps.values():  # what is left was not there at that point
        db.session.delete(step)
    db.session.flush()
    kept_stages = {entry["id"] for entry in target["stages"]}
    for stage in stages.values():
        if stage.id not in kept_stages:
            db.session.delete(stage)
    for lane in lanes.values():
        if lane.id not in lane_names:
            db.session.delete(lane)
    db.session.flush()


# --- templates --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateInfo:
    """A template to offer: built-in (ref is its key) or the organisation's own (ref is its id)."""

    ref: str | int
    name: str
    description: str
    kind: str
    builtin: bool
    stages: int
    steps: int


def list_templates() -> list[TemplateInfo]:
    """Built-in templates first, then the organisation's own by name."""
    infos = [
        _template_info(key, name, description, data, True)
        for key, (name, description, data) in BUILTIN.items()
    ]
    for template in db.session.scalars(sa.select(JourneyTemplate).order_by(JourneyTemplate.name)):
        infos.append(_template_info(template.id, template.name, "", template.snapshot, False))
    return infos


@use_case
def create_from_template(template: str | int, actor: Actor, *, title: str | None = None) -> Journey:
    """A new draft journey from a built-in template (its key) or an organisation template (its id)."""
    if isinstance(template, str):
        if template not in BUILTIN:
            raise NotFound(f"No built-in template {template!r}; the templates are {', '.join(BUILTIN)}.")
        name, _, snapshot = BUILTIN[template]
    else:
        stored = db.session.scalar(sa.select(JourneyTemplate).where(JourneyTemplate.id == template))
        if stored is None:
            raise NotFound("No such template.")
        name, snapshot = stored.name, stored.snapshot
    data = fmt.validate(snapshot)
    data["title"] = fmt.text(title or name, "", "title", fmt.MAX_TITLE, required=True, what="the title")
    data["status"] = "draft"
    journey = _journey_from(data, actor)
    _record(
        journey,
        actor,
        "journey",
        journey.id,
        "create",
        after=_export(journey),
        summary=f"Created from template “{name}”",
    )
    return journey


@use_case
def save_as_template(journey_id: int, name: str, actor: Actor) -> JourneyTemplate:
    """Keep a journey's content as an organisation template under `name`."""
    journey = get_journey(journey_id)
    name = fmt.text(name, "", "name", fmt.MAX_NAME, required=True, what="the template's name")
    taken = db.session.scalar(
        sa.select(JourneyTemplate.id).where(sa.func.lower(JourneyTemplate.name) == name.lower())
    )
    if taken is not None or name.lower() in {n.lower() for n, _, _ in BUILTIN.values()}:
        raise ServiceError(f"A template named “{name}” exists already; choose another name.", "name")
    snapshot = {**_export(journey), "title": name, "status": "draft"}
    template = JourneyTemplate(name=name, created_by_id=actor.user_id, snapshot=snapshot)
    db.session.add(template)
    return template


@use_case
def delete_template(template_id: int, actor: Actor) -> None:
    """Remove an organisation template (journeys made from it stay)."""
    template = db.session.scalar(sa.select(JourneyTemplate).where(JourneyTemplate.id == template_id))
    if template is None:
        raise NotFound("No such template.")
    db.session.delete(template)


# --- stages -----------------------------------------------------------------------------------------


@use_case
def add_stage(journey_id: int, name: str, actor: Actor, *, position: int | None = None) -> Stage:
    """A new stage at `position` (None: last)."""
    journey = _journey_for_update(journey_id)
    _editable(journey)
    name = fmt.stage_name(name, "")
    stages = _stages(journey.id)
    if len(stages) >= fmt.MAX_STAGES:
        raise ServiceError(f"A journey has at most {fmt.MAX_STAGES} stages.")
    stage = Stage(journey_id=journey.id, name=name, version=1)
    _place(stages, stage, _position(position))
    db.session.add(stage)
    db.session.flush()
    _record(journey, actor, "stage", stage.id, "create", after=_stage_json(stage))
    return stage


@use_case
def rename_stage(
    stage_id: int, name: str, actor: Actor, *, expected_version: int, journey_id: int | None = None
) -> Stage:
    """Give a stage another name."""
    journey, stage = _lock_element(Stage, "stage", stage_id, journey_id)
    name = fmt.stage_name(name, "")
    if name == stage.name:
        return stage
    _check_version("stage", stage, expected_version, "update", {"name": name})
    before = {"name": stage.name}
    stage.name = name
    stage.version += 1
    _record(journey, actor, "stage", stage.id, "update", before=before, after={"name": name})
    return stage


@use_case
def reorder_stage(
    stage_id: int, position: int, actor: Actor, *, expected_version: int, journey_id: int | None = None
) -> Stage:
    """Move a stage to `position` among the journey's stages."""
    journey, stage = _lock_element(Stage, "stage", stage_id, journey_id)
    return _reorder(journey, stage, "stage", _stages(journey.id), position, expected_version, actor)


@use_case
def delete_stage(
    stage_id: int, actor: Actor, *, expected_version: int, journey_id: int | None = None
) -> None:
    """Delete a stage with its steps and their notes (undo_last_delete brings them back)."""
    journey, stage = _lock_element(Stage, "stage", stage_id, journey_id)
    _check_version("stage", stage, expected_version, "delete", None)
    steps = _steps_in_stage(stage.id)
    before = {**_stage_json(stage), "steps": _step_snapshots(steps)}
    for step in steps:
        db.session.delete(step)
    db.session.delete(stage)
    db.session.flush()
    _renumber(_stages(journey.id))
    _record(
        journey,
        actor,
        "stage",
        stage.id,
        "delete",
        before=before,
        summary=f"Deleted stage “{stage.name}” with {len(steps)} step(s)",
    )


# --- lanes ------------------------------------------------------------------------------------------


@use_case
def add_lane(journey_id: int, name: str, actor: Actor, *, position: int | None = None) -> Lane:
    """A new lane at `position` (None: last); lane names are unique within a journey."""
    journey = _journey_for_update(journey_id)
    _editable(journey)
    name = fmt.lane_name(name, "")
    lanes = _lanes(journey.id)
    if len(lanes) >= fmt.MAX_LANES:
        raise ServiceError(f"A journey has at most {fmt.MAX_LANES} lanes.")
    _lane_name_free(lanes, name)
    lane = Lane(journey_id=journey.id, name=name, version=1)
    _place(lanes, lane, _position(position))
    db.session.add(lane)
    db.session.flush()
    _record(journey, actor, "lane", lane.id, "create", after=_lane_json(lane))
    return lane


@use_case
def rename_lane(
    lane_id: int, name: str, actor: Actor, *, expected_version: int, journey_id: int | None = None
) -> Lane:
    """Give a lane another (unique) name."""
    journey, lane = _lock_element(Lane, "lane", lane_id, journey_id)
    name = fmt.lane_name(name, "")
    if name == lane.name:
        return lane
    _check_version("lane", lane, expected_version, "update", {"name": name})
    _lane_name_free(_lanes(journey.id), name, except_id=lane.id)
    before = {"name": lane.name}
    lane.name = name
    lane.version += 1
    _record(journey, actor, "lane", lane.id, "update", before=before, after={"name": name})
    return lane


@use_case
def reorder_lane(
    lane_id: int, position: int, actor: Actor, *, expected_version: int, journey_id: int | None = None
) -> Lane:
    """Move a lane to `position` among the journey's lanes."""
    journey, lane = _lock_element(Lane, "lane", lane_id, journey_id)
    return _reorder(journey, lane, "lane", _lanes(journey.id), position, expected_version, actor)


@use_case
def delete_lane(lane_id: int, actor: Actor, *, expected_version: int, journey_id: int | None = None) -> None:
    """Delete a lane with its steps and their notes (undo_last_delete brings them back)."""
    journey, lane = _lock_element(Lane, "lane", lane_id, journey_id)
    _check_version("lane", lane, expected_version, "delete", None)
    steps = list(
        db.session.scalars(
            sa.select(Step).where(Step.lane_id == lane.id).order_by(Step.stage_id, Step.position, Step.id)
        )
    )
    before = {**_lane_json(lane), "steps": _step_snapshots(steps)}
    for step in steps:
        db.session.delete(step)
    db.session.delete(lane)
    db.session.flush()
    _renumber(_lanes(journey.id))
    for stage_id in {s.stage_id for s in steps}:
        _renumber(_steps_in_stage(stage_id))
    _record(
        journey,
        actor,
        "lane",
        lane.id,
        "delete",
        before=before,
        summary=f"Deleted lane “{lane.name}” with {len(steps)} step(s)",
    )


# --- steps ------------------------------------------------------------------------------------------


@use_case
def add_step(
    stage_id: int,
    lane_id: int,
    fields: Mapping[str, Any],
    actor: Actor,
    *,
    position: int | None = None,
    journey_id: int | None = None,
) -> Step:
    """A new step in a stage and lane, at `position` within the stage (None: last)."""
    journey, stage = _lock_element(Stage, "stage", stage_id, journey_id)
    lane = _lane_in(journey, lane_id)
    cleaned = fmt.step_fields(dict(fields), partial=False)
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(Step).where(Step.journey_id == journey.id)
    )
    if count >= fmt.MAX_STEPS:
        raise ServiceError(f"A journey has at most {fmt.MAX_STEPS:,} steps; split it.")
    step = Step(journey_id=journey.id, stage_id=stage.id, lane_id=lane.id, version=1, **cleaned)
    _place(_steps_in_stage(stage.id), step, _position(position))
    db.session.add(step)
    db.session.flush()
    _record(journey, actor, "step", step.id, "create", after=_step_json(step))
    return step


@use_case
def update_step(
    step_id: int,
    changes: Mapping[str, Any],
    actor: Actor,
    *,
    expected_version: int,
    journey_id: int | None = None,
) -> Step:
    """Change a step's fields (name, description, channel, touchpoint, owner_team, emotion, ...)."""
    journey, step = _lock_element(Step, "step", step_id, journey_id)
    wanted = fmt.step_fields(dict(changes), partial=True)
    diff = {k: v for k, v in wanted.items() if getattr(step, k) != v}
    if not diff:
        return step  # what the client wants is what is stored: nothing to save, nothing to conflict with
    _check_version("step", step, expected_version, "update", diff)
    before = {k: getattr(step, k) for k in diff}
    for key, value in diff.items():
        setattr(step, key, value)
    step.version += 1
    _record(journey, actor, "step", step.id, "update", before=before, after=diff)
    return step


@use_case
def move_step(
    step_id: int,
    actor: Actor,
    *,
    expected_version: int,
    stage_id: int | None = None,
    lane_id: int | None = None,
    position: int | None = None,
    journey_id: int | None = None,
) -> Step:
    """Move a step within its stage, to another stage and/or lane of the same journey, to `position`.

    Left out: the same stage, the same lane, and (in the same stage) the same position, else last.
    """
    journey, step = _lock_element(Step, "step", step_id, journey_id)
    target_stage = step.stage_id if stage_id is None else _stage_in(journey, stage_id).id
    target_lane = step.lane_id if lane_id is None else _lane_in(journey, lane_id).id
    position = _position(position)
    siblings = [s for s in _steps_in_stage(target_stage) if s.id != step.id]
    if position is None:
        position = step.position if target_stage == step.stage_id else len(siblings)
    position = min(position, len(siblings))
    if (target_stage, target_lane, position) == (step.stage_id, step.lane_id, step.position):
        return step
    attempted = {"stage_id": target_stage, "lane_id": target_lane, "position": position}
    _check_version("step", step, expected_version, "move", attempted)
    before = _place_json(step)
    source_stage = step.stage_id
    step.stage_id, step.lane_id = target_stage, target_lane
    siblings.insert(position, step)
    _renumber(siblings)
    if source_stage != target_stage:
        _renumber([s for s in _steps_in_stage(source_stage) if s.id != step.id])
    step.version += 1
    db.session.flush()
    _record(journey, actor, "step", step.id, "move", before=before, after=_place_json(step))
    return step


@use_case
def delete_step(step_id: int, actor: Actor, *, expected_version: int, journey_id: int | None = None) -> None:
    """Delete a step with its notes (undo_last_delete brings it back)."""
    journey, step = _lock_element(Step, "step", step_id, journey_id)
    _check_version("step", step, expected_version, "delete", None)
    before = _step_snapshots([step])[0]
    db.session.delete(step)
    db.session.flush()
    _renumber(_steps_in_stage(step.stage_id))
    _record(journey, actor, "step", step.id, "delete", before=before, summary=f"Deleted step “{step.name}”")


# --- notes ------------------------------------------------------------------------------------------


@use_case
def add_note(step_id: int, kind: str, text: str, actor: Actor, *, journey_id: int | None = None) -> StepNote:
    """Pin a pain point, opportunity, idea or question to a step (a change of the step: its version moves)."""
    journey, step = _lock_element(Step, "step", step_id, journey_id)
    cleaned = fmt.note({"kind": kind, "text": text}, "")
    count = db.session.scalar(
        sa.select(sa.func.count()).select_from(StepNote).where(StepNote.step_id == step.id)
    )
    if count >= fmt.MAX_NOTES_PER_STEP:
        raise ServiceError(f"A step has at most {fmt.MAX_NOTES_PER_STEP} notes.")
    note = StepNote(step_id=step.id, created_by_id=actor.user_id, **cleaned)
    db.session.add(note)
    # A note changes the step, so someone deleting it on an older view is told instead of losing the note.
    step.version += 1
    db.session.flush()
    _record(journey, actor, "note", note.id, "create", after=_note_json(note))
    return note


@use_case
def delete_note(note_id: int, actor: Actor, *, journey_id: int | None = None) -> None:
    """Remove a note from its step (undo_last_delete brings it back)."""
    if journey_id is not None:
        note_of(journey_id, note_id)  # 404 for another journey's note, "deleted by" for a deleted one
    note = db.session.scalar(sa.select(StepNote).where(StepNote.id == note_id))
    if note is None:
        raise _gone("note", note_id)
    journey, step = _lock_element(Step, "step", note.step_id, journey_id)
    note = db.session.scalar(
        sa.select(StepNote).where(StepNote.id == note_id).execution_options(populate_existing=True)
    )
    if note is None:
        raise _gone("note", note_id)
    before = _note_json(note)
    db.session.delete(note)
    step.version += 1
    _record(
        journey,
        actor,
        "note",
        note_id,
        "delete",
        before=before,
        summary=f"Deleted a {note.kind.replace('_', ' ')}",
    )


# --- undo -------------------------------------------------------------------------------------------


@use_case
def undo_last_delete(journey_id: int, actor: Actor) -> JourneyChange:
    """Bring back the last stage, lane, step or note the actor deleted in this journey, with its children.

    Undo is per person, as in other shared editors: it never brings back what someone else deleted.
    The element returns with its old id (ids are never reused) and a higher version.
    """
    journey = _journey_for_update(journey_id)
    _editable(journey)
    undone = aliased(JourneyChange)
    query = (
        sa.select(JourneyChange)
        .where(
            JourneyChange.journey_id == journey.id,
            JourneyChange.action == "delete",
            JourneyChange.entity.in_(("stage", "lane", "step", "note")),
            ~sa.exists().where(undone.reverts_change_id == JourneyChange.id),
        )
        .order_by(JourneyChange.id.desc())
        .limit(50)
    )
    if actor.user_id is not None:
        query = query.where(JourneyChange.actor_id == actor.user_id)
    # Restoring the journey to an earlier point may have brought a deleted element back already: its
    # delete is then not the one to undo.
    change = next((c for c in db.session.scalars(query) if not _exists(c.entity, c.entity_id)), None)
    if change is None:
        raise ServiceError("There is nothing to undo: you have not deleted anything in this journey.")
    restore = {"stage": _restore_stage, "lane": _restore_lane, "step": _restore_step, "note": _restore_note}
    restored = restore[change.entity](journey, change.before)
    return _record(
        journey,
        actor,
        change.entity,
        change.entity_id,
        "restore",
        after=restored,
        summary=f"Undid: {change.summary or 'a delete'}",
        reverts=change.id,
    )


def _exists(entity: str, element_id: int) -> bool:
    model = {"stage": Stage, "lane": Lane, "step": Step, "note": StepNote}[entity]
    return db.session.scalar(sa.select(model.id).where(model.id == element_id)) is not None


def _restore_stage(journey: Journey, snapshot: dict[str, Any]) -> dict[str, Any]:
    stage = Stage(
        id=snapshot["id"], journey_id=journey.id, name=snapshot["name"], version=snapshot["version"] + 1
    )
    _place(_stages(journey.id), stage, snapshot["position"])
    db.session.add(stage)
    db.session.flush()
    lanes = {lane.id for lane in _lanes(journey.id)}
    # Steps whose lane was deleted after the stage stay with that lane's delete (undo it to get them back).
    steps = [s for s in snapshot["steps"] if s["lane_id"] in lanes]
    for position, step in enumerate(sorted(steps, key=lambda s: s["position"])):
        _restore_step_row(journey, {**step, "stage_id": stage.id, "position": position})
    db.session.flush()
    return {**_stage_json(stage), "steps": _step_snapshots(_steps_in_stage(stage.id))}


def _restore_lane(journey: Journey, snapshot: dict[str, Any]) -> dict[str, Any]:
    lanes = _lanes(journey.id)
    _lane_name_free(lanes, snapshot["name"], hint="; rename that one first, then undo again")
    lane = Lane(
        id=snapshot["id"], journey_id=journey.id, name=snapshot["name"], version=snapshot["version"] + 1
    )
    _place(lanes, lane, snapshot["position"])
    db.session.add(lane)
    db.session.flush()
    stages = {stage.id for stage in _stages(journey.id)}
    for step in sorted(snapshot["steps"], key=lambda s: (s["stage_id"], s["position"])):
        if step["stage_id"] not in stages:
            continue  # its stage was deleted after the lane; that stage's undo does not bring it either
        row = _restore_step_row(journey, step, place=False)
        _place(_steps_in_stage(step["stage_id"]), row, step["position"])
        db.session.flush()
    restored = db.session.scalars(
        sa.select(Step).where(Step.lane_id == lane.id).order_by(Step.stage_id, Step.position)
    )
    return {**_lane_json(lane), "steps": _step_snapshots(list(restored))}


def _restore_step(journey: Journey, snapshot: dict[str, Any]) -> dict[str, Any]:
    stage = db.session.scalar(sa.select(Stage).where(Stage.id == snapshot["stage_id"]))
    lane = db.session.scalar(sa.select(Lane).where(Lane.id == snapshot["lane_id"]))
    if stage is None or lane is None:
        missing = "stage" if stage is None else "lane"
        raise ServiceError(
            f"The step “{snapshot['name']}” cannot come back: its {missing} was deleted since. "
            f"Bring the {missing} back first (its deleter can undo it)."
        )
    step = _restore_step_row(journey, snapshot, place=False)
    _place(_steps_in_stage(stage.id), step, snapshot["position"])
    db.session.flush()
    return _step_snapshots([step])[0]


def _restore_note(journey: Journey, snapshot: dict[str, Any]) -> dict[str, Any]:
    step = db.session.scalar(sa.select(Step).where(Step.id == snapshot["step_id"]))
    if step is None:
        raise ServiceError(
            "The note cannot come back: its step was deleted since. Bring the step back first."
        )
    note = StepNote(
        id=snapshot["id"],
        step_id=step.id,
        kind=snapshot["kind"],
        text=snapshot["text"],
        created_by_id=snapshot.get("created_by_id"),
    )
    db.session.add(note)
    step.version += 1
    db.session.flush()
    return _note_json(note)


def _restore_step_row(journey: Journey, snapshot: dict[str, Any], *, place: bool = True) -> Step:
    step = Step(
        id=snapshot["id"],
        journey_id=journey.id,
        stage_id=snapshot["stage_id"],
        lane_id=snapshot["lane_id"],
        position=snapshot["position"] if place else 0,
        version=snapshot["version"] + 1,
        **{key: snapshot[key] for key in fmt.STEP_FIELDS},
    )
    db.session.add(step)
    for note in snapshot["notes"]:
        db.session.add(
            StepNote(
                id=note["id"],
                step=step,
                kind=note["kind"],
                text=note["text"],
                created_by_id=note.get("created_by_id"),
            )
        )
    return step


# --- personas ---------------------------------------------------------------------------------------


def list_personas() -> list[Persona]:
    """The organisation's personas by name."""
    return list(db.session.scalars(sa.select(Persona).order_by(Persona.name, Persona.id)))


def get_persona(persona_id: int) -> Persona:
    """One persona of the organisation, or NotFound."""
    return _persona(persona_id)


@use_case
def create_persona(fields: Mapping[str, Any], actor: Actor) -> Persona:
    """A new persona (name required; role, goals, frustrations, quote optional)."""
    persona = Persona(**fmt.persona_fields(dict(fields), partial=False, where=""))
    db.session.add(persona)
    return persona


@use_case
def update_persona(persona_id: int, changes: Mapping[str, Any], actor: Actor) -> Persona:
    """Change a persona's fields; every journey that uses it shows the change."""
    persona = _persona(persona_id)
    for key, value in fmt.persona_fields(dict(changes), partial=True, where="").items():
        setattr(persona, key, value)
    return persona


@use_case
def delete_persona(persona_id: int, actor: Actor) -> None:
    """Remove a persona; journeys that used it keep their steps and lose only the persona."""
    db.session.delete(_persona(persona_id))


# --- helpers: loading and locking -------------------------------------------------------------------

LABELS = {"journey": "journey", "stage": "stage", "lane": "lane", "step": "step", "note": "note"}


def _journey_for_update(journey_id: int) -> Journey:
    """The journey, locked until this transaction ends: writers of one journey go one at a time."""
    journey = db.session.scalar(
        sa.select(Journey)
        .where(Journey.id == journey_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if journey is None:
        raise NotFound("No such journey.")
    return journey


def _lock_element(
    model: type[Element], entity: str, element_id: int, journey_id: int | None = None
) -> tuple[Journey, Any]:
    """An element and its journey, locked; re-read after the lock so a write committed meanwhile is seen.

    With `journey_id` (the journey a URL names), the journey is locked first and the element must be one
    of its own: a stale or foreign id costs no extra query on the way to the write.
    """
    if journey_id is not None:
        journey = _journey_for_update(journey_id)
        element = db.session.scalar(
            sa.select(model)
            .where(model.id == _id(element_id), model.journey_id == journey.id)
            .execution_options(populate_existing=True)
        )
        if element is None:
            raise _missing(entity, journey.id, element_id)
        _editable(journey)
        return journey, element
    element = db.session.scalar(sa.select(model).where(model.id == element_id))
    if element is None:
        raise _gone(entity, element_id)
    journey = _journey_for_update(element.journey_id)
    element = db.session.scalar(
        sa.select(model).where(model.id == element_id).execution_options(populate_existing=True)
    )
    if element is None:
        raise _gone(entity, element_id)
    _editable(journey)
    return journey, element


def _id(value: Any) -> int | None:
    """An id as given by a caller; anything but a whole number names nothing (None)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _element_of(model: type[Element], entity: str, journey_id: int, element_id: Any) -> Any:
    element = db.session.scalar(
        sa.select(model).where(model.id == _id(element_id), model.journey_id == journey_id)
    )
    if element is None:
        raise _missing(entity, journey_id, element_id)
    return element


def _missing(entity: str, journey_id: int, element_id: Any) -> NotFound:
    """NotFound for an element that is not in this journey. When this journey's history knows it, someone
    deleted it: say who (as `_gone` does). Otherwise it never was here: a plain "no such", the same for
    another journey's or another organisation's id."""
    if _id(element_id) is not None:
        known = db.session.scalar(
            sa.select(JourneyChange.id)
            .where(
                JourneyChange.journey_id == journey_id,
                JourneyChange.entity == entity,
                JourneyChange.entity_id == element_id,
            )
            .limit(1)
        )
        if known is not None:
            return _gone(entity, element_id)
    return NotFound(f"No such {LABELS[entity]} in this journey.", f"{entity}_id")


def _editable(journey: Journey) -> None:
    if journey.archived_at is not None:
        raise ServiceError("This journey is archived; restore it before changing it.")


def _stage_in(journey: Journey, stage_id: int) -> Stage:
    stage = db.session.scalar(sa.select(Stage).where(Stage.id == stage_id, Stage.journey_id == journey.id))
    if stage is None:
        raise NotFound("No such stage in this journey.", "stage_id")
    return stage


def _lane_in(journey: Journey, lane_id: int) -> Lane:
    lane = db.session.scalar(sa.select(Lane).where(Lane.id == lane_id, Lane.journey_id == journey.id))
    if lane is None:
        raise NotFound("No such lane in this journey.", "lane_id")
    return lane


def _persona(persona_id: Any) -> Persona:
    if isinstance(persona_id, bool) or not isinstance(persona_id, int):
        raise ServiceError("Choose a persona by its id.", "persona_id")
    persona = db.session.scalar(sa.select(Persona).where(Persona.id == persona_id))
    if persona is None:
        raise NotFound("No such persona.", "persona_id")
    return persona


def _member_id(user_id: Any) -> int | None:
    from webapp.services.accounts import membership_in

    if user_id is None:
        return None
    if isinstance(user_id, bool) or not isinstance(user_id, int):
        raise ServiceError("Choose the owner by their user id.", "owner_id")
    if membership_in(tenancy.current().organisation_id, user_id) is None:
        raise ServiceError("The owner must be a member of this organisation.", "owner_id")
    return user_id


def _position(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ServiceError(f"A position is a whole number from 0, not {value!r}.", "position")
    return value


def _lanes(journey_id: int) -> list[Lane]:
    return list(db.session.scalars(_LANES, {"journey_id": journey_id}))


def _stages(journey_id: int) -> list[Stage]:
    return list(db.session.scalars(_STAGES, {"journey_id": journey_id}))


def _steps_in_stage(stage_id: int) -> list[Step]:
    return list(
        db.session.scalars(sa.select(Step).where(Step.stage_id == stage_id).order_by(Step.position, Step.id))
    )


def _steps_of(journey_id: int) -> list[Step]:
    return list(db.session.scalars(_STEPS, {"journey_id": journey_id}))


def _notes_by_step(step_ids: list[int]) -> dict[int, list[StepNote]]:
    notes: dict[int, list[StepNote]] = {step_id: [] for step_id in step_ids}
    if step_ids:
        for note in db.session.scalars(_NOTES, {"step_ids": step_ids}):
            notes[note.step_id].append(note)
    return notes


# A board's queries: every journey page, board redraw and data-vs-story page runs them (tenancy.prebuilt).
_LANES = tenancy.prebuilt(
    sa.select(Lane).where(Lane.journey_id == sa.bindparam("journey_id")).order_by(Lane.position, Lane.id)
)
_STAGES = tenancy.prebuilt(
    sa.select(Stage).where(Stage.journey_id == sa.bindparam("journey_id")).order_by(Stage.position, Stage.id)
)
_STEPS = tenancy.prebuilt(
    sa.select(Step)
    .join(Stage, Stage.id == Step.stage_id)
    .where(Step.journey_id == sa.bindparam("journey_id"))
    .order_by(Stage.position, Stage.id, Step.position, Step.id)
)
_NOTES = tenancy.prebuilt(
    sa.select(StepNote)
    .where(StepNote.step_id.in_(sa.bindparam("step_ids", expanding=True)))
    .order_by(StepNote.id)
)


def _lane_name_free(lanes: list[Lane], name: str, *, except_id: int | None = None, hint: str = "") -> None:
    for lane in lanes:
        if lane.id != except_id and lane.name.lower() == name.lower():
            raise ServiceError(f"This journey has a lane named “{lane.name}” already{hint}.", "name")


# --- helpers: positions -----------------------------------------------------------------------------


def _renumber(items: list[Any]) -> None:
    """Positions 0..n-1 in list order; rows already in place are not written."""
    for index, item in enumerate(items):
        if item.position != index:
            item.position = index


def _place(items: list[Any], item: Any, position: int | None) -> None:
    """Put `item` at `position` (None: last; clamped) among `items`, renumbering them all."""
    ordered = [i for i in items if i is not item]
    index = len(ordered) if position is None else min(position, len(ordered))
    ordered.insert(index, item)
    _renumber(ordered)


def _reorder(
    journey: Journey,
    element: Stage | Lane,
    entity: str,
    siblings: list[Any],
    position: int,
    expected_version: int,
    actor: Actor,
) -> Any:
    target = _position(position)
    if target is None:
        raise ServiceError("Say where to move it: a position from 0.", "position")
    target = min(target, len(siblings) - 1)
    if target == element.position:
        return element
    _check_version(entity, element, expected_version, "move", {"position": target})
    before = {"position": element.position}
    _place(siblings, element, target)
    element.version += 1
    _record(journey, actor, entity, element.id, "move", before=before, after={"position": element.position})
    return element


# --- helpers: versions, conflicts, history ----------------------------------------------------------


def _check_version(
    entity: str, element: Any, expected_version: int, action: str, attempted: dict[str, Any] | None
) -> None:
    """Refuse with both sides when the client's version is not the stored one."""
    if element.version == expected_version:
        return
    journey_id = element.id if entity == "journey" else element.journey_id
    last = _last_change_by(entity, element.id, journey_id=journey_id)
    who = last["changed_by"] or "someone else"
    what = LABELS[entity]
    outcome = {
        "delete": f"so it was not deleted. Look at the change, then delete the {what} again if need be.",
        "move": "so it was not moved. Compare both versions and choose.",
    }.get(action, "so your change was not saved. Compare both versions and choose.")
    raise Conflict(
        f"{who[0].upper() + who[1:]} changed this {what} after you opened it, {outcome}",
        entity=entity,
        entity_id=element.id,
        action=action,
        expected_version=expected_version,
        stored_version=element.version,
        stored=_json_of(entity, element),
        attempted=attempted,
        **last,
    )


def _last_change_by(entity: str, entity_id: int, *, journey_id: int) -> dict[str, Any]:
    change = db.session.scalar(
        sa.select(JourneyChange)
        .where(
            JourneyChange.journey_id == journey_id,
            JourneyChange.entity == entity,
            JourneyChange.entity_id == entity_id,
        )
        .order_by(JourneyChange.id.desc())
        .limit(1)
    )
    if change is None:
        return {"changed_by": None, "changed_at": None}
    return {"changed_by": _who(change.actor_id), "changed_at": change.at}


def _who(user_id: int | None) -> str | None:
    user = db.session.get(User, user_id) if user_id is not None else None
    return user.label if user else None


def _gone(entity: str, element_id: int) -> NotFound:
    """NotFound for an element that is not there, saying who deleted it when the history knows."""
    what = LABELS[entity]
    change = db.session.scalar(
        sa.select(JourneyChange)
        .where(
            JourneyChange.entity == entity,
            JourneyChange.entity_id == element_id,
            JourneyChange.action == "delete",
        )
        .order_by(JourneyChange.id.desc())
        .limit(1)
    )
    if change is not None:
        who = _who(change.actor_id) or "someone"
        return NotFound(
            f"This {what} was deleted by {who} at {change.at:%Y-%m-%d %H:%M} UTC; your change was not saved."
        )
    return NotFound(
        f"This {what} does not exist (any more): it, its stage or lane may have been deleted, or the journey "
        "replaced. Your change was not saved."
    )


def _record(
    journey: Journey,
    actor: Actor,
    entity: str,
    entity_id: int,
    action: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    summary: str = "",
    reverts: int | None = None,
) -> JourneyChange:
    """Add a history row to the current transaction, and mark the journey as changed."""
    change = JourneyChange(
        journey_id=journey.id,
        actor_id=actor.user_id,
        entity=entity,
        entity_id=entity_id,
        action=action,
        before=_jsonable(before),
        after=_jsonable(after),
        summary=summary[:300],
        reverts_change_id=reverts,
    )
    db.session.add(change)
    journey.updated_at = utcnow()
    return change


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in value.items()}


def _json_of(entity: str, element: Any) -> dict[str, Any]:
    return {"journey": _journey_json, "stage": _stage_json, "lane": _lane_json, "step": _step_json}[entity](
        element
    )


def _journey_json(journey: Journey) -> dict[str, Any]:
    return {
        "id": journey.id,
        "title": journey.title,
        "kind": journey.kind,
        "state": journey.state,
        "status": journey.status,
        "scenario": journey.scenario,
        "tags": list(journey.tags or []),
        "persona_id": journey.persona_id,
        "owner_id": journey.owner_id,
        "archived_at": journey.archived_at.isoformat() if journey.archived_at else None,
        "version": journey.version,
    }


def _stage_json(stage: Stage) -> dict[str, Any]:
    return {"id": stage.id, "name": stage.name, "position": stage.position, "version": stage.version}


def _lane_json(lane: Lane) -> dict[str, Any]:
    return {"id": lane.id, "name": lane.name, "position": lane.position, "version": lane.version}


def _step_json(step: Step) -> dict[str, Any]:
    return {
        "id": step.id,
        "stage_id": step.stage_id,
        "lane_id": step.lane_id,
        "position": step.position,
        **{key: getattr(step, key) for key in fmt.STEP_FIELDS},
        "version": step.version,
    }


def _place_json(step: Step) -> dict[str, Any]:
    stage = db.session.get(Stage, step.stage_id)
    lane = db.session.get(Lane, step.lane_id)
    return {
        "stage_id": step.stage_id,
        "stage": stage.name if stage else None,
        "lane_id": step.lane_id,
        "lane": lane.name if lane else None,
        "position": step.position,
    }


def _note_json(note: StepNote) -> dict[str, Any]:
    return {
        "id": note.id,
        "step_id": note.step_id,
        "kind": note.kind,
        "text": note.text,
        "created_by_id": note.created_by_id,
    }


def _step_snapshots(steps: list[Step]) -> list[dict[str, Any]]:
    """Steps with their notes, as a delete keeps them for undo."""
    notes = _notes_by_step([s.id for s in steps])
    return [{**_step_json(s), "notes": [_note_json(n) for n in notes[s.id]]} for s in steps]


# --- helpers: building from the exchange format -----------------------------------------------------


def _export(journey: Journey) -> dict[str, Any]:
    return snapshot_export(_snapshot_of(_state(journey)))


# The journey's own fields a restore to an earlier point puts back. Its owner and whether it is archived
# are not content: they stay as they are.
_STATE_FIELDS = (*fmt.JOURNEY_FIELDS, "persona_id")
# What a snapshot holds beyond the export JSON: ids and versions (see _snapshot_of).
_SNAPSHOT_ONLY = frozenset({"id", "version", "created_by_id", "persona_id"})


def _state(journey: Journey) -> dict[str, Any]:
    """The journey's content with every element's id and version, as plain data: what the history is
    replayed on (see restore_to_change) and what a snapshot is made of.

    {"journey": {title, kind, state, status, scenario, tags, persona_id},
     "lanes": [{id, name, version}],
     "stages": [{id, name, version, "steps": [{id, lane_id, version, <fmt.STEP_FIELDS>,
                                               "notes": [{id, kind, text, created_by_id}]}]}]}
    Steps are in their stage's order; notes in the order they were added (by id).
    """
    steps = _steps_of(journey.id)
    notes = _notes_by_step([s.id for s in steps])
    by_stage: dict[int, list[dict[str, Any]]] = {}
    for step in steps:
        by_stage.setdefault(step.stage_id, []).append(
            {
                "id": step.id,
                "lane_id": step.lane_id,
                "version": step.version,
                **{key: getattr(step, key) for key in fmt.STEP_FIELDS},
                "notes": [
                    {"id": n.id, "kind": n.kind, "text": n.text, "created_by_id": n.created_by_id}
                    for n in notes[step.id]
                ],
            }
        )
    return {
        "journey": {
            **{key: getattr(journey, key) for key in fmt.JOURNEY_FIELDS},
            "tags": list(journey.tags or []),
            "persona_id": journey.persona_id,
        },
        "lanes": [{"id": lane.id, "name": lane.name, "version": lane.version} for lane in _lanes(journey.id)],
        "stages": [
            {"id": s.id, "name": s.name, "version": s.version, "steps": by_stage.get(s.id, [])}
            for s in _stages(journey.id)
        ],
    }


def _snapshot(journey: Journey) -> dict[str, Any]:
    return _snapshot_of(_state(journey))


def _snapshot_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state as the export JSON plus each lane's, stage's, step's and note's id (and version, and the
    persona's id): what a change of the whole content records before and after, so that the history
    can be replayed across it. `snapshot_export` turns it into the export JSON."""
    fields = state["journey"]
    persona_id = fields["persona_id"]
    # Read by id rather than through the relationship, which may still hold the persona before a replace.
    persona = db.session.get(Persona, persona_id) if persona_id is not None else None
    lane_names = {lane["id"]: lane["name"] for lane in state["lanes"]}
    return {
        "title": fields["title"],
        "kind": fields["kind"],
        "state": fields["state"],
        "status": fields["status"],
        "persona": None if persona is None else {key: getattr(persona, key) for key in fmt.PERSONA_KEYS},
        "scenario": fields["scenario"],
        "tags": list(fields["tags"]),
        "lanes": [
            {"name": lane["name"], "id": lane["id"], "version": lane["version"]} for lane in state["lanes"]
        ],
        "stages": [
            {
                "name": stage["name"],
                "steps": [
                    {
                        "name": step["name"],
                        "lane": lane_names[step["lane_id"]],
                        "channel": step["channel"],
                        "emotion": step["emotion"],
                        "moment_of_truth": step["moment_of_truth"],
                        "expected_duration_s": step["expected_duration_s"],
                        "description": step["description"],
                        "touchpoint": step["touchpoint"],
                        "owner_team": step["owner_team"],
                        "notes": [dict(note) for note in step["notes"]],
                        "id": step["id"],
                        "version": step["version"],
                    }
                    for step in stage["steps"]
                ],
                "id": stage["id"],
                "version": stage["version"],
            }
            for stage in state["stages"]
        ],
        "persona_id": persona_id,
    }


def snapshot_export(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The export JSON of a snapshot a change recorded (its ids and versions left out); an export JSON
    stays as it is."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if k not in _SNAPSHOT_ONLY}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    return {
        key: plain(value) if key in ("lanes", "stages") else value
        for key, value in snapshot.items()
        if key != "persona_id"
    }


def _state_from_snapshot(snapshot: Mapping[str, Any]) -> dict[str, Any] | None:
    """The state a snapshot records; None for an export JSON without ids (recorded by older versions)."""
    if "persona_id" not in snapshot or any("id" not in lane for lane in snapshot["lanes"]):
        return None
    lane_ids = {lane["name"]: lane["id"] for lane in snapshot["lanes"]}
    return {
        "journey": {
            **{key: snapshot[key] for key in fmt.JOURNEY_FIELDS},
            "tags": list(snapshot["tags"]),
            "persona_id": snapshot["persona_id"],
        },
        "lanes": [
            {"id": lane["id"], "name": lane["name"], "version": lane["version"]} for lane in snapshot["lanes"]
        ],
        "stages": [
            {
                "id": stage["id"],
                "name": stage["name"],
                "version": stage["version"],
                "steps": [
                    {
                        "id": step["id"],
                        "lane_id": lane_ids[step["lane"]],
                        "version": step["version"],
                        **{key: step[key] for key in fmt.STEP_FIELDS},
                        "notes": [dict(note) for note in step["notes"]],
                    }
                    for step in stage["steps"]
                ],
            }
            for stage in snapshot["stages"]
        ],
    }


def _new_journey(fields: dict[str, Any], persona: Persona | None, actor: Actor) -> Journey:
    journey = Journey(
        title=fields["title"],
        kind=fields["kind"],
        state=fields["state"],
        status=fields.get("status", "draft"),
        scenario=fields.get("scenario", ""),
        tags=fields.get("tags", []),
        persona_id=persona.id if persona else None,
        owner_id=actor.user_id,
        version=1,
    )
    db.session.add(journey)
    db.session.flush()
    return journey


def _journey_from(data: dict[str, Any], actor: Actor) -> Journey:
    """A new journey, owned by the actor, from validated export JSON."""
    journey = _new_journey(data, _persona_from(data["persona"]), actor)
    _build_content(journey, data, actor)
    return journey


def _replace_content(journey: Journey, data: dict[str, Any], actor: Actor) -> None:
    """The journey's fields and elements become those of `data` (new element ids; version moves on)."""
    # Deleting the stages cascades (in the database) to their steps and notes; lanes go next.
    db.session.execute(
        sa.delete(Stage).where(Stage.journey_id == journey.id),
        execution_options={"synchronize_session": False},
    )
    db.session.execute(
        sa.delete(Lane).where(Lane.journey_id == journey.id), execution_options={"synchronize_session": False}
    )
    db.session.expire_all()  # objects of the deleted rows must not linger in the session
    journey = _journey_for_update(journey.id)
    for key in fmt.JOURNEY_FIELDS:
        setattr(journey, key, data[key])
    persona = _persona_from(data["persona"])
    journey.persona_id = persona.id if persona else None
    journey.version += 1
    _build_content(journey, data, actor)


def _persona_from(fields: dict[str, Any] | None) -> Persona | None:
    """The persona with exactly these fields, or a new one (so round trips do not multiply personas)."""
    if fields is None:
        return None
    persona = db.session.scalar(
        sa.select(Persona)
        .where(*(getattr(Persona, key) == value for key, value in fields.items()))
        .order_by(Persona.id)
        .limit(1)
    )
    if persona is None:
        persona = Persona(**fields)
        db.session.add(persona)
        db.session.flush()
    return persona


def _build_content(journey: Journey, data: Mapping[str, Any], actor: Actor) -> None:
    """Lanes, stages, steps and notes of validated export JSON, added to a journey that has none."""
    lanes: dict[str, Lane] = {}
    for position, entry in enumerate(data["lanes"]):
        lane = Lane(journey_id=journey.id, name=entry["name"], position=position, version=1)
        db.session.add(lane)
        lanes[entry["name"]] = lane
    for stage_position, entry in enumerate(data["stages"]):
        stage = Stage(journey_id=journey.id, name=entry["name"], position=stage_position, version=1)
        db.session.add(stage)
        for position, raw in enumerate(entry["steps"]):
            step = Step(
                journey_id=journey.id,
                stage=stage,
                lane=lanes[raw["lane"]],
                position=position,
                version=1,
                name=raw["name"],
                **{key: raw[key] for key in fmt.STEP_FIELDS if key != "name"},
            )
            db.session.add(step)
            for note in raw["notes"]:
                db.session.add(
                    StepNote(step=step, kind=note["kind"], text=note["text"], created_by_id=actor.user_id)
                )
    db.session.flush()


def _template_info(
    ref: str | int, name: str, description: str, data: dict[str, Any], builtin: bool
) -> TemplateInfo:
    stages = data.get("stages") or []
    return TemplateInfo(
        ref=ref,
        name=name,
        description=description,
        kind=data.get("kind", "customer"),
        builtin=builtin,
        stages=len(stages),
        steps=sum(len(stage.get("steps") or []) for stage in stages),
    )
