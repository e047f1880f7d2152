"""Data vs story: lay an event log over a drawn journey and measure each step, hop and departure.

A journey map is a *story*: steps in stages, in the order the team believes things happen. The log
is the *data*. Given which activities of the log stand for which step (several activities may stand
for one step; an activity for at most one), :func:`measure_journey` projects every case onto the map
and says how often each step is reached, how long it takes, how long cases wait before it, which
hops between steps happen, and how cases depart from the story.

Definitions (the issue's, implemented exactly):

* Events are ordered per case by completion timestamp, ties kept in file order (pm4py semantics, as
  :mod:`worker.mining.discovery`). A start timestamp, when the log has one, is not used: visits,
  waits and hops are measured between event times, as the issue defines them.
* *Projection*: a case's events whose activity is mapped, in that order; consecutive events of the
  same step merge into one *visit*, from its first to its last event. An unmapped event between two
  events of step A does not split A's visit (it is not in the projection); an event of step B does.
* Per step: ``cases_reached`` (cases with a visit), ``visits``, ``rework_cases`` (cases with two or
  more visits), ``median_visit_s`` (last - first event of the visit) and ``median_wait_before_s``
  (first event of the visit - the event just before it in the case's full order, mapped or not;
  only visits that have an earlier event).
* Transitions: consecutive visits A then B in a case, with the median of first(B) - last(A).
* A case *follows the map* when it has a visit and its visits never go back to an earlier stage;
  steps of one stage may happen in any order. ``conformance.share`` is over all cases of the log.
* Medians average the two middle values (numpy); None when there is nothing to take it of.
* With a :class:`~worker.mining.calendar.BusinessCalendar`, the same intervals are also measured in
  working time (``*_business_s``), medians over the same visits / hops.

Everything is vectorised over integer codes (one stable sort, then run boundaries, ``bincount``,
``np.unique`` of packed keys and per-group sorts): a million events against a 200-step journey take
well under a second. The only Python loops are over steps, departures and example cases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .calendar import BusinessCalendar
from .discovery import NS, _codes, _group_bounds, _iso, _ns, _sort_grouped, _sort_order, _variant_ids
from .progress import Progress, throttled
from .table import ACTIVITY, CASE, TIMESTAMP, EventTable

PHASE = "measuring"
MAX_TIMELINE_EVENTS = 200

BACK_TO_EARLIER_STAGE = "back_to_earlier_stage"
SKIPPED_STEP = "skipped_step"
ACTIVITY_NOT_ON_MAP = "activity_not_on_map"
NO_MAPPED_EVENT = "no_mapped_event"
DEPARTURE_KINDS = (BACK_TO_EARLIER_STAGE, SKIPPED_STEP, ACTIVITY_NOT_ON_MAP, NO_MAPPED_EVENT)

_BUSINESS_STEP_KEYS = ("median_visit_business_s", "median_wait_before_business_s")
_BUSINESS_TRANSITION_KEYS = ("median_business_s",)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class MapStep:
    """A step of the journey as the overlay needs it: its id, name and its stage's 0-based index."""

    id: int
    name: str
    stage_index: int


@dataclass
class Conformance:
    """Cases that follow the map (never back to an earlier stage, at least one visit)."""

    following: int
    share: float


@dataclass
class StepMeasure:
    """What the data says about one step (zeros and None medians for a step never reached)."""

    step_id: int
    name: str
    stage_index: int
    cases_reached: int
    visits: int
    rework_cases: int
    median_visit_s: float | None
    median_wait_before_s: float | None
    median_visit_business_s: float | None = None
    median_wait_before_business_s: float | None = None


@dataclass
class TransitionMeasure:
    """Consecutive visits from one step to another, with the median gap between them."""

    from_step: int
    to_step: int
    frequency: int
    median_s: float
    median_business_s: float | None = None


@dataclass
class UnmappedActivity:
    """An activity of the log that stands for no step."""

    name: str
    events: int
    cases: int


@dataclass
class Departure:
    """One way cases depart from the story, with a few example case ids to look at.

    Which structured fields are set depends on ``kind``: ``from_step``/``to_step`` for
    back_to_earlier_stage, ``step_id`` for skipped_step, ``activity`` for activity_not_on_map.
    """

    kind: str
    label: str
    cases: int
    example_cases: list[str]
    from_step: int | None = None
    to_step: int | None = None
    step_id: int | None = None
    activity: str | None = None


@dataclass
class JourneyPath:
    """A journey-level variant: the sequence of steps a case visits (empty: no visit at all)."""

    steps: list[int]
    cases: int
    share: float
    median_duration_s: float


@dataclass
class TimelineEvent:
    """One event of an example case, for "show me that case" views."""

    activity: str
    timestamp: str
    step_id: int | None


@dataclass
class JourneyMeasurement:
    """Everything :func:`measure_journey` computes; ``to_dict()`` is JSON-serialisable."""

    cases: int
    events: int
    period_start: str | None
    period_end: str | None
    conformance: Conformance
    steps: list[StepMeasure]
    transitions: list[TransitionMeasure]
    unmapped_activities: list[UnmappedActivity]
    departures: list[Departure]
    paths: list[JourneyPath]
    case_timelines: dict[str, list[TimelineEvent]] = field(default_factory=dict)
    activity_events: dict[str, int] = field(default_factory=dict)
    # The calendar the business figures were measured with (its to_dict), None without one.
    calendar: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain built-in types; the ``*_business_s`` keys appear only when a calendar was used."""
        data = asdict(self)
        if self.calendar is None:
            for entry in data["steps"]:
                for key in _BUSINESS_STEP_KEYS:
                    entry.pop(key)
            for entry in data["transitions"]:
                for key in _BUSINESS_TRANSITION_KEYS:
                    entry.pop(key)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JourneyMeasurement:
        """Inverse of :meth:`to_dict` (e.g. a stored JSON column back into objects)."""
        return cls(
            cases=int(data["cases"]),
            events=int(data["events"]),
            period_start=data.get("period_start"),
            period_end=data.get("period_end"),
            conformance=Conformance(**data["conformance"]),
            steps=[StepMeasure(**entry) for entry in data["steps"]],
            transitions=[TransitionMeasure(**entry) for entry in data["transitions"]],
            unmapped_activities=[UnmappedActivity(**entry) for entry in data["unmapped_activities"]],
            departures=[Departure(**entry) for entry in data["departures"]],
            paths=[JourneyPath(**entry) for entry in data["paths"]],
            case_timelines={
                str(case): [TimelineEvent(**event) for event in events]
                for case, events in data.get("case_timelines", {}).items()
            },
            activity_events={str(k): int(v) for k, v in data.get("activity_events", {}).items()},
            calendar=data.get("calendar"),
        )

    def step(self, step_id: int) -> StepMeasure | None:
        """The measure of one step, by id."""
        return next((s for s in self.steps if s.step_id == step_id), None)

    def transition(self, from_step: int, to_step: int) -> TransitionMeasure | None:
        """One transition, by its two step ids."""
        return next((t for t in self.transitions if t.from_step == from_step and t.to_step == to_step), None)


# --------------------------------------------------------------------------------------------
# Kernels


def _grouped_medians(
    keys: np.ndarray, values: np.ndarray, n_keys: int, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(present keys ascending, count per key, median per key / scale) of values grouped by key.

    Keys below 2**16 (steps, step pairs of up to 256 steps, most path ids): discovery's radix sort
    by key plus a sort per present group, ~3x faster than a two-key lexsort; more keys: lexsort.
    """
    if keys.shape[0] == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0)
    if n_keys <= 65536:
        keys_s, values_s, firsts, lengths = _sort_grouped(keys, values, n_keys)
    else:
        order = np.lexsort((values, keys))
        keys_s, values_s = keys[order], values[order]
        firsts, lengths = _group_bounds(keys_s)
    lo = values_s[firsts + (lengths - 1) // 2].astype(np.float64)
    hi = values_s[firsts + lengths // 2].astype(np.float64)
    return keys_s[firsts].astype(np.int64), lengths, (lo + hi) / 2.0 / scale


def _scatter(n_keys: int, keys: np.ndarray, values: np.ndarray) -> list[float | None]:
    """A per-key list with None where the key had no value."""
    out: list[float | None] = [None] * n_keys
    for k, v in zip(keys.tolist(), values.tolist(), strict=True):
        out[k] = float(v)
    return out


def _first_per_group(
    group: np.ndarray, member: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """For (group, member) pairs sorted by group then member: (groups, sizes, first k members each)."""
    firsts, lengths = _group_bounds(group)
    examples = [member[a : a + min(k, n)] for a, n in zip(firsts.tolist(), lengths.tolist(), strict=True)]
    return group[firsts], lengths, examples


def _unique_pairs(major: np.ndarray, minor: np.ndarray, n_minor: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (major, minor) pairs sorted by major then minor, from one packed int64 key."""
    key = np.unique(major.astype(np.int64) * n_minor + minor.astype(np.int64))
    return key // n_minor, key % n_minor


def _report(progress: Progress | None, fraction: float) -> None:
    if progress is not None:
        progress(PHASE, fraction)


def _check_steps(steps: Sequence[MapStep]) -> None:
    seen: set[int] = set()
    for step in steps:
        if step.id in seen:
            raise ValueError(f"Step id {step.id} appears twice in the journey.")
        if step.stage_index < 0:
            raise ValueError(f"Step {step.id} has a negative stage index ({step.stage_index}).")
        seen.add(step.id)


def _empty_measurement(steps: Sequence[MapStep], calendar: BusinessCalendar | None) -> JourneyMeasurement:
    return JourneyMeasurement(
        cases=0,
        events=0,
        period_start=None,
        period_end=None,
        conformance=Conformance(following=0, share=0.0),
        steps=[StepMeasure(s.id, s.name, s.stage_index, 0, 0, 0, None, None) for s in steps],
        transitions=[],
        unmapped_activities=[],
        departures=[],
        paths=[],
        calendar=calendar.to_dict() if calendar is not None else None,
    )


# --------------------------------------------------------------------------------------------
# Entry point


def measure_journey(
    table: EventTable,
    activity_to_step: Mapping[str, int],
    steps: Sequence[MapStep],
    *,
    calendar: BusinessCalendar | None = None,
    max_examples: int = 5,
    max_paths: int = 50,
    progress: Progress | None = None,
) -> JourneyMeasurement:
    """Measure a journey against a log (see the module docstring for every definition).

    ``activity_to_step`` maps activity names to step ids; an activity mapped to an id that is not
    among ``steps`` (e.g. a step deleted since the mapping was confirmed) counts as unmapped, and
    activities not in the log are ignored. Steps are reported in the order given.
    """
    progress = throttled(progress)
    _report(progress, 0.0)
    steps = list(steps)
    _check_steps(steps)
    frame = table.frame
    n_events = frame.height
    if n_events == 0:
        _report(progress, 1.0)
        return _empty_measurement(steps, calendar)

    n_steps = len(steps)
    step_ids = np.array([s.id for s in steps], dtype=np.int64)
    step_stage = np.array([s.stage_index for s in steps], dtype=np.int64)
    position_of_step = {s.id: k for k, s in enumerate(steps)}

    # Integer codes: activities sorted by name, cases in order of first appearance (so "case order"
    # below is simply ascending case code).
    act_names_series = frame[ACTIVITY].unique().sort()
    act_names: list[str] = act_names_series.to_list()
    n_act = len(act_names)
    act = _codes(frame[ACTIVITY], act_names_series).astype(np.int64)
    case_names_series = frame[CASE].unique(maintain_order=True)
    case_names: list[str] = case_names_series.to_list()
    n_cases = len(case_names)
    case = _codes(frame[CASE], case_names_series).astype(np.int64)
    ts = _ns(frame[TIMESTAMP])
    order = _sort_order(case, ts, None, n_cases)
    if order is not None:
        case, act, ts = case[order], act[order], ts[order]
    # After the sort, case code c occupies rows case_start[c] .. case_end[c].
    brk = np.empty(n_events, dtype=bool)
    brk[0] = True
    np.not_equal(case[1:], case[:-1], out=brk[1:])
    case_start = np.flatnonzero(brk)
    case_end = np.append(case_start[1:], n_events) - 1
    _report(progress, 0.3)

    # Step position (index into `steps`) of each activity code, -1 when unmapped.
    step_of_act = np.full(n_act, -1, dtype=np.int64)
    code_of_act = {name: i for i, name in enumerate(act_names)}
    for name, step_id in activity_to_step.items():
        code = code_of_act.get(name)
        pos = position_of_step.get(step_id)
        if code is not None and pos is not None:
            step_of_act[code] = pos
    step_of_event = step_of_act[act]
    mapped_rows = np.flatnonzero(step_of_event >= 0)

    # Visits: runs of the same step among a case's mapped events.
    n_mapped = mapped_rows.shape[0]
    if n_mapped:
        p_case = case[mapped_rows]
        p_step = step_of_event[mapped_rows]
        new_visit = np.empty(n_mapped, dtype=bool)
        new_visit[0] = True
        new_visit[1:] = (p_case[1:] != p_case[:-1]) | (p_step[1:] != p_step[:-1])
        first_j = np.flatnonzero(new_visit)
        last_j = np.append(first_j[1:], n_mapped) - 1
        v_first_row = mapped_rows[first_j]
        v_last_row = mapped_rows[last_j]
        v_case = p_case[first_j]
        v_step = p_step[first_j]
    else:
        v_first_row = v_last_row = v_case = v_step = np.zeros(0, dtype=np.int64)
    v_t0 = ts[v_first_row]
    v_t1 = ts[v_last_row]
    v_stage = step_stage[v_step]

    # --- Steps ---------------------------------------------------------------------------
    visits = np.bincount(v_step, minlength=n_steps)
    # Distinct (case, step) pairs, sorted by case then step, with the visits of each.
    pair_key, pair_visits = np.unique(v_case * max(n_steps, 1) + v_step, return_counts=True)
    pair_case, pair_step = np.divmod(pair_key, max(n_steps, 1))
    cases_reached = np.bincount(pair_step, minlength=n_steps)
    rework_cases = np.bincount(pair_step[pair_visits > 1], minlength=n_steps)
    k_vis, _, med_vis = _grouped_medians(v_step, v_t1 - v_t0, n_steps, NS)
    has_prev = v_first_row > case_start[v_case]
    w_rows = v_first_row[has_prev]
    w_step = v_step[has_prev]
    k_wait, _, med_wait = _grouped_medians(w_step, ts[w_rows] - ts[w_rows - 1], n_steps, NS)
    median_visit = _scatter(n_steps, k_vis, med_vis)
    median_wait = _scatter(n_steps, k_wait, med_wait)
    median_visit_b: list[float | None] = [None] * n_steps
    median_wait_b: list[float | None] = [None] * n_steps
    if calendar is not None:
        kb, _, mb = _grouped_medians(v_step, calendar.business_seconds(v_t0, v_t1), n_steps)
        median_visit_b = _scatter(n_steps, kb, mb)
        kb, _, mb = _grouped_medians(w_step, calendar.business_seconds(ts[w_rows - 1], ts[w_rows]), n_steps)
        median_wait_b = _scatter(n_steps, kb, mb)
    step_measures = [
        StepMeasure(
            step_id=s.id,
            name=s.name,
            stage_index=s.stage_index,
            cases_reached=int(cases_reached[k]),
            visits=int(visits[k]),
            rework_cases=int(rework_cases[k]),
            median_visit_s=median_visit[k],
            median_wait_before_s=median_wait[k],
            median_visit_business_s=median_visit_b[k],
            median_wait_before_business_s=median_wait_b[k],
        )
        for k, s in enumerate(steps)
    ]
    _report(progress, 0.5)

    # --- Transitions and conformance -----------------------------------------------------
    same_case = v_case[1:] == v_case[:-1]
    t_case = v_case[1:][same_case]
    t_from = v_step[:-1][same_case]
    t_to = v_step[1:][same_case]
    t_gap = v_t0[1:][same_case] - v_t1[:-1][same_case]
    n_pairs = max(n_steps * n_steps, 1)
    t_key = t_from * n_steps + t_to
    k_tr, freq_tr, med_tr = _grouped_medians(t_key, t_gap, n_pairs, NS)
    med_tr_b = np.full(k_tr.shape[0], np.nan)
    if calendar is not None:
        gap_b = calendar.business_seconds(v_t1[:-1][same_case], v_t0[1:][same_case])
        # Same keys as k_tr, in the same ascending order.
        med_tr_b = _grouped_medians(t_key, gap_b, n_pairs)[2]
    transitions = [
        TransitionMeasure(
            from_step=int(step_ids[key // n_steps]),
            to_step=int(step_ids[key % n_steps]),
            frequency=int(freq),
            median_s=float(med),
            median_business_s=float(med_b) if calendar is not None else None,
        )
        for key, freq, med, med_b in zip(
            k_tr.tolist(), freq_tr.tolist(), med_tr.tolist(), med_tr_b.tolist(), strict=True
        )
    ]
    # Most frequent first; ties in step order (the list is built in ascending key order, sort is stable).
    transitions.sort(key=lambda t: -t.frequency)

    t_back = step_stage[t_to] < step_stage[t_from]
    visits_per_case = np.bincount(v_case, minlength=n_cases)
    goes_back = np.zeros(n_cases, dtype=bool)
    goes_back[t_case[t_back]] = True
    follows = (visits_per_case > 0) & ~goes_back
    following = int(np.count_nonzero(follows))
    _report(progress, 0.7)

    # --- Departures ----------------------------------------------------------------------
    departures: list[Departure] = []
    name_of_step = [s.name for s in steps]
    example_codes: set[int] = set()

    def named(codes: np.ndarray) -> list[str]:
        """Case ids of example case codes (remembered for the timelines)."""
        listed = codes.tolist()
        example_codes.update(listed)
        return [case_names[c] for c in listed]

    # Back to an earlier stage, per (from, to) pair: distinct cases, smallest case codes first.
    back_pair, back_case = _unique_pairs(t_key[t_back], t_case[t_back], n_cases)
    for key, count, examples in zip(*_first_per_group(back_pair, back_case, max_examples), strict=True):
        a, b = divmod(int(key), n_steps)
        departures.append(
            Departure(
                kind=BACK_TO_EARLIER_STAGE,
                label=f'Back from "{name_of_step[a]}" to "{name_of_step[b]}"',
                cases=int(count),
                example_cases=named(examples),
                from_step=int(step_ids[a]),
                to_step=int(step_ids[b]),
            )
        )

    # Skipped steps: cases (with a visit) that reach a later stage than S's but never visit S.
    # First visit of each case that has visits (visits are grouped by case, cases ascending).
    v_case_first = np.flatnonzero(np.append(True, v_case[1:] != v_case[:-1])) if v_case.shape[0] else v_case
    max_stage = np.full(n_cases, -1, dtype=np.int64)
    if v_case.shape[0]:
        max_stage[v_case[v_case_first]] = np.maximum.reduceat(v_stage, v_case_first)
    n_stage_values = int(step_stage.max()) + 1 if n_steps else 0
    per_max_stage = np.bincount(max_stage + 1, minlength=n_stage_values + 1)[1:]  # index = max stage
    # cases_beyond[s] = cases whose furthest stage is later than s.
    cases_beyond = np.append(np.cumsum(per_max_stage[::-1])[::-1][1:], 0)
    beyond_own = max_stage[pair_case] > step_stage[pair_step]
    visited_beyond = np.bincount(pair_step[beyond_own], minlength=n_steps)
    skipped = cases_beyond[step_stage] - visited_beyond
    # The cases visiting each step, ascending: pairs were sorted by case, a stable sort by step keeps that.
    by_step = np.argsort(pair_step, kind="stable")
    cases_by_step = pair_case[by_step]
    step_bounds = np.searchsorted(pair_step[by_step], np.arange(n_steps + 1))
    for k in np.flatnonzero(skipped > 0).tolist():
        candidate = max_stage > step_stage[k]
        candidate[cases_by_step[step_bounds[k] : step_bounds[k + 1]]] = False
        examples = np.flatnonzero(candidate)[:max_examples]
        departures.append(
            Departure(
                kind=SKIPPED_STEP,
                label=f'Skipped "{name_of_step[k]}"',
                cases=int(skipped[k]),
                example_cases=named(examples),
                step_id=int(step_ids[k]),
            )
        )

    # Activities not on the map: cases containing each.
    unmapped_rows = step_of_event < 0
    un_act, un_case = _unique_pairs(act[unmapped_rows], case[unmapped_rows], n_cases)
    events_per_act = np.bincount(act, minlength=n_act)
    unmapped_activities: list[UnmappedActivity] = []
    for code, count, examples in zip(*_first_per_group(un_act, un_case, max_examples), strict=True):
        name = act_names[int(code)]
        unmapped_activities.append(
            UnmappedActivity(name=name, events=int(events_per_act[code]), cases=int(count))
        )
        departures.append(
            Departure(
                kind=ACTIVITY_NOT_ON_MAP,
                label=f'"{name}" is not on the map',
                cases=int(count),
                example_cases=named(examples),
                activity=name,
            )
        )
    unmapped_activities.sort(key=lambda u: (-u.events, u.name))

    no_visit = np.flatnonzero(visits_per_case == 0)
    if no_visit.shape[0]:
        departures.append(
            Departure(
                kind=NO_MAPPED_EVENT,
                label="No event on the map",
                cases=int(no_visit.shape[0]),
                example_cases=named(no_visit[:max_examples]),
            )
        )
    kind_rank = {kind: i for i, kind in enumerate(DEPARTURE_KINDS)}
    departures.sort(key=lambda d: (-d.cases, kind_rank[d.kind], d.label))
    _report(progress, 0.85)

    # --- Paths ---------------------------------------------------------------------------
    case_duration = ts[case_end] - ts[case_start]
    path_of_case = np.zeros(n_cases, dtype=np.int64)
    path_steps: list[list[int]] = []
    path_first_case: list[int] = []
    if v_case.shape[0]:
        v_case_len = np.diff(np.append(v_case_first, v_case.shape[0]))
        vid, rep = _variant_ids(v_step, v_case_first, v_case_len)
        path_of_case[v_case[v_case_first]] = vid
        for r in rep.tolist():
            a = int(v_case_first[r])
            path_steps.append(step_ids[v_step[a : a + int(v_case_len[r])]].tolist())
            path_first_case.append(int(v_case[a]))
    if no_visit.shape[0]:
        path_of_case[no_visit] = len(path_steps)
        path_steps.append([])
        path_first_case.append(int(no_visit[0]))
    n_paths = len(path_steps)
    _, path_count, path_median = _grouped_medians(path_of_case, case_duration, n_paths, NS)
    top = np.lexsort((np.asarray(path_first_case), -path_count))[:max_paths]
    paths = [
        JourneyPath(
            steps=path_steps[p],
            cases=int(path_count[p]),
            share=float(path_count[p] / n_cases),
            median_duration_s=float(path_median[p]),
        )
        for p in top.tolist()
    ]
    _report(progress, 0.95)

    # --- Example case timelines ------------------------------------------------------------
    case_timelines: dict[str, list[TimelineEvent]] = {}
    for c in sorted(example_codes):
        rows = range(int(case_start[c]), min(int(case_end[c]) + 1, int(case_start[c]) + MAX_TIMELINE_EVENTS))
        case_timelines[case_names[c]] = [
            TimelineEvent(
                activity=act_names[int(act[i])],
                timestamp=_iso(int(ts[i])),
                step_id=int(step_ids[step_of_event[i]]) if step_of_event[i] >= 0 else None,
            )
            for i in rows
        ]

    activity_order = sorted(range(n_act), key=lambda i: (-int(events_per_act[i]), act_names[i]))
    result = JourneyMeasurement(
        cases=n_cases,
        events=n_events,
        period_start=_iso(int(ts.min())),
        period_end=_iso(int(ts.max())),
        conformance=Conformance(following=following, share=following / n_cases),
        steps=step_measures,
        transitions=transitions,
        unmapped_activities=unmapped_activities,
        departures=departures,
        paths=paths,
        case_timelines=case_timelines,
        activity_events={act_names[i]: int(events_per_act[i]) for i in activity_order},
        calendar=calendar.to_dict() if calendar is not None else None,
    )
    _report(progress, 1.0)
    return result


__all__ = [
    "ACTIVITY_NOT_ON_MAP",
    "BACK_TO_EARLIER_STAGE",
    "NO_MAPPED_EVENT",
    "SKIPPED_STEP",
    "Conformance",
    "Departure",
    "JourneyMeasurement",
    "JourneyPath",
    "MapStep",
    "StepMeasure",
    "TimelineEvent",
    "TransitionMeasure",
    "UnmappedActivity",
    "measure_journey",
]
