"""The executive dashboard: every goal with its trend, the journey portfolio, what changed since a visit.

Pure reading, in a fixed number of queries whatever the number of goals (the budget is 200 ms of
server time for 200 goals): the goals with their journey, step and owner in one query (a goal stores its
latest figures, so nothing is recomputed here); the recent measurements of all of them in one query for
the sparklines; the events since the member's previous visit in two; the portfolio's snapshots and log
summaries in three. Filters are applied in Python to the one list of goals, so the filter menus always
offer every owner and journey.

Only `open_dashboard` writes: the member's visit row (see `record_visit`).
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models import User
from webapp.models.eventlogs import LogSummary, MiningRun
from webapp.models.goals import (
    GOAL_STATUSES,
    DashboardVisit,
    Goal,
    GoalEvent,
    GoalMeasurement,
)
from webapp.models.journeys import Journey, Step
from webapp.models.overlay import MeasurementSnapshot
from webapp.models.types import utcnow
from webapp.services import goals
from webapp.services.journey_format import safe_cell
from webapp.services.overlay_view import human_duration

STATUS_LABELS = {
    "off_track": "Off track",
    "missed": "Missed",
    "at_risk": "At risk",
    "on_track": "On track",
    "achieved": "Achieved",
    "no_data": "No data",
}
assert set(STATUS_LABELS) == set(GOAL_STATUSES)
KINDS = ("customer", "employee")
CHANGE_KINDS = {  # kind -> (one, many)
    "status_change": ("status change", "status changes"),
    "measurement": ("new measurement", "new measurements"),
    "check_in": ("check-in", "check-ins"),
    "created": ("new goal", "new goals"),
    "initiative": ("initiative change", "initiative changes"),
    "updated": ("edit", "edits"),
}
# A reload or a filter within this gap is the same visit: "since my last visit" stays put while reading.
VISIT_GAP = timedelta(minutes=30)
VISIT_NOTED_EVERY = timedelta(minutes=1)  # far below VISIT_GAP: a minute late changes no "since"
FIRST_VISIT_WINDOW = timedelta(days=7)  # what a first visit shows as "recent changes"
SPARK_POINTS = 30  # the newest measurements drawn per goal
SPARK_WIDTH, SPARK_HEIGHT = 120, 28
CHANGES_SHOWN = 50


def describe_counts(counts: Mapping[str, int]) -> str:
    """'1 status change, 3 new measurements' ('' when nothing changed)."""
    return ", ".join(
        f"{count} {CHANGE_KINDS[kind][0 if count == 1 else 1]}"
        for kind, count in counts.items()
        if count and kind in CHANGE_KINDS
    )


def template_context() -> dict[str, Any]:
    """Names the dashboard's templates use (the page, the worker's print view, the digests)."""
    return {
        "statuses": STATUS_LABELS,
        "describe_counts": describe_counts,
        "human": human_duration,
        "one_day": timedelta(days=1),
    }


# --- filters ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """What the reader narrowed the dashboard to; empty means everything."""

    status: str = ""
    owner_id: int | None = None
    journey_id: int | None = None
    kind: str = ""

    @classmethod
    def parse(cls, args: Mapping[str, Any]) -> Filters:
        """From query arguments; unknown or malformed values are ignored rather than refused."""

        def number(name: str) -> int | None:
            value = str(args.get(name) or "").strip()
            return int(value) if value.isdigit() and len(value) < 12 else None

        status = str(args.get("status") or "")
        kind = str(args.get("kind") or "")
        return cls(
            status=status if status in STATUS_LABELS else "",
            owner_id=number("owner"),
            journey_id=number("journey"),
            kind=kind if kind in KINDS else "",
        )

    def query(self) -> dict[str, Any]:
        """The filters as query arguments (for links that keep them: CSV, export)."""
        values = {
            "status": self.status,
            "owner": self.owner_id,
            "journey": self.journey_id,
            "kind": self.kind,
        }
        return {k: v for k, v in values.items() if v not in ("", None)}

    @property
    def active(self) -> bool:
        return bool(self.query())

    def goal_ids(self, column: sa.ColumnElement) -> list[sa.ColumnElement]:
        """SQL criteria limiting `column` (a goal id) to the goals these filters admit; none when they
        admit every goal (the tenant's scope limits the rows then)."""
        criteria = []
        if self.status:
            criteria.append(Goal.status == self.status)
        if self.owner_id is not None:
            criteria.append(Goal.owner_id == self.owner_id)
        if self.journey_id is not None:
            criteria.append(Goal.journey_id == self.journey_id)
        if self.kind:
            criteria.append(Journey.kind == self.kind)
        if not criteria:
            return []
        return [column.in_(sa.select(Goal.id).join(Journey, Journey.id == Goal.journey_id).where(*criteria))]

    def admits(self, goal: GoalCard) -> bool:
        return (
            (not self.status or goal.status == self.status)
            and (self.owner_id is None or goal.owner_id == self.owner_id)
            and (self.journey_id is None or goal.journey_id == self.journey_id)
            and (not self.kind or goal.kind == self.kind)
        )


# --- what the page shows -------------------------------------------------------------------------


@dataclass
class GoalCard:
    """One goal as a card: its stored figures, its journey and owner, and its trend."""

    id: int
    title: str
    status: str
    journey_id: int
    journey_title: str
    kind: str
    step_name: str | None
    kpi_source: str
    kpi_metric: str
    kpi_unit: str
    direction: str
    baseline: float | None
    target: float
    current_value: float | None
    progress: float | None
    expected: float | None
    start_on: date
    due_on: date
    review_every_days: int
    owner_id: int | None
    owner_label: str
    last_measured_at: datetime | None
    last_check_in_at: datetime | None
    watermelon: str | None
    points: list[float] = field(default_factory=list)  # the newest measurements' values, oldest first
    check_in_overdue: bool = False

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(self.status, self.status)

    @property
    def kpi_label(self) -> str:
        if self.kpi_source == "manual":
            return self.kpi_metric + (f" ({self.kpi_unit})" if self.kpi_unit else "")
        return goals.KPI_LABELS.get(self.kpi_metric, self.kpi_metric.replace("_", " "))

    def value_text(self, value: float | None) -> str:
        return goals.format_value(self.kpi_metric, value, self.kpi_unit)

    @property
    def due_passed(self) -> bool:
        return self.status not in ("achieved",) and self.due_on < utcnow().date()

    @property
    def progress_percent(self) -> int | None:
        """Progress as a whole percentage, unclamped (it can be negative or above 100)."""
        return None if self.progress is None else round(self.progress * 100)

    @property
    def bar_percent(self) -> float:
        """Progress clamped to the bar's 0..100."""
        return 0.0 if self.progress is None else max(0.0, min(100.0, self.progress * 100))

    @property
    def expected_percent(self) -> float | None:
        return None if self.expected is None else max(0.0, min(100.0, self.expected * 100))

    @cached_property
    def sparkline(self) -> str:
        """The SVG polyline's points for the trend ('' with fewer than two measurements)."""
        return spark_points(self.points)

    @property
    def trend_label(self) -> str:
        if len(self.points) < 2:
            return ""
        return f"{len(self.points)} measurements, from {number(self.points[0])} to {number(self.points[-1])}"


@dataclass
class JourneyGroup:
    """The goals of one journey, worst status first."""

    journey_id: int
    title: str
    kind: str
    goals: list[GoalCard]

    @property
    def status_counts(self) -> dict[str, int]:
        return status_counts(self.goals)


@dataclass
class PortfolioRow:
    """A journey's measured health and its goals' statuses."""

    journey_id: int
    title: str
    kind: str
    conformance_share: float | None = None
    measured_until: datetime | None = None
    cases: int | None = None
    durations: list[float] = field(default_factory=list)  # median case duration per snapshot, by period
    goal_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def duration_sparkline(self) -> str:
        return spark_points(self.durations)

    @property
    def latest_duration_s(self) -> float | None:
        return self.durations[-1] if self.durations else None

    @property
    def duration_change(self) -> float | None:
        """Relative change of the median case duration from the previous snapshot to the latest."""
        if len(self.durations) < 2 or not self.durations[-2]:
            return None
        return self.durations[-1] / self.durations[-2] - 1


@dataclass
class Change:
    """A goal event since the reader's previous visit."""

    at: datetime
    kind: str
    summary: str
    goal_id: int
    goal_title: str
    journey_title: str
    from_status: str | None
    to_status: str | None


@dataclass
class Dashboard:
    filters: Filters
    groups: list[JourneyGroup]
    portfolio: list[PortfolioRow]
    owners: list[tuple[int, str]]
    journeys: list[tuple[int, str]]
    total_goals: int
    status_counts: dict[str, int]
    generated_at: datetime
    changes: list[Change] = field(default_factory=list)
    change_counts: dict[str, int] = field(default_factory=dict)
    changes_since: datetime | None = None
    first_visit: bool = False

    @property
    def shown_goals(self) -> int:
        return sum(len(group.goals) for group in self.groups)

    @property
    def change_total(self) -> int:
        return sum(self.change_counts.values())


# --- helpers -----------------------------------------------------------------------------------------


def status_counts(goals: Iterable[GoalCard]) -> dict[str, int]:
    """Goals per status, in the dashboard's order (worst first), zero counts left out."""
    counts = Counter(goal.status for goal in goals)
    return {status: counts[status] for status in STATUS_LABELS if counts[status]}


def number(value: float | None) -> str:
    """A figure as people read it: no trailing zeros, thousands separated."""
    if value is None:
        return "–"
    if abs(value - round(value)) < 1e-9:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def spark_points(values: list[float], width: int = SPARK_WIDTH, height: int = SPARK_HEIGHT) -> str:
    """The `points` of an SVG polyline drawing `values` evenly spaced ('' for fewer than two)."""
    if len(values) < 2:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (value - low) / span * (height - 4):.1f}"
        for i, value in enumerate(values)
    )


def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


# --- the queries -------------------------------------------------------------------------------------


def _goal_cards(now: datetime) -> list[GoalCard]:
    """Every goal of the organisation with its journey, step and owner: one query."""
    rows = db.session.execute(
        sa.select(
            Goal.id,
            Goal.title,
            Goal.status,
            Goal.journey_id,
            Journey.title.label("journey_title"),
            Journey.kind,
            Step.name.label("step_name"),
            Goal.kpi_source,
            Goal.kpi_metric,
            Goal.kpi_unit,
            Goal.direction,
            Goal.baseline,
            Goal.target,
            Goal.current_value,
            Goal.progress,
            Goal.expected,
            Goal.start_on,
            Goal.due_on,
            Goal.review_every_days,
            Goal.owner_id,
            User.display_name,
            User.email,
            Goal.last_measured_at,
            Goal.last_check_in_at,
            Goal.watermelon,
        )
        .join(Journey, Journey.id == Goal.journey_id)
        .outerjoin(Step, Step.id == Goal.step_id)
        .outerjoin(User, User.id == Goal.owner_id)
        .order_by(Journey.title, Journey.id, Goal.due_on, Goal.id)
    ).all()
    cards = []
    for row in rows:
        values = row._asdict()
        display_name, email = values.pop("display_name"), values.pop("email")
        card = GoalCard(**values, owner_label=display_name or email or "Nobody")
        card.check_in_overdue = goals.check_in_overdue(card, now.date())  # the goals page's rule
        cards.append(card)
    return cards


def _attach_points(cards: list[GoalCard], filters: Filters) -> None:
    """The newest SPARK_POINTS measurements of every goal shown, oldest first: one query."""
    if not cards:
        return
    ranked = (
        sa.select(
            GoalMeasurement.goal_id,
            GoalMeasurement.value,
            sa.func.row_number()
            .over(
                partition_by=GoalMeasurement.goal_id,
                order_by=(GoalMeasurement.at.desc(), GoalMeasurement.id.desc()),
            )
            .label("newest"),
        )
        .where(*filters.goal_ids(GoalMeasurement.goal_id))
        .subquery()
    )
    rows = db.session.execute(
        sa.select(ranked.c.goal_id, ranked.c.value)
        .where(ranked.c.newest <= SPARK_POINTS)
        .order_by(ranked.c.goal_id, ranked.c.newest.desc())
    ).all()
    by_goal = {card.id: card.points for card in cards}
    for goal_id, value in rows:
        if goal_id in by_goal:
            by_goal[goal_id].append(value)


def _portfolio(cards: list[GoalCard], filters: Filters) -> list[PortfolioRow]:
    """Each journey (not archived, or with goals) with its latest conformance, its case duration trend
    over its linked logs, and its goals' statuses: three queries."""
    with_goals = {card.journey_id for card in cards}
    journeys = db.session.execute(
        sa.select(Journey.id, Journey.title, Journey.kind)
        .where(sa.or_(Journey.archived_at.is_(None), Journey.id.in_(with_goals or [-1])))
        .order_by(Journey.title, Journey.id)
    ).all()
    rows = {
        j.id: PortfolioRow(j.id, j.title, j.kind)
        for j in journeys
        if (filters.journey_id is None or j.id == filters.journey_id)
        and (not filters.kind or j.kind == filters.kind)
    }
    if not rows:
        return []
    goals_by_journey: dict[int, list[GoalCard]] = defaultdict(list)
    for card in cards:
        goals_by_journey[card.journey_id].append(card)
    for journey_id, row in rows.items():
        row.goal_statuses = status_counts(goals_by_journey.get(journey_id, []))

    # The latest finished snapshot per linked log (what overlay.timeline shows), without its details.
    snapshots = db.session.execute(
        sa.select(
            MeasurementSnapshot.id,
            MeasurementSnapshot.journey_id,
            MeasurementSnapshot.link_id,
            MeasurementSnapshot.event_log_id,
            MeasurementSnapshot.period_end,
            MeasurementSnapshot.finished_at,
            MeasurementSnapshot.conformance_share,
            MeasurementSnapshot.cases,
        )
        .where(MeasurementSnapshot.status == "finished", MeasurementSnapshot.journey_id.in_(list(rows)))
        .order_by(MeasurementSnapshot.link_id, MeasurementSnapshot.id.desc())
    ).all()
    latest_per_link = {}
    for snapshot in snapshots:
        latest_per_link.setdefault(snapshot.link_id, snapshot)
    timelines: dict[int, list] = defaultdict(list)
    for snapshot in latest_per_link.values():
        timelines[snapshot.journey_id].append(snapshot)

    # The median case duration of each log: its latest finished run over all cases.
    log_ids = {snapshot.event_log_id for snapshot in latest_per_link.values()}
    medians: dict[int, float | None] = {}
    if log_ids:
        runs = db.session.execute(
            sa.select(MiningRun.event_log_id, MiningRun.filters, LogSummary.case_duration_median_s)
            .join(LogSummary, LogSummary.run_id == MiningRun.id)
            .where(MiningRun.status == "finished", MiningRun.event_log_id.in_(log_ids))
            .order_by(MiningRun.id.desc())
        ).all()
        for log_id, run_filters, median in runs:
            if not run_filters and log_id not in medians:
                medians[log_id] = median

    for journey_id, timeline in timelines.items():
        timeline.sort(key=lambda s: (_aware(s.period_end or s.finished_at), s.id))
        row, latest = rows[journey_id], timeline[-1]
        row.conformance_share, row.cases = latest.conformance_share, latest.cases
        row.measured_until = latest.period_end or latest.finished_at
        row.durations = [medians[s.event_log_id] for s in timeline if medians.get(s.event_log_id) is not None]
    return list(rows.values())


def _changes(cards: list[GoalCard], filters: Filters, since: datetime) -> tuple[list[Change], dict[str, int]]:
    """Events of the goals shown after `since`: the newest CHANGES_SHOWN, and counts per kind (two
    queries)."""
    if not cards:
        return [], {}
    by_goal = {card.id: card for card in cards}
    criteria = [GoalEvent.at > since, *filters.goal_ids(GoalEvent.goal_id)]
    counts = {
        kind: count
        for kind, count in db.session.execute(
            sa.select(GoalEvent.kind, sa.func.count()).where(*criteria).group_by(GoalEvent.kind)
        ).all()
    }
    rows = db.session.execute(
        sa.select(
            GoalEvent.at,
            GoalEvent.kind,
            GoalEvent.summary,
            GoalEvent.goal_id,
            GoalEvent.from_status,
            GoalEvent.to_status,
        )
        .where(*criteria)
        .order_by(GoalEvent.at.desc(), GoalEvent.id.desc())
        .limit(CHANGES_SHOWN)
    ).all()
    changes = [
        Change(
            at=row.at,
            kind=row.kind,
            summary=row.summary,
            goal_id=row.goal_id,
            goal_title=by_goal[row.goal_id].title,
            journey_title=by_goal[row.goal_id].journey_title,
            from_status=row.from_status,
            to_status=row.to_status,
        )
        for row in rows
        if row.goal_id in by_goal
    ]
    ordered = {kind: counts[kind] for kind in CHANGE_KINDS if counts.get(kind)}
    return changes, ordered


# --- use cases ---------------------------------------------------------------------------------------


def load(
    filters: Filters | None = None, *, since: datetime | None = None, now: datetime | None = None
) -> Dashboard:
    """The dashboard of the organisation in scope; with `since`, also what changed after it."""
    filters = filters or Filters()
    now = now or utcnow()
    cards = _goal_cards(now)
    owners = sorted(
        {(c.owner_id, c.owner_label) for c in cards if c.owner_id is not None}, key=lambda o: o[1].lower()
    )
    journeys = list(dict.fromkeys((c.journey_id, c.journey_title) for c in cards))
    shown = [card for card in cards if filters.admits(card)]
    _attach_points(shown, filters)
    groups: dict[int, JourneyGroup] = {}
    rank = {status: i for i, status in enumerate(STATUS_LABELS)}
    for card in shown:
        group = groups.get(card.journey_id)
        if group is None:
            group = groups[card.journey_id] = JourneyGroup(card.journey_id, card.journey_title, card.kind, [])
        group.goals.append(card)
    for group in groups.values():
        group.goals.sort(key=lambda c: (rank.get(c.status, 99), c.due_on, c.id))
    dashboard = Dashboard(
        filters=filters,
        groups=list(groups.values()),
        portfolio=_portfolio(cards, filters),
        owners=owners,
        journeys=journeys,
        total_goals=len(cards),
        status_counts=status_counts(shown),
        generated_at=now,
    )
    if since is not None:
        dashboard.changes, dashboard.change_counts = _changes(shown, filters, since)
        dashboard.changes_since = since
    return dashboard


def record_visit(user_id: int, now: datetime | None = None) -> tuple[datetime | None, bool]:
    """Note that the member opened the dashboard; returns (their previous visit, whether this is the first).

    Each open moves `last_visit_at` to now, unless it was noted less than VISIT_NOTED_EVERY ago: the
    reloads and filters of one reading write nothing. `previous_visit_at` becomes the last visit only
    when that was more than VISIT_GAP ago, so reloading or filtering while reading does not empty "what
    changed".
    Flushes; the caller commits.
    """
    now = now or utcnow()
    visit = db.session.scalar(sa.select(DashboardVisit).where(DashboardVisit.user_id == user_id))
    if visit is None:
        try:
            with db.session.begin_nested():
                db.session.add(DashboardVisit(user_id=user_id, previous_visit_at=None, last_visit_at=now))
            return None, True
        except IntegrityError:  # the same member's other tab got there first
            visit = db.session.scalar(sa.select(DashboardVisit).where(DashboardVisit.user_id == user_id))
    if timedelta(0) <= now - _aware(visit.last_visit_at) < VISIT_NOTED_EVERY:
        return visit.previous_visit_at, visit.previous_visit_at is None  # this visit is noted already
    if now - _aware(visit.last_visit_at) >= VISIT_GAP:
        visit.previous_visit_at = visit.last_visit_at
    visit.last_visit_at = max(now, _aware(visit.last_visit_at))
    db.session.flush()
    return visit.previous_visit_at, visit.previous_visit_at is None


def open_dashboard(user_id: int, filters: Filters | None = None, now: datetime | None = None) -> Dashboard:
    """A member opens the dashboard: their visit is recorded and the changes since the previous one shown
    (on a first visit, those of the last FIRST_VISIT_WINDOW).

    The visit is flushed, not committed: the caller commits once the page is drawn. Committing first
    would expire every row loaded so far (the member, the organisation) and the page would load them
    again, and a second transaction would take another turn through the pool."""
    now = now or utcnow()
    previous, first = record_visit(user_id, now)
    since = previous if previous is not None else now - FIRST_VISIT_WINDOW
    dashboard = load(filters, since=since, now=now)
    dashboard.first_visit = previous is None
    return dashboard


# --- CSV ---------------------------------------------------------------------------------------------

GOAL_COLUMNS = (
    "goal_id",
    "title",
    "journey",
    "kind",
    "step",
    "kpi",
    "unit",
    "direction",
    "baseline",
    "target",
    "current",
    "progress",
    "expected",
    "status",
    "start",
    "due",
    "owner",
    "last_measured_at",
    "last_check_in_at",
    "check_in_overdue",
    "watermelon",
)
MEASUREMENT_COLUMNS = (
    "goal_id",
    "goal",
    "journey",
    "kpi",
    "unit",
    "at",
    "value",
    "source",
    "event_log_id",
    "note",
)


def _iso(moment: datetime | None) -> str:
    return _aware(moment).isoformat() if moment is not None else ""


def _csv(columns: tuple[str, ...], rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(value) for value in row])
    return out.getvalue()


def goals_csv(filters: Filters | None = None, now: datetime | None = None) -> str:
    """One row per goal shown with these filters, every text cell guarded against formula injection."""
    filters = filters or Filters()
    cards = [card for card in _goal_cards(now or utcnow()) if filters.admits(card)]
    return _csv(
        GOAL_COLUMNS,
        (
            (
                c.id,
                c.title,
                c.journey_title,
                c.kind,
                c.step_name or "",
                c.kpi_metric,
                c.kpi_unit,
                c.direction,
                c.baseline,
                c.target,
                c.current_value,
                c.progress,
                c.expected,
                c.status,
                c.start_on.isoformat(),
                c.due_on.isoformat(),
                c.owner_label if c.owner_id is not None else "",
                _iso(c.last_measured_at),
                _iso(c.last_check_in_at),
                "yes" if c.check_in_overdue else "no",
                c.watermelon or "",
            )
            for c in cards
        ),
    )


def measurements_csv(filters: Filters | None = None, now: datetime | None = None) -> str:
    """Every measurement of the goals shown with these filters, oldest first per goal."""
    filters = filters or Filters()
    cards = {card.id: card for card in _goal_cards(now or utcnow()) if filters.admits(card)}
    rows = db.session.execute(
        sa.select(
            GoalMeasurement.goal_id,
            GoalMeasurement.at,
            GoalMeasurement.value,
            GoalMeasurement.source,
            GoalMeasurement.event_log_id,
            GoalMeasurement.note,
        )
        .where(*filters.goal_ids(GoalMeasurement.goal_id))
        .order_by(GoalMeasurement.goal_id, GoalMeasurement.at, GoalMeasurement.id)
    ).all()
    return _csv(
        MEASUREMENT_COLUMNS,
        (
            (
                r.goal_id,
                cards[r.goal_id].title,
                cards[r.goal_id].journey_title,
                cards[r.goal_id].kpi_metric,
                cards[r.goal_id].kpi_unit,
                _iso(r.at),
                r.value,
                r.source,
                r.event_log_id or "",
                r.note,
            )
            for r in rows
            if r.goal_id in cards
        ),
    )
