"""What the "data vs story" page shows: the drawn map with one snapshot's figures laid over it.

Pure reading: it combines the current board (what the team drew) with a stored snapshot (what the
log says) and, for trends, the other snapshots. Definitions shown to users live in `DEFINITIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webapp.models.overlay import MeasurementSnapshot, StepMeasurement
from webapp.services import journeys as journey_service
from webapp.services import overlay
from webapp.services import surveys as survey_service

METRICS = {
    "cases_reached_share": "Share of cases reaching the step",
    "visits": "Visits",
    "median_visit_s": "Median visit time",
    "median_wait_before_s": "Median wait before the step",
    "rework_share": "Share of reaching cases that come back (rework)",
}
DURATION_METRICS = {"median_visit_s", "median_wait_before_s"}
# Larger is worse for these, so the heat is red where they are large; reach is the opposite.
WORSE_WHEN_HIGH = {"median_visit_s", "median_wait_before_s", "rework_share", "visits"}

DEFINITIONS = {
    "visit": (
        "A case's consecutive events on the same step (mapped activities only), from the first to the last."
    ),
    "cases_reached": "Cases with at least one visit to the step.",
    "visits": "All visits to the step, over all cases.",
    "rework_cases": "Cases with two or more visits to the step.",
    "median_visit_s": "Median over visits of (last event − first event of the visit).",
    "median_wait_before_s": (
        "Median over visits with an earlier event in the case (mapped or not) of "
        "(first event of the visit − the event just before it)."
    ),
    "transition": "Consecutive visits A then B, with the median of (first event of B − last event of A).",
    "conformance": (
        "A case follows the map when its visits never go back to an earlier stage and it has at least one "
        "visit; steps within one stage may come in any order. Share = following cases / all cases."
    ),
    "measured_duration": "Measured duration = median wait before the step + median visit time.",
    "business_time": (
        "Business time counts only the organisation's working hours (Settings › Business calendar)."
    ),
}


def human_duration(seconds: float | None) -> str:
    """4 h, 19 h, 2.5 d: the unit a person would say."""
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 36 * 3600:
        hours = s / 3600
        return f"{hours:.1f} h" if hours < 10 else f"{hours:.0f} h"
    days = s / 86400
    return f"{days:.1f} d" if days < 10 else f"{days:.0f} d"


@dataclass
class StepFigures:
    """One step's measured figures in the chosen time base, with what the page derives from them."""

    step_id: int
    measured: bool
    cases_reached: int = 0
    visits: int = 0
    rework_cases: int = 0
    cases_reached_share: float = 0.0
    rework_share: float = 0.0
    median_visit_s: float | None = None
    median_wait_before_s: float | None = None
    measured_duration_s: float | None = None
    expected_duration_s: int | None = None
    promise_broken: bool = False
    heat: int | None = None  # 0 (good) .. 5 (bad); None: no data
    felt_vs_measured: str | None = None
    ghost: bool = False
    sparkline: str = ""
    trend: list[float | None] = field(default_factory=list)
    change: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    surveys: dict[str, float] = field(default_factory=dict)
    sentiment: float | None = None


@dataclass
class OverlayView:
    board: Any
    snapshot: MeasurementSnapshot | None
    compare: MeasurementSnapshot | None
    metric: str
    business: bool
    steps: dict[int, StepFigures]
    transitions: list[dict[str, Any]]
    departures: list[dict[str, Any]]
    paths: list[dict[str, Any]]
    ghosts: list[Any]
    shadows: list[dict[str, Any]]
    timeline: list[MeasurementSnapshot]
    states: list[overlay.Progress]
    step_names: dict[int, str]
    definitions: dict[str, str] = field(default_factory=lambda: DEFINITIONS)
    metrics: dict[str, str] = field(default_factory=lambda: METRICS)


def _value(row: StepMeasurement | None, metric: str, cases: int, business: bool) -> float | None:
    if row is None:
        return None
    if metric == "cases_reached_share":
        return row.cases_reached / cases if cases else 0.0
    if metric == "rework_share":
        return row.rework_cases / row.cases_reached if row.cases_reached else None
    if metric == "visits":
        return float(row.visits)
    if business:
        business_value = getattr(row, metric.replace("_s", "_business_s"))
        if business_value is not None:
            return business_value
    return getattr(row, metric)


def _heat(values: dict[int, float | None], metric: str) -> dict[int, int]:
    present = [v for v in values.values() if v is not None]
    if not present:
        return {}
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    heat = {}
    for step_id, v in values.items():
        if v is None:
            continue
        x = (v - low) / span
        if metric not in WORSE_WHEN_HIGH:
            x = 1 - x
        heat[step_id] = min(5, int(x * 6))
    return heat


def sparkline(points: list[float | None], breaks: list[int], width: int = 80, height: int = 20) -> str:
    """An SVG polyline of a series (None leaves a gap); `breaks` mark where the definition changed."""
    present = [p for p in points if p is not None]
    if len(points) < 2 or not present:
        return ""
    low, high = min(present), max(present)
    span = (high - low) or 1.0
    step = width / (len(points) - 1)
    segments, current = [], []
    for i, p in enumerate(points):
        if p is None or i in breaks:
            if len(current) > 1:
                segments.append(current)
            current = []
        if p is not None:
            current.append(f"{i * step:.1f},{height - 2 - (p - low) / span * (height - 4):.1f}")
    if len(current) > 1:
        segments.append(current)
    lines = "".join(f'<polyline points="{" ".join(seg)}"/>' for seg in segments)
    marks = "".join(
        f'<line class="definition-break" x1="{i * step - step / 2:.1f}" x2="{i * step - step / 2:.1f}" '
        f'y1="0" y2="{height}"/>'
        for i in breaks
    )
    dots = "".join(
        f'<circle cx="{i * step:.1f}" cy="{height - 2 - (p - low) / span * (height - 4):.1f}" r="1.5"/>'
        for i, p in enumerate(points)
        if p is not None
    )
    return (
        f'<svg class="sparkline" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="trend over {len(points)} snapshots">{lines}{marks}{dots}</svg>'
    )


def build(
    journey_id: int,
    *,
    snapshot_id: int | None = None,
    compare_id: int | None = None,
    metric: str = "median_wait_before_s",
    business: bool = False,
) -> OverlayView:
    """The overlay of one snapshot (the newest by default) on the current map."""
    board = journey_service.board(journey_id)
    metric = metric if metric in METRICS else "median_wait_before_s"
    states = overlay.link_states(journey_id, board=board)
    timeline = overlay.timeline(journey_id, states)
    if snapshot_id is not None:
        snapshot = overlay.snapshot_for(journey_id, snapshot_id)
    else:
        snapshot = timeline[-1] if timeline else None
    compare = overlay.snapshot_for(journey_id, compare_id) if compare_id else None
    step_names = {s.id: s.name for s in board.steps}
    if snapshot is not None:
        for s in snapshot.layout:
            step_names.setdefault(s["id"], s["name"])

    rows_of = overlay.step_rows_of(
        list(dict.fromkeys([s.id for s in timeline] + [s.id for s in (snapshot, compare) if s is not None]))
    )
    rows = rows_of[snapshot.id] if snapshot else {}
    measured_ids = {s["id"] for s in snapshot.layout} if snapshot else set()
    mapped_steps = set(snapshot.mapping_version.activities.values()) if snapshot else set()
    cases = snapshot.cases or 0 if snapshot else 0
    compare_rows = rows_of[compare.id] if compare else {}

    series_rows = [rows_of[s.id] for s in timeline]
    breaks = [i for i in range(1, len(timeline)) if timeline[i].definition != timeline[i - 1].definition]
    scores = survey_service.latest_by_step(journey_id)

    steps: dict[int, StepFigures] = {}
    values: dict[int, float | None] = {}
    for step in board.steps:
        row = rows.get(step.id)
        figures = StepFigures(
            step_id=step.id, measured=step.id in measured_ids, expected_duration_s=step.expected_duration_s
        )
        if row is not None:
            figures.cases_reached, figures.visits, figures.rework_cases = (
                row.cases_reached,
                row.visits,
                row.rework_cases,
            )
            figures.cases_reached_share = row.cases_reached / cases if cases else 0.0
            figures.rework_share = row.rework_cases / row.cases_reached if row.cases_reached else 0.0
            figures.median_visit_s = _value(row, "median_visit_s", cases, business)
            figures.median_wait_before_s = _value(row, "median_wait_before_s", cases, business)
            if figures.median_visit_s is not None or figures.median_wait_before_s is not None:
                figures.measured_duration_s = (figures.median_visit_s or 0.0) + (
                    figures.median_wait_before_s or 0.0
                )
            if step.expected_duration_s is not None and figures.measured_duration_s is not None:
                figures.promise_broken = figures.measured_duration_s > step.expected_duration_s
        figures.ghost = snapshot is not None and (step.id not in mapped_steps or figures.cases_reached == 0)
        values[step.id] = _value(row, metric, cases, business) if row is not None and row.visits else None
        figures.trend = [
            _value(r.get(step.id), metric, s.cases or 0, business)
            for r, s in zip(series_rows, timeline, strict=True)
        ]
        figures.sparkline = sparkline(figures.trend, breaks)
        if compare is not None:
            before, after = compare_rows.get(step.id), row
            for name in ("cases_reached_share", "median_visit_s", "median_wait_before_s", "rework_share"):
                figures.change[name] = (
                    _value(before, name, compare.cases or 0, business),
                    _value(after, name, cases, business),
                )
        figures.surveys = scores.get(step.id, {})
        figures.sentiment = survey_service.sentiment(figures.surveys)
        steps[step.id] = figures

    heat = _heat(values, metric)
    for step_id, level in heat.items():
        steps[step_id].heat = level
    _flag_felt_vs_measured(board, steps)

    details = (snapshot.details or {}) if snapshot else {}
    transitions = []
    if snapshot is not None:
        for t in overlay.transition_rows(snapshot.id):
            median = t.median_business_s if business and t.median_business_s is not None else t.median_s
            transitions.append(
                {
                    "from_step": t.from_step_id,
                    "to_step": t.to_step_id,
                    "frequency": t.frequency,
                    "median_s": median,
                }
            )
    threshold = max(1, int(0.01 * cases))
    shadows = [
        a for a in details.get("unmapped_activities") or [] if a.get("cases", a["events"]) >= threshold
    ][:15]
    ghosts = [s for s in board.steps if steps[s.id].ghost]
    return OverlayView(
        board=board,
        snapshot=snapshot,
        compare=compare,
        metric=metric,
        business=business,
        steps=steps,
        transitions=transitions,
        departures=details.get("departures") or [],
        paths=details.get("paths") or [],
        ghosts=ghosts,
        shadows=shadows,
        timeline=timeline,
        states=states,
        step_names=step_names,
    )


def _flag_felt_vs_measured(board: Any, steps: dict[int, StepFigures]) -> None:
    """Flag steps drawn as fine (emotion ≥ 0) where the data shows pain: a wait in the slowest quarter of
    the journey's steps, or rework in at least one case in five."""
    waits = sorted(f.median_wait_before_s for f in steps.values() if f.median_wait_before_s is not None)
    slow = waits[int(len(waits) * 0.75)] if len(waits) >= 4 else None
    for step in board.steps:
        figures = steps[step.id]
        if not figures.visits or step.emotion < 0:
            continue
        reasons = []
        if (
            slow is not None
            and figures.median_wait_before_s is not None
            and figures.median_wait_before_s >= slow > 0
        ):
            reasons.append(
                f"wait before it is among the longest ({human_duration(figures.median_wait_before_s)})"
            )
        if figures.rework_share >= 0.2:
            reasons.append(f"{figures.rework_share:.0%} of its cases come back to it")
        if reasons:
            figures.felt_vs_measured = (
                f"Drawn as {'+' if step.emotion > 0 else ''}{step.emotion}, but " + " and ".join(reasons)
            )
