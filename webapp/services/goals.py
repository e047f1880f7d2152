"""Improvement goals: KPIs tied to a journey (or one of its steps), their measurements, status, check-ins,
initiatives, before/after figures and watermelon warnings.

Measured KPIs are recorded by `record_from_snapshot`, which the overlay's measurement job calls when a
snapshot of a linked log finishes: one measurement per goal and snapshot, dated at the end of the log's
period. Survey KPIs are recorded when survey scores are imported (`record_from_surveys`), one per day with
scores; manual KPIs by hand or through the API.

The status rule (`compute_status`) is a pure function of the goal's figures, the date and the
organisation's tolerances. A goal stores its latest result (status, current value, progress, expected)
so the dashboard reads one row per goal; `recompute` refreshes it at every measurement and
`daily_sweep` as time passes. Every change writes an audit event and a GoalEvent in its transaction.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import contains_eager, joinedload, lazyload, selectinload

from webapp import queue, tenancy
from webapp.extensions import db
from webapp.models import (
    CheckIn,
    EventLog,
    Goal,
    GoalEvent,
    GoalMeasurement,
    GoalSettings,
    Initiative,
    Journey,
    LogSummary,
    MeasurementSnapshot,
    Membership,
    Notification,
    Organisation,
    Role,
    Step,
    StepMeasurement,
    SurveyScore,
    User,
)
from webapp.models.goals import (
    DIRECTIONS,
    GOAL_STATUSES,
    INITIATIVE_STATES,
    JOURNEY_KPIS,
    KPI_SOURCES,
    STEP_KPIS,
    SURVEY_KPIS,
)
from webapp.models.types import utcnow
from webapp.services import Actor, Conflict, Forbidden, NotFound, ServiceError, audit
from webapp.services import eventlogs as eventlog_service
from webapp.services import overlay as overlay_service
from webapp.services.overlay_view import human_duration

log = logging.getLogger(__name__)

MEASURED_KPIS = JOURNEY_KPIS + STEP_KPIS
DURATION_KPIS = ("median_case_duration_s", "median_visit_s", "median_wait_before_s")
SHARE_KPIS = ("conformance_share", "rework_share", "cases_reached_share", "rework_cases_share")
KPI_LABELS = {
    "median_case_duration_s": "Median case duration",
    "conformance_share": "Share of cases following the journey",
    "rework_share": "Share of cases with rework",
    "cases": "Cases",
    "median_visit_s": "Median time in the step",
    "median_wait_before_s": "Median wait before the step",
    "cases_reached_share": "Share of cases reaching the step",
    "rework_cases_share": "Share of the step's cases with rework",
    "nps": "NPS",
    "csat": "CSAT",
    "ces": "CES",
}
STATUS_LABELS = {
    "no_data": "No data",
    "on_track": "On track",
    "at_risk": "At risk",
    "off_track": "Off track",
    "achieved": "Achieved",
    "missed": "Missed",
}
GREEN = ("on_track", "achieved")
CLOSED = ("achieved", "missed")
DEFAULT_ON_TRACK, DEFAULT_AT_RISK = 0.10, 0.30
# Comparisons at the boundaries are inclusive; floating-point noise must not move a goal across one.
EPSILON = 1e-9
# "Worse" for a watermelon warning: durations more than 5 % longer, shares 2 points higher, survey
# scores down by more than these points (CES up: lower is better there).
WORSE_DURATION_RELATIVE = 0.05
WORSE_SHARE_POINTS = 0.02
WORSE_SURVEY = {"nps": 5.0, "csat": 0.1, "ces": 0.1}
MAX_NOTE_CHARS = 5000


class AutomaticKpi(ServiceError):
    """A measurement by hand for a KPI that is measured automatically (the API answers 409)."""


P = ParamSpec("P")
R = TypeVar("R")


def _use_case(function: Callable[P, R]) -> Callable[P, R]:
    """One use case, one transaction: the function commits; a refusal rolls everything back."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except BaseException:
            db.session.rollback()
            raise

    return wrapper


# --- the status rule (pure) --------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerances:
    """How far behind the expected progress a goal may be: on track within `on_track`, at risk within
    `at_risk`, else off track."""

    on_track: float = DEFAULT_ON_TRACK
    at_risk: float = DEFAULT_AT_RISK


@dataclass(frozen=True)
class StatusResult:
    status: str
    progress: float | None
    expected: float


def expected_share(start_on: date, due_on: date, today: date) -> float:
    """The share of the days from start to due that have passed, clamped to 0…1."""
    span = (due_on - start_on).days
    if span <= 0:
        return 1.0 if today >= start_on else 0.0
    return min(1.0, max(0.0, (today - start_on).days / span))


def _meets_target(value: float, target: float, direction: str) -> bool:
    return value <= target + EPSILON if direction == "lower" else value >= target - EPSILON


def progress_of(current: float, baseline: float, target: float, direction: str) -> float:
    """(current − baseline) / (target − baseline); when the baseline already met the target (or equals
    it) the formula says nothing, so progress is 1 while the target is met and 0 otherwise."""
    gap = target - baseline
    if abs(gap) <= EPSILON or _meets_target(baseline, target, direction):
        return 1.0 if _meets_target(current, target, direction) else 0.0
    return (current - baseline) / gap + 0.0  # never −0.0


def compute_status(
    *,
    baseline: float | None,
    target: float,
    current: float | None,
    direction: str,
    start_on: date,
    due_on: date,
    today: date,
    tolerances: Tolerances = Tolerances(),
) -> StatusResult:
    """The status rule: achieved when progress ≥ 1; after the due date without it, missed; otherwise
    on track when progress ≥ expected − on_track tolerance, at risk when ≥ expected − at_risk
    tolerance, else off track. No measurement (or no baseline yet): no_data."""
    expected = expected_share(start_on, due_on, today)
    if current is None or baseline is None:
        return StatusResult("no_data", None, expected)
    progress = progress_of(current, baseline, target, direction)
    if progress >= 1.0 - EPSILON:
        status = "achieved"
    elif today > due_on:
        status = "missed"
    elif progress >= expected - tolerances.on_track - EPSILON:
        status = "on_track"
    elif progress >= expected - tolerances.at_risk - EPSILON:
        status = "at_risk"
    else:
        status = "off_track"
    return StatusResult(status, progress, expected)


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.0f}" if abs(value) >= 1000 or float(value).is_integer() else f"{value:.4g}"


def explain(goal: Goal, tolerances: Tolerances) -> str:
    """The rule and this goal's numbers, for the tooltip of its status badge."""
    rule = (
        "progress = (current − baseline) / (target − baseline); expected = share of the time from start "
        f"to due that has passed. Achieved when progress ≥ 1; on track when progress ≥ expected − "
        f"{tolerances.on_track:.2f}; at risk when ≥ expected − {tolerances.at_risk:.2f}; else off track; "
        "missed after the due date without achieving it."
    )
    expected = f"expected = {_num(goal.expected)} ({goal.start_on.isoformat()} → {goal.due_on.isoformat()})"
    if goal.status == "no_data" or goal.progress is None:
        reason = "No measurement yet." if goal.current_value is None else "No baseline yet."
        return f"{STATUS_LABELS['no_data']}: {reason} {expected}. Rule: {rule}"
    numbers = (
        f"progress = ({_num(goal.current_value)} − {_num(goal.baseline)}) / "
        f"({_num(goal.target)} − {_num(goal.baseline)}) = {goal.progress:.2f}; {expected}"
    )
    expected_value = goal.expected or 0.0
    why = {
        "achieved": "progress ≥ 1",
        "missed": f"the due date {goal.due_on.isoformat()} passed with progress < 1",
        "on_track": f"{goal.progress:.2f} ≥ {expected_value - tolerances.on_track:.2f}",
        "at_risk": f"{goal.progress:.2f} ≥ {expected_value - tolerances.at_risk:.2f}",
        "off_track": f"{goal.progress:.2f} < {expected_value - tolerances.at_risk:.2f}",
    }.get(goal.status, "")
    return f"{STATUS_LABELS.get(goal.status, goal.status)}: {numbers}; {why}. Rule: {rule}"


# --- formatting -------------------------------------------------------------------------------------


def kpi_label(goal: Goal) -> str:
    """What the KPI is called on a page."""
    if goal.kpi_source == "manual":
        return goal.kpi_metric + (f" ({goal.kpi_unit})" if goal.kpi_unit else "")
    return KPI_LABELS.get(goal.kpi_metric, goal.kpi_metric)


def format_value(metric: str, value: float | None, unit: str = "") -> str:
    """A KPI value the way a person reads it: 4 h, 62 %, NPS 31, 4.2."""
    if value is None:
        return "–"
    if metric in DURATION_KPIS:
        return human_duration(value)
    if metric in SHARE_KPIS:
        return f"{value * 100:.1f} %" if abs(value * 100 - round(value * 100)) > 0.05 else f"{value:.0%}"
    if metric == "cases":
        return f"{value:,.0f}"
    if metric == "nps":
        return f"{value:.0f}"
    if metric in ("csat", "ces"):
        return f"{value:.2f}"
    text = f"{value:,.6g}"
    return f"{text} {unit}".strip()


def goal_value(goal: Goal, value: float | None) -> str:
    """A value of this goal's KPI, formatted."""
    return format_value(goal.kpi_metric, value, goal.kpi_unit)


# --- settings --------------------------------------------------------------------------------------


def tolerances() -> Tolerances:
    """The organisation's tolerances (the defaults until an admin saves others)."""
    settings = db.session.scalar(sa.select(GoalSettings))
    if settings is None:
        return Tolerances()
    return Tolerances(settings.on_track_tolerance, settings.at_risk_tolerance)


@_use_case
def save_tolerances(on_track: Any, at_risk: Any, actor: Actor, *, now: datetime | None = None) -> Tolerances:
    """Store the tolerances (0 ≤ on track ≤ at risk ≤ 1) and recompute every goal's status with them."""
    on, risk = _number(on_track, "on_track"), _number(at_risk, "at_risk")
    if on is None or risk is None:
        raise ServiceError("Give both tolerances, as shares like 0.10 and 0.30.", field="on_track")
    if not 0 <= on <= 1:
        raise ServiceError("The on-track tolerance is a share between 0 and 1, like 0.10.", field="on_track")
    if not 0 <= risk <= 1:
        raise ServiceError("The at-risk tolerance is a share between 0 and 1, like 0.30.", field="at_risk")
    if risk < on:
        raise ServiceError(
            "The at-risk tolerance must be at least the on-track tolerance (at risk lies beyond on track).",
            field="at_risk",
        )
    settings = db.session.scalar(sa.select(GoalSettings))
    if settings is None:
        settings = GoalSettings()
        db.session.add(settings)
    before = (settings.on_track_tolerance, settings.at_risk_tolerance)
    settings.on_track_tolerance, settings.at_risk_tolerance = on, risk
    audit.record(actor, "goal.tolerances_saved", "goal settings", on_track=on, at_risk=risk, before=before)
    db.session.flush()
    notes = []
    cache: dict[int, list[SnapshotFigures]] = {}
    for goal in _goals():
        notes += _recompute(goal, now or utcnow(), actor, tol=Tolerances(on, risk), figures=cache)
    _commit(notes)
    return Tolerances(on, risk)


# --- reading ----------------------------------------------------------------------------------------


def _goals(*criteria: Any) -> list[Goal]:
    return list(db.session.scalars(sa.select(Goal).where(*criteria).order_by(Goal.id)))


def get_goal(goal_id: int, *, for_update: bool = False, with_journey_and_owner: bool = False) -> Goal:
    """The current organisation's goal, or NotFound (the same for another organisation's). `for_update`
    locks its row until the transaction ends, so two saves of one goal take turns;
    `with_journey_and_owner` loads those by the same query (the goal's page names them)."""
    query = sa.select(Goal).where(Goal.id == goal_id)
    if with_journey_and_owner:
        query = query.options(joinedload(Goal.journey), joinedload(Goal.owner))
    if for_update:
        query = query.with_for_update(of=Goal).execution_options(populate_existing=True)
    goal = db.session.scalar(query)
    if goal is None:
        raise NotFound("No such goal.")
    return goal


def list_goals(
    *, status: str | None = None, owner_id: int | None = None, journey_id: int | None = None
) -> list[Goal]:
    """The organisation's goals, filtered, soonest due first."""
    query = (
        sa.select(Goal)
        .options(selectinload(Goal.owner), selectinload(Goal.journey))
        .order_by(Goal.due_on, Goal.id)
    )
    if status:
        if status not in GOAL_STATUSES:
            raise ServiceError(f"The status is one of {', '.join(GOAL_STATUSES)}.", field="status")
        query = query.where(Goal.status == status)
    if owner_id:
        query = query.where(Goal.owner_id == owner_id)
    if journey_id:
        query = query.where(Goal.journey_id == journey_id)
    return list(db.session.scalars(query))


def measurements(goal_id: int) -> list[GoalMeasurement]:
    """A goal's measurements, oldest first."""
    return list(
        db.session.scalars(
            sa.select(GoalMeasurement)
            .where(GoalMeasurement.goal_id == goal_id)
            .order_by(GoalMeasurement.at, GoalMeasurement.id)
        )
    )


def measurements_of(goal_ids: Iterable[int]) -> dict[int, list[GoalMeasurement]]:
    """Measurements of many goals in one query, oldest first per goal."""
    ids = list(goal_ids)
    result: dict[int, list[GoalMeasurement]] = {goal_id: [] for goal_id in ids}
    if not ids:
        return result
    for row in db.session.scalars(
        sa.select(GoalMeasurement)
        .where(GoalMeasurement.goal_id.in_(ids))
        .order_by(GoalMeasurement.at, GoalMeasurement.id)
    ):
        result[row.goal_id].append(row)
    return result


def editors() -> list[User]:
    """Members who may own a goal or an initiative (editors and above: owners post check-ins)."""
    return [m.user for m in _memberships() if m.role_enum.at_least(Role.EDITOR)]


def members() -> list[User]:
    """Every member (for the owner filter)."""
    return [m.user for m in _memberships()]


def _memberships() -> list[Membership]:
    """The organisation's memberships with their users, by email, in one plain join (the relationship's
    own joined loads would join the users a second time and the organisation once per row)."""
    return list(
        db.session.scalars(
            sa.select(Membership)
            .join(User, User.id == Membership.user_id)
            .where(Membership.organisation_id == tenancy.current().organisation_id)
            .options(contains_eager(Membership.user), lazyload(Membership.organisation))
            .order_by(User.email)
        )
    )


def journeys() -> list[Journey]:
    """Every journey of the organisation, by title (for the journey filter)."""
    return list(db.session.scalars(sa.select(Journey).order_by(Journey.title, Journey.id)))


def journeys_with_steps() -> list[tuple[Journey, list[Step]]]:
    """Every journey with its steps in map order (for the goal form's pickers)."""
    return [(journey, [step for step, _, _ in overlay_service._steps(journey.id)]) for journey in journeys()]


def check_in_due_on(goal: Goal) -> date:
    """When the next check-in is due: the last one (or the start) plus the review cadence."""
    last = goal.last_check_in_at.date() if goal.last_check_in_at else goal.start_on
    return last + timedelta(days=goal.review_every_days)


def check_in_overdue(goal: Goal, today: date | None = None) -> bool:
    """Overdue when the due day of the next check-in has passed, while the goal still runs."""
    today = today or utcnow().date()
    return goal.status not in CLOSED and today <= goal.due_on and check_in_due_on(goal) < today


# --- validation -------------------------------------------------------------------------------------


def _number(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ServiceError(f"“{name}” must be a number.", field=name)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ServiceError(f"“{name}” must be a number, not “{str(value)[:40]}”.", field=name) from None
    if not math.isfinite(number):
        raise ServiceError(f"“{name}” must be a finite number.", field=name)
    return number


def _date(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise ServiceError(f"“{name}” must be a date like 2026-06-30.", field=name) from None


def parse_moment(value: Any, name: str = "at") -> datetime:
    """An ISO date or datetime as an aware UTC datetime (a date is midnight UTC, a naive time UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time(0))
    else:
        text = str(value or "").strip()
        if not text:
            raise ServiceError(
                f"Say when (“{name}”), as a date or time like 2026-03-31T17:00:00Z.", field=name
            )
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ServiceError(
                f"“{text[:40]}” is not a date or time like 2026-03-31 or 2026-03-31T17:00:00Z.", field=name
            ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _member_id(value: Any, name: str, *, required: bool) -> int | None:
    """A member of the organisation with at least the editor role, by id or email."""
    if value is None or value == "":
        if required:
            raise ServiceError("Choose the owner: a member who reports on the goal.", field=name)
        return None
    allowed = {user.id: user for user in editors()}
    if isinstance(value, str) and "@" in value:
        email = value.strip().lower()
        user = next((u for u in allowed.values() if u.email == email), None)
        if user is None:
            raise ServiceError(
                f"{value.strip()[:254]} is not an editor, admin or owner of this organisation; owners "
                "post check-ins, so they need the editor role.",
                field=name,
            )
        return user.id
    try:
        user_id = int(value)
    except (TypeError, ValueError):
        raise ServiceError("Choose the owner among the members.", field=name) from None
    if user_id not in allowed:
        raise ServiceError(
            "The owner must be an editor, admin or owner of this organisation (owners post check-ins).",
            field=name,
        )
    return user_id


def _check_kpi(metric: str, source: str, unit: str, journey_id: int, step_id: int | None) -> None:
    if source not in KPI_SOURCES:
        raise ServiceError("The KPI's source is event_log, survey or manual.", field="kpi")
    if source == "event_log":
        if metric not in MEASURED_KPIS:
            raise ServiceError(
                f"“{metric[:64]}” is not a measured KPI. Journey level: {', '.join(JOURNEY_KPIS)}; "
                f"step level: {', '.join(STEP_KPIS)}.",
                field="kpi",
            )
        if metric in JOURNEY_KPIS and step_id is not None:
            raise ServiceError(
                f"{metric} covers the whole journey (all cases of the log); leave the step empty, or "
                f"choose a step KPI ({', '.join(STEP_KPIS)}).",
                field="step_id",
            )
        if metric in STEP_KPIS and step_id is None:
            raise ServiceError(
                f"{metric} is measured per step: choose a step of the journey.", field="step_id"
            )
    elif source == "survey":
        if metric not in SURVEY_KPIS:
            raise ServiceError(
                f"“{metric[:64]}” is not a survey score; use {', '.join(SURVEY_KPIS)}.", field="kpi"
            )
        if step_id is None:
            raise ServiceError(
                "Survey scores are imported per step: choose the step whose scores count.", field="step_id"
            )
    else:
        if not metric or len(metric) > 64:
            raise ServiceError(
                "Name the manual KPI (at most 64 characters), like “First-call resolution”.",
                field="kpi_metric",
            )
    if len(unit) > 32:
        raise ServiceError("The unit has at most 32 characters.", field="kpi_unit")


def _check_target(baseline: float | None, target: float, direction: str, *, measured: bool) -> None:
    if baseline is None:
        return
    if abs(target - baseline) <= EPSILON:
        raise ServiceError(
            f"The target equals the baseline ({_num(baseline)}); a goal needs a target to move to.",
            field="target",
        )
    if _meets_target(baseline, target, direction):
        side = "below" if direction == "lower" else "above"
        source = "The latest measurement" if measured else "The baseline"
        raise ServiceError(
            f"{source} ({_num(baseline)}) already meets the target ({_num(target)}). With “"
            f"{direction} is better” the target must be {side} the baseline.",
            field="target",
        )


def _clean(fields: Mapping[str, Any], goal: Goal | None = None) -> dict[str, Any]:
    """Validate a goal's fields; on edit, the journey, step and KPI stay what they are."""
    cleaned: dict[str, Any] = {}
    title = str(fields.get("title") or "").strip()
    if not title:
        raise ServiceError("Give the goal a title, like “Resolve incidents within a day”.", field="title")
    if len(title) > 200:
        raise ServiceError("The title has at most 200 characters.", field="title")
    cleaned["title"] = title
    why = str(fields.get("why") or "").strip()
    if len(why) > MAX_NOTE_CHARS:
        raise ServiceError(f"“Why it matters” has at most {MAX_NOTE_CHARS} characters.", field="why")
    cleaned["why"] = why
    owner = fields.get("owner_id") if fields.get("owner_id") not in (None, "") else fields.get("owner_email")
    cleaned["owner_id"] = _member_id(owner, "owner_id", required=True)

    if goal is None:
        try:
            journey_id = int(fields.get("journey_id") or 0)
        except (TypeError, ValueError):
            journey_id = 0
        journey = db.session.get(Journey, journey_id) if journey_id else None
        if journey is None:
            raise ServiceError("Choose the journey the goal is about.", field="journey_id")
        step_id: int | None = None
        raw_step = fields.get("step_id")
        if raw_step not in (None, "", 0, "0"):
            try:
                step_id = int(raw_step)
            except (TypeError, ValueError):
                raise ServiceError("Choose a step of the journey.", field="step_id") from None
            step = db.session.get(Step, step_id)
            if step is None or step.journey_id != journey.id:
                raise ServiceError(
                    f"Step {step_id} is not a step of “{journey.title}”; choose one of its steps.",
                    field="step_id",
                )
        source = str(fields.get("kpi_source") or "").strip()
        metric = str(fields.get("kpi_metric") or "").strip()
        unit = str(fields.get("kpi_unit") or "").strip()
        _check_kpi(metric, source, unit, journey.id, step_id)
        cleaned.update(
            journey_id=journey.id,
            step_id=step_id,
            kpi_source=source,
            kpi_metric=metric,
            kpi_unit=unit if source == "manual" else "",
        )
    elif goal.kpi_source == "manual" and "kpi_unit" in fields:
        unit = str(fields.get("kpi_unit") or "").strip()
        if len(unit) > 32:
            raise ServiceError("The unit has at most 32 characters.", field="kpi_unit")
        cleaned["kpi_unit"] = unit

    direction = str(fields.get("direction") or "").strip()
    if direction not in DIRECTIONS:
        raise ServiceError("Say which way is better: “lower” or “higher”.", field="direction")
    cleaned["direction"] = direction
    cleaned["baseline"] = _number(fields.get("baseline"), "baseline")
    target = _number(fields.get("target"), "target")
    if target is None:
        raise ServiceError("Give the target value the KPI should reach.", field="target")
    cleaned["target"] = target
    start_on, due_on = _date(fields.get("start_on"), "start_on"), _date(fields.get("due_on"), "due_on")
    if start_on is None:
        raise ServiceError("Give the start date.", field="start_on")
    if due_on is None:
        raise ServiceError("Give the due date.", field="due_on")
    if due_on < start_on:
        raise ServiceError("The due date cannot be before the start date.", field="due_on")
    cleaned["start_on"], cleaned["due_on"] = start_on, due_on
    cadence = fields.get("review_every_days")
    try:
        cadence = 14 if cadence in (None, "") else int(cadence)
    except (TypeError, ValueError):
        raise ServiceError(
            "The review cadence is a number of days, like 14.", field="review_every_days"
        ) from None
    if not 1 <= cadence <= 365:
        raise ServiceError("The review cadence is between 1 and 365 days.", field="review_every_days")
    cleaned["review_every_days"] = cadence
    return cleaned


# --- figures from measurements of linked logs -----------------------------------------------------------


@dataclass
class SnapshotFigures:
    """What one finished snapshot says: journey-level figures and per-step figures."""

    snapshot: MeasurementSnapshot
    at: datetime
    log_name: str
    journey: dict[str, float | None]
    steps: dict[int, dict[str, float | None]]
    layout: list[dict[str, Any]]


def _log_summary(event_log: EventLog) -> LogSummary | None:
    run = eventlog_service.latest_finished_run(event_log, unfiltered=True)
    if run is None:
        return None
    return db.session.scalar(sa.select(LogSummary).where(LogSummary.run_id == run.id))


def snapshot_figures(snapshot: MeasurementSnapshot) -> SnapshotFigures:
    """The KPI figures of one snapshot: the log's own (median case duration and rework share of its
    latest unfiltered mining) and the journey's measured ones."""
    summary = _log_summary(snapshot.event_log)
    cases = snapshot.cases or 0
    steps: dict[int, dict[str, float | None]] = {}
    for row in db.session.scalars(
        sa.select(StepMeasurement).where(StepMeasurement.snapshot_id == snapshot.id)
    ):
        steps[row.step_id] = {
            "median_visit_s": row.median_visit_s,
            "median_wait_before_s": row.median_wait_before_s,
            "cases_reached_share": row.cases_reached / cases if cases else None,
            "rework_cases_share": row.rework_cases / row.cases_reached if row.cases_reached else None,
            "cases_reached": float(row.cases_reached),
        }
    return SnapshotFigures(
        snapshot=snapshot,
        at=snapshot.period_end or snapshot.finished_at or snapshot.queued_at,
        log_name=snapshot.event_log.name,
        journey={
            "median_case_duration_s": summary.case_duration_median_s if summary else None,
            "conformance_share": snapshot.conformance_share,
            "rework_share": summary.rework_share if summary else None,
            "cases": float(snapshot.cases) if snapshot.cases is not None else None,
        },
        steps=steps,
        layout=list(snapshot.layout or []),
    )


def kpi_value(metric: str, step_id: int | None, figures: SnapshotFigures) -> float | None:
    """The value of a measured KPI in a snapshot (None when the snapshot does not measure it)."""
    if metric in JOURNEY_KPIS:
        return figures.journey.get(metric)
    if step_id is None:
        return None
    return (figures.steps.get(step_id) or {}).get(metric)


def timeline_figures(journey_id: int) -> list[SnapshotFigures]:
    """The latest finished snapshot of each linked log, ordered by the end of the log's period."""
    return [snapshot_figures(s) for s in overlay_service.timeline(journey_id)]


def _survey_series(journey_id: int) -> dict[tuple[int, str], list[tuple[date, float]]]:
    """(step, metric) -> [(day, response-weighted mean)], oldest first."""
    totals: dict[tuple[int, str, date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in db.session.scalars(sa.select(SurveyScore).where(SurveyScore.journey_id == journey_id)):
        cell = totals[(row.step_id, row.metric, row.day)]
        cell[0] += row.value * row.responses
        cell[1] += row.responses
    series: dict[tuple[int, str], list[tuple[date, float]]] = defaultdict(list)
    for (step_id, metric, day), (total, n) in sorted(totals.items(), key=lambda item: item[0][2]):
        if n:
            series[(step_id, metric)].append((day, total / n))
    return series


def _day_moment(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


# --- writing: goals ------------------------------------------------------------------------------------


def _event(goal: Goal, kind: str, summary: str, actor: Actor | None, **extra: Any) -> GoalEvent:
    event = GoalEvent(
        goal_id=goal.id,
        kind=kind,
        summary=summary[:500],
        actor_id=actor.user_id if actor else None,
        **extra,
    )
    db.session.add(event)
    return event


@_use_case
def create_goal(fields: Mapping[str, Any], actor: Actor, *, now: datetime | None = None) -> Goal:
    """A new goal; a measured KPI gets its first measurement (and baseline, unless given) at once from
    the latest measurement of the journey's linked logs, a survey KPI from the latest scores."""
    now = now or utcnow()
    cleaned = _clean(fields)
    goal = Goal(**cleaned, created_by_id=actor.user_id, status="no_data")
    db.session.add(goal)
    db.session.flush()
    first = _first_value(goal)
    if first is not None and goal.baseline is None:
        goal.baseline = first[1]
        _check_target(goal.baseline, goal.target, goal.direction, measured=True)
    else:
        _check_target(goal.baseline, goal.target, goal.direction, measured=False)
    audit.record(
        actor,
        "goal.created",
        f"goal {goal.id}",
        title=goal.title,
        journey=goal.journey_id,
        step=goal.step_id,
        kpi=goal.kpi_metric,
        source=goal.kpi_source,
        baseline=goal.baseline,
        target_value=goal.target,
    )
    _event(
        goal,
        "created",
        f"Goal “{goal.title}” set: {kpi_label(goal)} to {goal_value(goal, goal.target)}",
        actor,
    )
    if first is not None:
        at, value, snapshot = first
        _add_measurement(
            goal,
            at=at,
            value=value,
            source=goal.kpi_source,
            event_log_id=snapshot.event_log_id if snapshot else None,
            snapshot_id=snapshot.id if snapshot else None,
            note="First measurement, taken when the goal was set.",
            actor=actor,
            log_name=snapshot.event_log.name if snapshot else None,
        )
    notes = _recompute(goal, now, actor, announce=False)
    _commit(notes)
    return goal


def _first_value(goal: Goal) -> tuple[datetime, float, MeasurementSnapshot | None] | None:
    """The newest value the data holds for a new goal's KPI (None: nothing measured yet)."""
    if goal.kpi_source == "event_log":
        for figures in reversed(timeline_figures(goal.journey_id)):
            value = kpi_value(goal.kpi_metric, goal.step_id, figures)
            if value is not None:
                return figures.at, value, figures.snapshot
        return None
    if goal.kpi_source == "survey":
        series = _survey_series(goal.journey_id).get((goal.step_id, goal.kpi_metric))
        if series:
            day, value = series[-1]
            return _day_moment(day), value, None
    return None


@_use_case
def update_goal(
    goal_id: int,
    fields: Mapping[str, Any],
    actor: Actor,
    *,
    expected_version: int | None = None,
    now: datetime | None = None,
) -> Goal:
    """Change a goal's title, why, owner, direction, baseline, target, dates or cadence; the journey,
    step and KPI stay (to measure something else, set a new goal).

    With `expected_version` (the version the editor's form was drawn with), a goal changed meanwhile
    by someone else is not overwritten: Conflict, with what is stored now and what was sent."""
    goal = get_goal(goal_id, for_update=True)
    cleaned = _clean(fields, goal)
    baseline = cleaned["baseline"]
    if baseline is None:
        baseline = goal.baseline  # left empty: keep the one there is
    cleaned["baseline"] = baseline
    if expected_version is not None and expected_version != goal.version:
        raise _edit_conflict(goal, cleaned, expected_version)
    _check_target(baseline, cleaned["target"], cleaned["direction"], measured=False)
    changed = {
        key: {"from": _plain(getattr(goal, key)), "to": _plain(value)}
        for key, value in cleaned.items()
        if getattr(goal, key) != value
    }
    if not changed:
        return goal
    for key, value in cleaned.items():
        setattr(goal, key, value)
    goal.version += 1
    audit.record(actor, "goal.updated", f"goal {goal.id}", changes=changed)
    names = ", ".join(sorted(changed))
    _event(goal, "updated", f"Changed {names}", actor)
    notes = _recompute(goal, now or utcnow(), actor)
    _commit(notes)
    return goal


def _edit_conflict(goal: Goal, attempted: Mapping[str, Any], expected_version: int) -> Conflict:
    last = db.session.scalar(
        sa.select(GoalEvent)
        .where(GoalEvent.goal_id == goal.id, GoalEvent.kind == "updated")
        .order_by(GoalEvent.id.desc())
        .limit(1)
    )
    who = None
    if last is not None and last.actor_id is not None:
        user = db.session.get(User, last.actor_id)
        who = user.label if user is not None else None
    return Conflict(
        f"{who or 'Someone'} changed this goal while you were editing it.",
        entity="goal",
        entity_id=goal.id,
        action="update",
        expected_version=expected_version,
        stored_version=goal.version,
        stored=_as_shown({key: getattr(goal, key) for key in attempted}),
        attempted=_as_shown(attempted),
        changed_by=who,
        changed_at=last.at if last is not None else None,
    )


def _as_shown(values: Mapping[str, Any]) -> dict[str, Any]:
    """Goal fields as a person compares them: dates as text, the owner by name rather than id."""
    shown = {}
    for key, value in values.items():
        if key == "owner_id":
            owner = db.session.get(User, value) if value else None
            shown["owner"] = owner.label if owner is not None else None
        else:
            shown[key] = _plain(value)
    return shown


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


@_use_case
def delete_goal(goal_id: int, actor: Actor) -> None:
    """Delete a goal with its measurements, check-ins, initiatives and events."""
    goal = get_goal(goal_id)
    audit.record(actor, "goal.deleted", f"goal {goal.id}", title=goal.title)
    db.session.delete(goal)
    db.session.commit()


# --- writing: measurements ---------------------------------------------------------------------------


def _add_measurement(
    goal: Goal,
    *,
    at: datetime,
    value: float,
    source: str,
    event_log_id: int | None = None,
    snapshot_id: int | None = None,
    note: str = "",
    actor: Actor | None = None,
    log_name: str | None = None,
) -> GoalMeasurement:
    row = GoalMeasurement(
        goal_id=goal.id,
        at=at,
        value=value,
        source=source,
        event_log_id=event_log_id,
        snapshot_id=snapshot_id,
        note=note,
        created_by_id=actor.user_id if actor else None,
    )
    db.session.add(row)
    if goal.baseline is None:
        goal.baseline = value  # the first measurement is the baseline when none was given
    where = f" from log “{log_name}”" if log_name else (" from survey scores" if source == "survey" else "")
    _event(
        goal, "measurement", f"Measured {goal_value(goal, value)} on {at.date().isoformat()}{where}", actor
    )
    audit.record(
        actor or Actor(None),
        "goal.measurement_added",
        f"goal {goal.id}",
        value=value,
        at=at.isoformat(),
        source=source,
        event_log=event_log_id,
        snapshot=snapshot_id,
    )
    return row


@_use_case
def record_manual(
    goal_id: int, at: Any, value: Any, note: str, actor: Actor, *, now: datetime | None = None
) -> GoalMeasurement:
    """A measurement by hand (manual KPIs only: the others are measured from the data)."""
    now = now or utcnow()
    goal = get_goal(goal_id)
    if goal.kpi_source != "manual":
        source = "linked event logs" if goal.kpi_source == "event_log" else "imported survey scores"
        raise AutomaticKpi(
            f"{kpi_label(goal)} is measured automatically from {source}; only manual KPIs take "
            "measurements by hand.",
            field="value",
        )
    number = _number(value, "value")
    if number is None:
        raise ServiceError("Give the measured value.", field="value")
    moment = parse_moment(at)
    if moment > now + timedelta(minutes=5):
        raise ServiceError("A measurement cannot be in the future.", field="at")
    note = str(note or "").strip()
    if len(note) > MAX_NOTE_CHARS:
        raise ServiceError(f"The note has at most {MAX_NOTE_CHARS} characters.", field="note")
    row = _add_measurement(goal, at=moment, value=number, source="manual", note=note, actor=actor)
    db.session.flush()
    notes = _recompute(goal, now, actor)
    _commit(notes)
    return row


def record_from_snapshot(snapshot_id: int, *, now: datetime | None = None) -> None:
    """A measurement of a linked log finished: record the KPI of every measured goal of the journey,
    dated at the end of the log's period and sourced to the log (once per goal and snapshot), then
    recompute every goal of the journey (watermelon warnings read the new figures too).

    Runs in the worker after the snapshot was committed; a failure here is logged and leaves the
    snapshot as it is."""
    try:
        _record_from_snapshot(snapshot_id, now or utcnow())
    except Exception:
        db.session.rollback()
        log.exception("recording goal measurements of snapshot %s failed", snapshot_id)


def _record_from_snapshot(snapshot_id: int, now: datetime) -> None:
    snapshot = db.session.get(MeasurementSnapshot, snapshot_id)
    if snapshot is None or snapshot.status != "finished":
        return
    goals = _goals(Goal.journey_id == snapshot.journey_id)
    if not goals:
        return
    figures = snapshot_figures(snapshot)
    worker = Actor(None)
    for goal in goals:
        if goal.kpi_source != "event_log":
            continue
        value = kpi_value(goal.kpi_metric, goal.step_id, figures)
        if value is None:
            continue
        _upsert_from_snapshot(goal, figures, value, worker)
    db.session.flush()
    notes = []
    cache: dict[int, list[SnapshotFigures]] = {}
    for goal in goals:
        notes += _recompute(goal, now, worker, figures=cache)
    _commit(notes)


def _upsert_from_snapshot(goal: Goal, figures: SnapshotFigures, value: float, actor: Actor) -> None:
    snapshot = figures.snapshot
    existing = db.session.scalar(
        sa.select(GoalMeasurement)
        .where(
            GoalMeasurement.goal_id == goal.id,
            sa.or_(
                GoalMeasurement.snapshot_id == snapshot.id,
                sa.and_(
                    GoalMeasurement.event_log_id == snapshot.event_log_id, GoalMeasurement.at == figures.at
                ),
            ),
        )
        .order_by(GoalMeasurement.id.desc())
        .limit(1)
    )
    if existing is not None and existing.snapshot_id == snapshot.id:
        return  # recorded already (the hook may run twice)
    if existing is not None:
        # The same log measured again (re-mined, or a new mapping): its period's value is replaced.
        previous = existing.value
        existing.value, existing.snapshot_id = value, snapshot.id
        if abs(previous - value) > EPSILON:
            _event(
                goal,
                "measurement",
                f"Measured again: {goal_value(goal, value)} (was {goal_value(goal, previous)}) for "
                f"{figures.at.date().isoformat()} from log “{figures.log_name}”",
                actor,
            )
            audit.record(actor, "goal.measurement_updated", f"goal {goal.id}", value=value, previous=previous)
        return
    _add_measurement(
        goal,
        at=figures.at,
        value=value,
        source="event_log",
        event_log_id=snapshot.event_log_id,
        snapshot_id=snapshot.id,
        actor=actor,
        log_name=figures.log_name,
    )


def record_from_surveys(journey_id: int, *, now: datetime | None = None) -> None:
    """Survey scores were imported: record each day's score of every survey goal of the journey (the
    days from its first measurement on; a goal without one takes the latest day), then recompute."""
    try:
        _record_from_surveys(journey_id, now or utcnow())
    except Exception:
        db.session.rollback()
        log.exception("recording goal measurements from the surveys of journey %s failed", journey_id)


def _record_from_surveys(journey_id: int, now: datetime) -> None:
    goals = _goals(Goal.journey_id == journey_id)
    if not goals:
        return
    series = _survey_series(journey_id)
    actor = Actor(None)
    for goal in goals:
        if goal.kpi_source != "survey":
            continue
        points = series.get((goal.step_id, goal.kpi_metric)) or []
        if not points:
            continue
        existing = {row.at: row for row in measurements(goal.id)}
        first = min(existing) if existing else _day_moment(points[-1][0])
        for day, value in points:
            at = _day_moment(day)
            if at < first:
                continue
            row = existing.get(at)
            if row is None:
                _add_measurement(goal, at=at, value=value, source="survey", actor=actor)
            elif abs(row.value - value) > EPSILON:
                previous, row.value = row.value, value
                _event(
                    goal,
                    "measurement",
                    f"Survey scores of {day.isoformat()} changed: {goal_value(goal, value)} "
                    f"(was {goal_value(goal, previous)})",
                    actor,
                )
    db.session.flush()
    notes = []
    cache: dict[int, list[SnapshotFigures]] = {}
    for goal in goals:
        notes += _recompute(goal, now, actor, figures=cache)
    _commit(notes)


# --- status, watermelon, notifications ----------------------------------------------------------------


def _latest(goal: Goal) -> GoalMeasurement | None:
    return db.session.scalar(
        sa.select(GoalMeasurement)
        .where(GoalMeasurement.goal_id == goal.id)
        .order_by(GoalMeasurement.at.desc(), GoalMeasurement.id.desc())
        .limit(1)
    )


def _recompute(
    goal: Goal,
    now: datetime,
    actor: Actor | None,
    *,
    announce: bool = True,
    tol: Tolerances | None = None,
    figures: dict[int, list[SnapshotFigures]] | None = None,
) -> list[Notification]:
    """Refresh the stored status, figures and watermelon warning; a status change is an event, an audit
    record and (when `announce`) a notification."""
    latest = _latest(goal)
    goal.current_value = latest.value if latest else None
    goal.last_measured_at = latest.at if latest else None
    result = compute_status(
        baseline=goal.baseline,
        target=goal.target,
        current=goal.current_value,
        direction=goal.direction,
        start_on=goal.start_on,
        due_on=goal.due_on,
        today=now.date(),
        tolerances=tol or tolerances(),
    )
    goal.progress, goal.expected = result.progress, result.expected
    previous = goal.status
    notes: list[Notification] = []
    if result.status != previous:
        goal.status = result.status
        goal.status_changed_at = now
        summary = (
            f"“{goal.title}” is {STATUS_LABELS[result.status].lower()} now "
            f"(was {STATUS_LABELS.get(previous, previous).lower()})"
        )
        _event(goal, "status_change", summary, actor, from_status=previous, to_status=result.status)
        audit.record(
            actor or Actor(None),
            "goal.status_changed",
            f"goal {goal.id}",
            from_status=previous,
            to_status=result.status,
            progress=result.progress,
            expected=result.expected,
        )
        if announce:
            notes += _notify(goal, "goal_status", summary, actor)
    figures = {} if figures is None else figures
    if goal.status in GREEN and goal.journey_id not in figures:
        figures[goal.journey_id] = timeline_figures(goal.journey_id)
    warning = watermelon(goal, figures.get(goal.journey_id))
    if warning and warning != goal.watermelon:
        _event(goal, "updated", f"Watermelon warning: {warning}", actor)
    goal.watermelon = warning
    return notes


def recompute(goal_id: int, *, now: datetime | None = None) -> Goal:
    """Recompute one goal's status now (a use case of its own)."""
    goal = get_goal(goal_id)
    _commit(_recompute(goal, now or utcnow(), None))
    return goal


def recompute_all(now: datetime | None = None) -> int:
    """Recompute every goal of the current organisation as time passes (expected progress grows, due
    dates pass); returns how many changed status."""
    now = now or utcnow()
    tol = tolerances()
    notes: list[Notification] = []
    changed = 0
    cache: dict[int, list[SnapshotFigures]] = {}
    for goal in _goals():
        before = goal.status
        notes += _recompute(goal, now, None, tol=tol, figures=cache)
        changed += goal.status != before
    _commit(notes)
    return changed


def flag_overdue_check_ins(now: datetime | None = None) -> list[int]:
    """Tell the owners of goals whose check-in is overdue, once per missed check-in; returns goal ids."""
    now = now or utcnow()
    today = now.date()
    notes: list[Notification] = []
    flagged = []
    for goal in _goals(Goal.owner_id.is_not(None)):
        if not check_in_overdue(goal, today):
            continue
        since = goal.last_check_in_at or _day_moment(goal.start_on)
        told = db.session.scalar(
            sa.select(sa.func.count(Notification.id)).where(
                Notification.goal_id == goal.id,
                Notification.kind == "check_in_due",
                Notification.created_at >= since,
            )
        )
        if told:
            continue
        summary = (
            f"The check-in of “{goal.title}” was due on {check_in_due_on(goal).isoformat()}: post a note "
            "with your confidence."
        )
        notes += _notify(goal, "check_in_due", summary, None, recipients=[goal.owner_id])
        flagged.append(goal.id)
    _commit(notes)
    return flagged


def daily_sweep(now: datetime | None = None) -> dict[str, int]:
    """The daily job over every organisation, each scoped in turn so RLS admits it: recompute statuses
    as time passes and notify owners of overdue check-ins."""
    now = now or utcnow()
    totals = {"organisations": 0, "status_changes": 0, "overdue_check_ins": 0}
    previous = tenancy.current()
    org_ids = db.session.scalars(sa.select(Organisation.id).order_by(Organisation.id)).all()
    for org_id in org_ids:
        tenancy.activate(org_id)
        try:
            totals["status_changes"] += recompute_all(now)
            totals["overdue_check_ins"] += len(flag_overdue_check_ins(now))
            totals["organisations"] += 1
        except Exception:
            db.session.rollback()
            log.exception("daily goal sweep failed for organisation %s", org_id)
    if previous is not None:
        tenancy.activate(previous.organisation_id, previous.user_id)
    else:
        tenancy.deactivate()
    return totals


def _notify(
    goal: Goal,
    kind: str,
    summary: str,
    actor: Actor | None,
    *,
    recipients: Iterable[int | None] | None = None,
) -> list[Notification]:
    """Inbox rows for the goal's owner (and whoever set it), never for the actor."""
    people = recipients if recipients is not None else (goal.owner_id, goal.created_by_id)
    acting = actor.user_id if actor else None
    rows = [
        Notification(
            user_id=user_id,
            kind=kind,
            actor_id=acting,
            goal_id=goal.id,  # no journey: opening it goes to the goal, not to the journey's comments
            summary=summary[:500],
        )
        for user_id in dict.fromkeys(people)
        if user_id is not None and user_id != acting
    ]
    db.session.add_all(rows)
    return rows


def _commit(notes: list[Notification]) -> None:
    """Commit, then queue a mail per notification when SMTP is configured (the inbox has them anyway)."""
    db.session.commit()
    if not notes or not current_app.config.get("SMTP_URL"):
        return
    from redis.exceptions import RedisError

    base = (current_app.config.get("PUBLIC_URL") or "http://localhost:5000").rstrip("/")
    slugs: dict[int, str] = {}
    for note in notes:
        org_id = note.organisation_id
        if org_id not in slugs:
            slugs[org_id] = db.session.get(Organisation, org_id).slug
        try:
            queue.enqueue(
                "default",
                "worker.jobs.goals.send_goal_mail",
                note.id,
                f"{base}/o/{slugs[org_id]}/goals/{note.goal_id}",
                organisation_id=org_id,
                description=f"goal mail for notification {note.id}",
            )
        except RedisError:
            log.warning("could not queue the mail of notification %s", note.id, exc_info=True)


def _related_worse(goal: Goal, figures: list[SnapshotFigures]) -> list[str]:
    """Measured figures related to the goal that got worse between the two latest snapshots."""
    if len(figures) < 2:
        return []
    before, after = figures[-2], figures[-1]
    span = f"(“{before.log_name}” → “{after.log_name}”)"
    reasons = []

    def share_worse(old: float | None, new: float | None) -> bool:
        return old is not None and new is not None and new - old > WORSE_SHARE_POINTS

    def duration_worse(old: float | None, new: float | None) -> bool:
        return old is not None and new is not None and old > 0 and (new - old) / old > WORSE_DURATION_RELATIVE

    if goal.kpi_metric != "rework_share":
        old, new = before.journey.get("rework_share"), after.journey.get("rework_share")
        if share_worse(old, new):
            reasons.append(
                f"rework (reopened or repeated work) rose from {old:.0%} to {new:.0%} of cases {span}"
            )
    if goal.step_id is not None:
        names = {s["id"]: s["name"] for s in after.layout}
        name = names.get(goal.step_id, "the step")
        if goal.kpi_metric != "rework_cases_share":
            old = (before.steps.get(goal.step_id) or {}).get("rework_cases_share")
            new = (after.steps.get(goal.step_id) or {}).get("rework_cases_share")
            if share_worse(old, new):
                reasons.append(f"rework in “{name}” rose from {old:.0%} to {new:.0%} of its cases {span}")
        order = [s["id"] for s in after.layout]
        if goal.step_id in order and order.index(goal.step_id) + 1 < len(order):
            following = order[order.index(goal.step_id) + 1]
            old = (before.steps.get(following) or {}).get("median_wait_before_s")
            new = (after.steps.get(following) or {}).get("median_wait_before_s")
            if duration_worse(old, new):
                reasons.append(
                    f"the wait before the next step “{names[following]}” grew from {human_duration(old)} to "
                    f"{human_duration(new)} {span}"
                )
    return reasons


def _surveys_worse(goal: Goal) -> list[str]:
    """Survey scores of the goal's step (every step, for a journey-level goal) that fell between their
    two latest days."""
    series = _survey_series(goal.journey_id)
    if not series:
        return []
    names = dict(
        db.session.execute(sa.select(Step.id, Step.name).where(Step.journey_id == goal.journey_id)).all()
    )
    reasons = []
    for (step_id, metric), points in sorted(series.items()):
        if metric not in WORSE_SURVEY or len(points) < 2:
            continue
        if goal.step_id is not None and step_id != goal.step_id:
            continue
        if goal.kpi_source == "survey" and metric == goal.kpi_metric and step_id == goal.step_id:
            continue
        (day_old, old), (day_new, new) = points[-2], points[-1]
        change = (old - new) if metric != "ces" else (new - old)
        if change > WORSE_SURVEY[metric]:
            verb = "rose" if metric == "ces" else "fell"
            name = names.get(step_id, "a step")
            reasons.append(
                f"{metric.upper()} of “{name}” {verb} from {format_value(metric, old)} to "
                f"{format_value(metric, new)} ({day_old.isoformat()} → {day_new.isoformat()})"
            )
    return reasons


def watermelon(goal: Goal, figures: list[SnapshotFigures] | None = None) -> str | None:
    """Why a goal that looks green hides worse figures (None: it does not, or it is not green)."""
    if goal.status not in GREEN:
        return None
    figures = timeline_figures(goal.journey_id) if figures is None else figures
    reasons = _related_worse(goal, figures) + _surveys_worse(goal)
    if not reasons:
        return None
    text = "; ".join(reasons)
    return (text[0].upper() + text[1:] + ".")[:2000]


# --- check-ins and initiatives -----------------------------------------------------------------------


@_use_case
def check_in(
    goal_id: int, note: str, confidence: Any, actor: Actor, role: Role, *, now: datetime | None = None
) -> CheckIn:
    """The owner's (or an admin's) status note with a confidence from 1 to 5."""
    now = now or utcnow()
    goal = get_goal(goal_id)
    if actor.user_id != goal.owner_id and not role.at_least(Role.ADMIN):
        raise Forbidden("Only the goal's owner (or an admin) posts its check-ins.")
    note = str(note or "").strip()
    if not note:
        raise ServiceError("Write a short status note: what moved, what is in the way.", field="note")
    if len(note) > MAX_NOTE_CHARS:
        raise ServiceError(f"The note has at most {MAX_NOTE_CHARS} characters.", field="note")
    try:
        level = int(confidence)
    except (TypeError, ValueError):
        level = 0
    if not 1 <= level <= 5:
        raise ServiceError("Choose a confidence from 1 (very low) to 5 (very high).", field="confidence")
    row = CheckIn(goal_id=goal.id, author_id=actor.user_id, at=now, note=note, confidence=level)
    db.session.add(row)
    goal.last_check_in_at = now
    db.session.flush()
    audit.record(actor, "goal.check_in", f"goal {goal.id}", confidence=level, check_in=row.id)
    _event(goal, "check_in", f"Check-in, confidence {level}/5: {note}", actor)
    db.session.commit()
    return row


def check_ins(goal_id: int) -> list[CheckIn]:
    """A goal's check-ins, newest first."""
    return list(
        db.session.scalars(
            sa.select(CheckIn)
            .where(CheckIn.goal_id == goal_id)
            .options(selectinload(CheckIn.author))
            .order_by(CheckIn.at.desc(), CheckIn.id.desc())
        )
    )


def initiatives(goal_id: int) -> list[Initiative]:
    """A goal's initiatives, by start date (undated last)."""
    return list(
        db.session.scalars(
            sa.select(Initiative)
            .where(Initiative.goal_id == goal_id)
            .options(selectinload(Initiative.owner))
            .order_by(Initiative.start_on.is_(None), Initiative.start_on, Initiative.id)
        )
    )


def get_initiative(goal_id: int, initiative_id: int) -> Initiative:
    initiative = db.session.get(Initiative, initiative_id)
    if initiative is None or initiative.goal_id != goal_id:
        raise NotFound("This goal has no such initiative.")
    return initiative


def _clean_initiative(fields: Mapping[str, Any], existing: Initiative | None = None) -> dict[str, Any]:
    title = str(fields.get("title") if "title" in fields else (existing.title if existing else "")).strip()
    if not title:
        raise ServiceError("Name the initiative, like “Self-service password reset”.", field="title")
    if len(title) > 200:
        raise ServiceError("The initiative's title has at most 200 characters.", field="title")
    owner = fields.get("owner_id") if "owner_id" in fields else (existing.owner_id if existing else None)
    start_on = (
        _date(fields.get("start_on"), "start_on")
        if "start_on" in fields
        else (existing and existing.start_on)
    )
    due_on = _date(fields.get("due_on"), "due_on") if "due_on" in fields else (existing and existing.due_on)
    if start_on and due_on and due_on < start_on:
        raise ServiceError("The initiative's due date cannot be before its start.", field="due_on")
    state = str(fields.get("state") or (existing.state if existing else "planned"))
    if state not in INITIATIVE_STATES:
        raise ServiceError(f"The state is one of {', '.join(INITIATIVE_STATES)}.", field="state")
    return {
        "title": title,
        "owner_id": _member_id(owner, "owner_id", required=False),
        "start_on": start_on or None,
        "due_on": due_on or None,
        "state": state,
    }


@_use_case
def add_initiative(goal_id: int, fields: Mapping[str, Any], actor: Actor) -> Initiative:
    """An action under the goal; its start date splits the data into before and after."""
    goal = get_goal(goal_id)
    initiative = Initiative(goal_id=goal.id, **_clean_initiative(fields))
    db.session.add(initiative)
    db.session.flush()
    audit.record(
        actor, "goal.initiative_added", f"goal {goal.id}", initiative=initiative.id, title=initiative.title
    )
    start = f", starting {initiative.start_on.isoformat()}" if initiative.start_on else ""
    _event(goal, "initiative", f"Initiative “{initiative.title}” added ({initiative.state}{start})", actor)
    db.session.commit()
    return initiative


@_use_case
def update_initiative(
    goal_id: int, initiative_id: int, fields: Mapping[str, Any], actor: Actor
) -> Initiative:
    """Change an initiative (its state as it moves along, its dates, owner or title)."""
    goal = get_goal(goal_id)
    initiative = get_initiative(goal.id, initiative_id)
    cleaned = _clean_initiative(fields, initiative)
    changed = {
        key: {"from": _plain(getattr(initiative, key)), "to": _plain(value)}
        for key, value in cleaned.items()
        if getattr(initiative, key) != value
    }
    if not changed:
        return initiative
    for key, value in cleaned.items():
        setattr(initiative, key, value)
    audit.record(
        actor, "goal.initiative_updated", f"goal {goal.id}", initiative=initiative.id, changes=changed
    )
    what = (
        f"is {initiative.state.replace('_', ' ')} now"
        if "state" in changed
        else "changed (" + ", ".join(sorted(changed)) + ")"
    )
    _event(goal, "initiative", f"Initiative “{initiative.title}” {what}", actor)
    db.session.commit()
    return initiative


# --- before/after --------------------------------------------------------------------------------------

FIGURE_COLUMNS = (
    ("median_visit_s", "Time in step", "lower"),
    ("median_wait_before_s", "Wait before", "lower"),
    ("cases_reached_share", "Cases reaching", None),
    ("rework_cases_share", "Rework", "lower"),
)
JOURNEY_FIGURES = (
    ("cases", "Cases", None),
    ("conformance_share", "Following the journey", "higher"),
    ("median_case_duration_s", "Median case duration", "lower"),
    ("rework_share", "Cases with rework", "lower"),
)


@dataclass
class Change:
    """One figure before and after, and whether it moved the better way (None: no better way)."""

    metric: str
    label: str
    before: float | None
    after: float | None
    better: bool | None

    @property
    def before_text(self) -> str:
        return format_value(self.metric, self.before)

    @property
    def after_text(self) -> str:
        return format_value(self.metric, self.after)


@dataclass
class BeforeAfter:
    """An initiative's start date splits the data: the latest measurement before it and the latest on or
    after it, with each step's figures in both."""

    initiative: Initiative
    before: SnapshotFigures | None
    after: SnapshotFigures | None
    journey: list[Change] = field(default_factory=list)
    steps: list[tuple[str, list[Change]]] = field(default_factory=list)


def _change(metric: str, label: str, better_way: str | None, old: float | None, new: float | None) -> Change:
    better = None
    if better_way and old is not None and new is not None and abs(new - old) > EPSILON:
        better = (new < old) if better_way == "lower" else (new > old)
    return Change(metric, label, old, new, better)


def before_after(
    goal: Goal,
    figures: list[SnapshotFigures] | None = None,
    *,
    of_initiatives: list[Initiative] | None = None,
) -> list[BeforeAfter]:
    """For each initiative with a start date: the figures before it and after it (`of_initiatives`: the
    goal's initiatives, when the caller has them)."""
    figures = timeline_figures(goal.journey_id) if figures is None else figures
    result = []
    for initiative in initiatives(goal.id) if of_initiatives is None else of_initiatives:
        if initiative.start_on is None:
            continue
        split = _day_moment(initiative.start_on)
        before = next((f for f in reversed(figures) if f.at < split), None)
        after = next((f for f in reversed(figures) if f.at >= split), None)
        view = BeforeAfter(initiative, before, after)
        if before is not None or after is not None:
            view.journey = [
                _change(
                    metric,
                    label,
                    way,
                    before.journey.get(metric) if before else None,
                    after.journey.get(metric) if after else None,
                )
                for metric, label, way in JOURNEY_FIGURES
            ]
            layout = (after or before).layout
            for step in layout:
                old = before.steps.get(step["id"], {}) if before else {}
                new = after.steps.get(step["id"], {}) if after else {}
                view.steps.append(
                    (
                        step["name"],
                        [
                            _change(metric, label, way, old.get(metric), new.get(metric))
                            for metric, label, way in FIGURE_COLUMNS
                        ],
                    )
                )
        result.append(view)
    return result


# --- the goal page -----------------------------------------------------------------------------------


@dataclass
class Chart:
    """An inline SVG line chart of a goal's measurements with its baseline, target and plan."""

    width: int
    height: int
    points: list[tuple[float, float, str]]
    baseline_y: float | None
    target_y: float
    plan: tuple[float, float, float, float] | None
    today_x: float | None
    y_labels: list[tuple[float, str]]
    x_labels: list[tuple[float, str]]

    @property
    def polyline(self) -> str:
        return " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in self.points)


def chart(goal: Goal, rows: list[GoalMeasurement], *, now: datetime | None = None) -> Chart:
    """Scale the measurements into a 640×220 box: time from the start (or the first measurement) to the
    due date (or the last measurement), values around baseline and target."""
    width, height, left, right, top, bottom = 640, 220, 64, 16, 12, 28
    now = now or utcnow()
    start = min([_day_moment(goal.start_on)] + [r.at for r in rows])
    end = max([_day_moment(goal.due_on) + timedelta(days=1)] + [r.at for r in rows])
    span_s = max((end - start).total_seconds(), 1.0)
    values = [r.value for r in rows] + [goal.target] + ([goal.baseline] if goal.baseline is not None else [])
    low, high = min(values), max(values)
    pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad

    def x(moment: datetime) -> float:
        return left + (moment - start).total_seconds() / span_s * (width - left - right)

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    points = [(x(r.at), y(r.value), f"{r.at.date().isoformat()}: {goal_value(goal, r.value)}") for r in rows]
    plan = None
    if goal.baseline is not None:
        plan = (
            x(_day_moment(goal.start_on)),
            y(goal.baseline),
            x(_day_moment(goal.due_on)),
            y(goal.target),
        )
    today_x = x(now) if start <= now <= end else None
    y_labels = [(y(v), goal_value(goal, v)) for v in (high - pad, low + pad)]
    x_labels = [(x(start), start.date().isoformat()), (x(end), (end - timedelta(days=1)).date().isoformat())]
    return Chart(
        width,
        height,
        points,
        y(goal.baseline) if goal.baseline is not None else None,
        y(goal.target),
        plan,
        today_x,
        y_labels,
        x_labels,
    )


@dataclass
class GoalPage:
    """Everything the goal page shows."""

    goal: Goal
    step_name: str | None
    measurements: list[GoalMeasurement]
    check_ins: list[CheckIn]
    initiatives: list[Initiative]
    events: list[GoalEvent]
    before_after: list[BeforeAfter]
    chart: Chart
    tolerances: Tolerances
    explanation: str
    check_in_due_on: date
    check_in_overdue: bool
    log_names: dict[int, str]


def page(goal_id: int, *, reader_id: int | None = None, now: datetime | None = None) -> GoalPage:
    """The goal with its measurements, chart, check-ins, initiatives, before/after and recent events;
    the reader's unread notifications about it are marked read, for the caller to commit (after drawing
    the page: a commit here would expire the goal, the reader's membership and the organisation, and
    the page would load them again)."""
    now = now or utcnow()
    goal = get_goal(goal_id, with_journey_and_owner=True)
    if reader_id is not None:
        db.session.execute(
            sa.update(Notification)
            .where(
                Notification.goal_id == goal.id,
                Notification.user_id == reader_id,
                Notification.read_at.is_(None),
            )
            .values(read_at=now)
        )
    rows = measurements(goal.id)
    tol = tolerances()
    step_name = (
        db.session.scalar(sa.select(Step.name).where(Step.id == goal.step_id)) if goal.step_id else None
    )
    log_ids = {r.event_log_id for r in rows if r.event_log_id}
    log_names = (
        dict(db.session.execute(sa.select(EventLog.id, EventLog.name).where(EventLog.id.in_(log_ids))).all())
        if log_ids
        else {}
    )
    events = list(
        db.session.scalars(
            sa.select(GoalEvent)
            .where(GoalEvent.goal_id == goal.id)
            .order_by(GoalEvent.at.desc(), GoalEvent.id.desc())
            .limit(30)
        )
    )
    goal_initiatives = initiatives(goal.id)
    return GoalPage(
        goal=goal,
        step_name=step_name,
        measurements=rows,
        check_ins=check_ins(goal.id),
        initiatives=goal_initiatives,
        events=events,
        before_after=before_after(goal, of_initiatives=goal_initiatives),
        chart=chart(goal, rows, now=now),
        tolerances=tol,
        explanation=explain(goal, tol),
        check_in_due_on=check_in_due_on(goal),
        check_in_overdue=check_in_overdue(goal, now.date()),
        log_names=log_names,
    )


# --- API JSON ------------------------------------------------------------------------------------------


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value else None


def goal_json(goal: Goal, rows: list[GoalMeasurement], *, today: date | None = None) -> dict[str, Any]:
    """A goal as the API answers it."""
    return {
        "id": goal.id,
        "title": goal.title,
        "why": goal.why,
        "journey_id": goal.journey_id,
        "step_id": goal.step_id,
        "kpi": {"metric": goal.kpi_metric, "source": goal.kpi_source, "unit": goal.kpi_unit or None},
        "direction": goal.direction,
        "baseline": goal.baseline,
        "target": goal.target,
        "current": goal.current_value,
        "progress": goal.progress,
        "expected": goal.expected,
        "status": goal.status,
        "start": goal.start_on.isoformat(),
        "due": goal.due_on.isoformat(),
        "review_every_days": goal.review_every_days,
        "owner_email": goal.owner.email if goal.owner else None,
        "last_measured_at": _iso(goal.last_measured_at),
        "last_check_in_at": _iso(goal.last_check_in_at),
        "check_in_overdue": check_in_overdue(goal, today),
        "watermelon": goal.watermelon,
        "measurements": [
            {
                "at": r.at.isoformat(),
                "value": r.value,
                "source": r.source,
                "event_log_id": r.event_log_id,
                "note": r.note or None,
            }
            for r in rows
        ],
    }
