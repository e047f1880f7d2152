"""measure_journey: every definition on hand-made logs, and an independent loop-over-dicts reference
compared on the synthetic generator's log and on the shared real logs."""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from worker.mining import ColumnMapping, EventTable, read_log, table_from_records
from worker.mining.calendar import BusinessCalendar
from worker.mining.overlay import (
    ACTIVITY_NOT_ON_MAP,
    BACK_TO_EARLIER_STAGE,
    NO_MAPPED_EVENT,
    SKIPPED_STEP,
    Departure,
    JourneyMeasurement,
    MapStep,
    measure_journey,
)
from worker.mining.synthetic import generate_incident_log

H = 3_600_000_000_000  # one hour in ns
SHARED_EVENTLOGS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "eventlogs"


def log(*rows: tuple[str, str, float]) -> EventTable:
    """A table from (case, activity, hour) rows, in file order."""
    return table_from_records(
        [r[0] for r in rows], [r[1] for r in rows], [int(round(r[2] * H)) for r in rows]
    )


STEPS = [MapStep(10, "Ask", 0), MapStep(20, "Triage", 1), MapStep(21, "Assign", 1), MapStep(30, "Fix", 2)]
MAPPING = {"ask": 10, "triage": 20, "assign": 21, "fix": 30, "fix again": 30}


def departure(m: JourneyMeasurement, kind: str, **key: Any) -> Any:
    found = [d for d in m.departures if d.kind == kind and all(getattr(d, k) == v for k, v in key.items())]
    assert len(found) <= 1
    return found[0] if found else None


# --- definitions on hand-made logs ---------------------------------------------------------------


def test_unmapped_event_does_not_split_a_visit() -> None:
    m = measure_journey(log(("c", "ask", 0), ("c", "chat", 1), ("c", "ask", 3)), MAPPING, STEPS)
    ask = m.step(10)
    assert (ask.visits, ask.cases_reached, ask.rework_cases) == (1, 1, 0)
    assert ask.median_visit_s == 3 * 3600
    assert ask.median_wait_before_s is None  # the visit starts the case
    assert m.transitions == []


def test_event_of_another_step_splits_a_visit() -> None:
    m = measure_journey(log(("c", "ask", 0), ("c", "triage", 1), ("c", "ask", 3)), MAPPING, STEPS)
    ask = m.step(10)
    assert (ask.visits, ask.cases_reached, ask.rework_cases) == (2, 1, 1)
    assert ask.median_visit_s == 0.0
    assert ask.median_wait_before_s == 2 * 3600  # only the second visit has an earlier event
    assert [(t.from_step, t.to_step, t.frequency, t.median_s) for t in m.transitions] == [
        (10, 20, 1, 3600.0),
        (20, 10, 1, 7200.0),
    ]


def test_activities_of_one_step_merge_into_one_visit() -> None:
    m = measure_journey(log(("c", "fix", 0), ("c", "fix again", 2), ("c", "fix", 5)), MAPPING, STEPS)
    fix = m.step(30)
    assert (fix.visits, fix.rework_cases, fix.median_visit_s) == (1, 0, 5 * 3600)
    assert m.paths[0].steps == [30]


def test_wait_before_counts_the_unmapped_event_just_before() -> None:
    m = measure_journey(log(("c", "ask", 0), ("c", "chat", 4), ("c", "triage", 5)), MAPPING, STEPS)
    assert m.step(20).median_wait_before_s == 3600.0  # triage - chat, not triage - ask
    assert m.transition(10, 20).median_s == 5 * 3600.0  # hops measure from the previous visit


def test_equal_timestamps_keep_file_order() -> None:
    # File order (not activity name) breaks the tie; events of another case interleave.
    m = measure_journey(
        log(("a", "triage", 1), ("b", "ask", 0), ("a", "ask", 1), ("b", "triage", 1), ("a", "fix", 0)),
        MAPPING,
        STEPS,
    )
    assert [p.steps for p in m.paths] == [[30, 20, 10], [10, 20]]
    assert [e.activity for e in m.case_timelines["a"]] == ["fix", "triage", "ask"]  # "a" goes back


def test_back_to_earlier_stage_and_conformance_over_all_cases() -> None:
    m = measure_journey(
        log(
            ("ok", "ask", 0), ("ok", "triage", 1), ("ok", "fix", 2),
            ("back", "ask", 0), ("back", "fix", 1), ("back", "triage", 2), ("back", "fix", 3),
            ("none", "chat", 0),
            ("back2", "fix", 0), ("back2", "triage", 1),
        ),
        MAPPING,
        STEPS,
    )  # fmt: skip
    assert m.cases == 4
    assert (m.conformance.following, m.conformance.share) == (1, 0.25)  # "none" counts in the base
    back = departure(m, BACK_TO_EARLIER_STAGE, from_step=30, to_step=20)
    assert (back.cases, back.example_cases) == (2, ["back", "back2"])
    assert back.label == 'Back from "Fix" to "Triage"'
    assert departure(m, BACK_TO_EARLIER_STAGE, from_step=20, to_step=30) is None


def test_steps_of_one_stage_in_any_order_follow_the_map() -> None:
    m = measure_journey(
        log(("c", "ask", 0), ("c", "assign", 1), ("c", "triage", 2), ("c", "assign", 3), ("c", "fix", 4)),
        MAPPING,
        STEPS,
    )
    assert m.conformance.following == 1
    assert not [d for d in m.departures if d.kind == BACK_TO_EARLIER_STAGE]
    assert m.step(21).rework_cases == 1


def test_skipped_step_counts_cases_reaching_a_later_stage_only() -> None:
    m = measure_journey(
        log(
            ("skips-triage", "ask", 0), ("skips-triage", "assign", 1), ("skips-triage", "fix", 2),
            ("stops-early", "ask", 0),  # never reaches a later stage: skipped nothing
            ("starts-late", "fix", 0),  # skipped ask, triage and assign
            ("unmapped", "chat", 0),  # no visit: not counted as skipping
        ),
        MAPPING,
        STEPS,
    )  # fmt: skip
    assert departure(m, SKIPPED_STEP, step_id=20).cases == 2
    assert departure(m, SKIPPED_STEP, step_id=20).example_cases == ["skips-triage", "starts-late"]
    assert departure(m, SKIPPED_STEP, step_id=10).example_cases == ["starts-late"]
    assert departure(m, SKIPPED_STEP, step_id=21).cases == 1
    assert departure(m, SKIPPED_STEP, step_id=30) is None  # nothing is later than the last stage
    assert m.conformance.following == 3


def test_unmapped_activities_and_cases_without_visits() -> None:
    m = measure_journey(
        log(
            ("z", "chat", 0), ("z", "call", 1),
            ("a", "ask", 0), ("a", "chat", 1), ("a", "chat", 2),
            ("m", "call", 0),
        ),
        MAPPING,
        STEPS,
    )  # fmt: skip
    assert [(u.name, u.events, u.cases) for u in m.unmapped_activities] == [("chat", 3, 2), ("call", 2, 2)]
    chat = departure(m, ACTIVITY_NOT_ON_MAP, activity="chat")
    assert (chat.cases, chat.example_cases, chat.label) == (2, ["z", "a"], '"chat" is not on the map')
    nothing = departure(m, NO_MAPPED_EVENT)
    assert (nothing.cases, nothing.example_cases) == (2, ["z", "m"])  # case order of first appearance
    assert m.activity_events == {"chat": 3, "call": 2, "ask": 1}
    assert m.conformance.following == 1


def test_steps_never_reached_and_mapping_to_unknown_steps() -> None:
    m = measure_journey(log(("c", "ask", 0), ("c", "gone", 1)), {**MAPPING, "gone": 999}, STEPS)
    assert [s.step_id for s in m.steps] == [10, 20, 21, 30]  # in the order given
    fix = m.step(30)
    assert (fix.cases_reached, fix.visits, fix.rework_cases) == (0, 0, 0)
    assert (fix.median_visit_s, fix.median_wait_before_s) == (None, None)
    assert [u.name for u in m.unmapped_activities] == ["gone"]  # its step is not on the map


def test_medians_average_the_two_middle_values() -> None:
    m = measure_journey(
        log(("a", "ask", 0), ("a", "ask", 1), ("b", "ask", 0), ("b", "ask", 4)), MAPPING, STEPS
    )
    assert m.step(10).median_visit_s == 2.5 * 3600


def test_transitions_sorted_by_frequency() -> None:
    m = measure_journey(
        log(
            ("a", "ask", 0), ("a", "fix", 1),
            ("b", "ask", 0), ("b", "triage", 1),
            ("c", "ask", 0), ("c", "triage", 3),
        ),
        MAPPING,
        STEPS,
    )  # fmt: skip
    assert [(t.from_step, t.to_step, t.frequency, t.median_s) for t in m.transitions] == [
        (10, 20, 2, 2 * 3600.0),
        (10, 30, 1, 3600.0),
    ]


def test_paths_shares_durations_and_ties_by_first_appearance() -> None:
    m = measure_journey(
        log(
            ("n", "chat", 0), ("n", "chat", 5),
            ("a", "ask", 0), ("a", "chat", 1), ("a", "fix", 2), ("a", "chat", 10),
            ("b", "triage", 0), ("b", "fix", 1),
            ("c", "ask", 0), ("c", "fix", 4),
            ("d", "triage", 0), ("d", "fix", 3),
        ),
        MAPPING,
        STEPS,
        max_paths=2,
    )  # fmt: skip
    assert [(p.steps, p.cases, p.share, p.median_duration_s) for p in m.paths] == [
        ([10, 30], 2, 0.4, 7 * 3600.0),  # case duration: first to last event of the whole case
        ([20, 30], 2, 0.4, 2 * 3600.0),
    ]
    everything = measure_journey(
        log(("n", "chat", 0), ("n", "chat", 5), ("a", "ask", 0), ("b", "fix", 0)), MAPPING, STEPS
    )
    assert [(p.steps, p.cases) for p in everything.paths] == [([], 1), ([10], 1), ([30], 1)]


def test_examples_are_capped_and_timelines_cover_them() -> None:
    rows = [(f"case{i:02d}", "fix", 0) for i in range(9)] + [(f"case{i:02d}", "ask", 1) for i in range(9)]
    rows += [("long", "fix", 0)] + [("long", "ask", 1 + i / 100) for i in range(300)]
    m = measure_journey(log(*rows), MAPPING, STEPS, max_examples=3)
    back = departure(m, BACK_TO_EARLIER_STAGE, from_step=30, to_step=10)
    assert back.cases == 10
    assert back.example_cases == ["case00", "case01", "case02"]
    examples = {c for d in m.departures for c in d.example_cases}
    assert set(m.case_timelines) == examples
    line = m.case_timelines["case01"]
    assert [(e.activity, e.timestamp, e.step_id) for e in line] == [
        ("fix", "1970-01-01T00:00:00+00:00", 30),
        ("ask", "1970-01-01T01:00:00+00:00", 10),
    ]
    m_long = measure_journey(log(*rows[-301:]), MAPPING, STEPS)
    assert len(m_long.case_timelines["long"]) == 200


def test_business_time_with_a_calendar() -> None:
    cal = BusinessCalendar()  # Mon-Fri 09-17 UTC; 1970-01-02 was a Friday
    friday_16 = 24 + 16
    monday_10 = 24 * 4 + 10
    m = measure_journey(
        log(("c", "ask", friday_16), ("c", "triage", monday_10), ("c", "triage", monday_10 + 2)),
        MAPPING,
        STEPS,
        calendar=cal,
    )
    triage = m.step(20)
    assert triage.median_wait_before_s == 66 * 3600.0
    assert triage.median_wait_before_business_s == 2 * 3600.0
    assert triage.median_visit_business_s == 2 * 3600.0
    assert m.step(30).median_visit_business_s is None
    assert m.transition(10, 20).median_business_s == 2 * 3600.0
    data = m.to_dict()
    assert data["calendar"] == cal.to_dict()
    assert data["steps"][1]["median_wait_before_business_s"] == 7200.0
    assert JourneyMeasurement.from_dict(json.loads(json.dumps(data))) == m


def test_to_dict_is_json_and_round_trips() -> None:
    m = measure_journey(
        log(("a", "ask", 0), ("a", "chat", 1), ("a", "fix", 2), ("a", "triage", 3), ("b", "x", 0)),
        MAPPING,
        STEPS,
    )
    data = json.loads(json.dumps(m.to_dict()))
    assert set(data) == {
        "cases", "events", "period_start", "period_end", "conformance", "steps", "transitions",
        "unmapped_activities", "departures", "paths", "case_timelines", "activity_events", "calendar",
    }  # fmt: skip
    assert data["period_start"] == "1970-01-01T00:00:00+00:00"
    assert data["period_end"] == "1970-01-01T03:00:00+00:00"
    assert "median_visit_business_s" not in data["steps"][0]
    assert "median_business_s" not in data["transitions"][0]
    assert set(data["departures"][0]) == {
        "kind", "label", "cases", "example_cases", "from_step", "to_step", "step_id", "activity",
    }  # fmt: skip
    assert data["case_timelines"]["a"][1] == {
        "activity": "chat",
        "timestamp": "1970-01-01T01:00:00+00:00",
        "step_id": None,
    }
    assert JourneyMeasurement.from_dict(data) == m


def test_progress_and_empty_log_and_bad_steps() -> None:
    calls: list[tuple[str, float]] = []
    measure_journey(log(("a", "ask", 0)), MAPPING, STEPS, progress=lambda p, f: calls.append((p, f)))
    assert {p for p, _ in calls} == {"measuring"}
    assert calls[0][1] == 0.0 and calls[-1][1] == 1.0 and len(calls) >= 4
    empty = measure_journey(table_from_records([], [], []), MAPPING, STEPS)
    assert (empty.cases, empty.events, empty.period_start, empty.conformance.share) == (0, 0, None, 0.0)
    assert [s.visits for s in empty.steps] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="twice"):
        measure_journey(log(("a", "ask", 0)), MAPPING, [MapStep(1, "x", 0), MapStep(1, "y", 1)])
    no_steps = measure_journey(log(("a", "ask", 0)), {}, [])
    assert no_steps.steps == [] and no_steps.departures[0].kind == ACTIVITY_NOT_ON_MAP


# --- an independent reference ---------------------------------------------------------------------


def reference_business_s(cal: BusinessCalendar, start_ns: int, end_ns: int) -> float:
    """Working seconds by intersecting [start, end) with each local day's window (a day loop)."""
    if end_ns <= start_ns:
        return 0.0
    zone = ZoneInfo(cal.timezone)
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=start_ns // 1000)
    end = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=end_ns // 1000)
    day = start.astimezone(zone).date() - timedelta(days=1)
    total = timedelta(0)
    while day <= end.astimezone(zone).date():
        if day.weekday() in cal.working_days and day not in cal.holidays:
            opens = datetime.combine(day, cal.day_start, tzinfo=zone)
            closes = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if cal.day_end == time(0)
                else datetime.combine(day, cal.day_end, tzinfo=zone)
            )
            lo, hi = max(start, opens.astimezone(UTC)), min(end, closes.astimezone(UTC))
            if hi > lo:
                total += hi - lo
        day += timedelta(days=1)
    return total / timedelta(seconds=1)


def median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def reference_measure(
    table: EventTable,
    activity_to_step: Mapping[str, int],
    steps: Sequence[MapStep],
    calendar: BusinessCalendar | None = None,
    max_examples: int = 5,
) -> dict[str, Any]:
    """The issue's definitions, written the straightforward way: dicts, lists and loops per case."""
    frame = table.frame
    cases = frame["case"].to_list()
    acts = frame["activity"].to_list()
    times = frame["timestamp"].cast(int).to_list()  # epoch ns
    events: dict[str, list[tuple[int, str]]] = {}
    for c, a, t in zip(cases, acts, times, strict=True):
        events.setdefault(c, []).append((t, a))
    for trace in events.values():
        trace.sort(key=lambda e: e[0])  # stable: file order breaks ties
    stage = {s.id: s.stage_index for s in steps}
    on_map = {a: s for a, s in activity_to_step.items() if s in stage}
    secs = 1e9

    visit_durations: dict[int, list[float]] = {s.id: [] for s in steps}
    waits: dict[int, list[float]] = {s.id: [] for s in steps}
    visit_business: dict[int, list[float]] = {s.id: [] for s in steps}
    wait_business: dict[int, list[float]] = {s.id: [] for s in steps}
    reached: Counter[int] = Counter()
    rework: Counter[int] = Counter()
    hops: dict[tuple[int, int], list[float]] = {}
    hops_business: dict[tuple[int, int], list[float]] = {}
    back_cases: dict[tuple[int, int], dict[str, None]] = {}  # dicts as ordered sets
    skipped: dict[int, list[str]] = {}
    activity_cases: dict[str, dict[str, None]] = {}
    activity_events: Counter[str] = Counter()
    no_visit: list[str] = []
    following = 0
    path_cases: dict[tuple[int, ...], list[str]] = {}
    duration_of: dict[str, float] = {}
    for case, trace in events.items():
        duration_of[case] = (trace[-1][0] - trace[0][0]) / secs
        visits: list[list[Any]] = []  # [step, first t, last t, index of first event]
        for i, (t, a) in enumerate(trace):
            activity_events[a] += 1
            if a not in on_map:
                activity_cases.setdefault(a, {})[case] = None
                continue
            step = on_map[a]
            if visits and visits[-1][0] == step:
                visits[-1][2] = t
            else:
                visits.append([step, t, t, i])
        per_step = Counter(v[0] for v in visits)
        for step, n in per_step.items():
            reached[step] += 1
            if n >= 2:
                rework[step] += 1
        for step, t0, t1, i in visits:
            visit_durations[step].append((t1 - t0) / secs)
            if calendar:
                visit_business[step].append(reference_business_s(calendar, t0, t1))
            if i > 0:
                waits[step].append((t0 - trace[i - 1][0]) / secs)
                if calendar:
                    wait_business[step].append(reference_business_s(calendar, trace[i - 1][0], t0))
        went_back = False
        for (a, _, a_last, _), (b, b_first, _, _) in zip(visits, visits[1:], strict=False):
            hops.setdefault((a, b), []).append((b_first - a_last) / secs)
            if calendar:
                hops_business.setdefault((a, b), []).append(reference_business_s(calendar, a_last, b_first))
            if stage[b] < stage[a]:
                went_back = True
                back_cases.setdefault((a, b), {})[case] = None
        if visits and not went_back:
            following += 1
        if not visits:
            no_visit.append(case)
        else:
            furthest = max(stage[v[0]] for v in visits)
            for s in steps:
                if s.stage_index < furthest and s.id not in per_step:
                    skipped.setdefault(s.id, []).append(case)
        path_cases.setdefault(tuple(v[0] for v in visits), []).append(case)

    n_cases = len(events)
    departures: dict[tuple[str, Any], list[str]] = {
        (BACK_TO_EARLIER_STAGE, k): list(v) for k, v in back_cases.items()
    }
    departures.update({(SKIPPED_STEP, k): v for k, v in skipped.items()})
    departures.update({(ACTIVITY_NOT_ON_MAP, k): list(v) for k, v in activity_cases.items()})
    if no_visit:
        departures[(NO_MAPPED_EVENT, None)] = no_visit
    paths = sorted(path_cases.items(), key=lambda kv: -len(kv[1]))  # stable: first appearance
    return {
        "cases": n_cases,
        "events": len(cases),
        "following": following,
        "share": following / n_cases,
        "steps": {
            s.id: {
                "cases_reached": reached[s.id],
                "visits": len(visit_durations[s.id]),
                "rework_cases": rework[s.id],
                "median_visit_s": median(visit_durations[s.id]),
                "median_wait_before_s": median(waits[s.id]),
                "median_visit_business_s": median(visit_business[s.id]) if calendar else None,
                "median_wait_before_business_s": median(wait_business[s.id]) if calendar else None,
            }
            for s in steps
        },
        "transitions": {
            k: (len(v), median(v), median(hops_business[k]) if calendar else None) for k, v in hops.items()
        },
        "departures": {k: (len(v), v[:max_examples]) for k, v in departures.items()},
        "unmapped": {a: (activity_events[a], len(c)) for a, c in activity_cases.items()},
        "activity_events": dict(activity_events),
        "paths": [(list(p), len(c), len(c) / n_cases, median([duration_of[x] for x in c])) for p, c in paths],
    }


def assert_matches_reference(m: JourneyMeasurement, ref: dict[str, Any]) -> None:
    approx = pytest.approx  # medians in float seconds: equal to well under a microsecond
    assert (m.cases, m.events) == (ref["cases"], ref["events"])
    assert m.conformance.following == ref["following"]
    assert m.conformance.share == approx(ref["share"])
    for s in m.steps:
        want = ref["steps"][s.step_id]
        got = {k: getattr(s, k) for k in want}
        for key, value in want.items():
            assert got[key] == (value if value is None else approx(value, abs=1e-6)), (s.step_id, key)
    assert {(t.from_step, t.to_step): t.frequency for t in m.transitions} == {
        k: v[0] for k, v in ref["transitions"].items()
    }
    for t in m.transitions:
        frequency, median_s, median_b = ref["transitions"][(t.from_step, t.to_step)]
        assert t.median_s == approx(median_s, abs=1e-6)
        assert t.median_business_s == (None if median_b is None else approx(median_b, abs=1e-6))
    freqs = [t.frequency for t in m.transitions]
    assert freqs == sorted(freqs, reverse=True)

    def key(d: Departure) -> Any:
        return {BACK_TO_EARLIER_STAGE: (d.from_step, d.to_step), SKIPPED_STEP: d.step_id}.get(
            d.kind, d.activity
        )

    got_departures = {(d.kind, key(d)): (d.cases, d.example_cases) for d in m.departures}
    assert got_departures == ref["departures"]
    counts = [d.cases for d in m.departures]
    assert counts == sorted(counts, reverse=True)
    assert {u.name: (u.events, u.cases) for u in m.unmapped_activities} == ref["unmapped"]
    assert m.activity_events == ref["activity_events"]
    got_paths = [(p.steps, p.cases, p.share, p.median_duration_s) for p in m.paths]
    for got, want in zip(got_paths, ref["paths"], strict=True):
        assert got[:2] == want[:2]
        assert got[2] == approx(want[2]) and got[3] == approx(want[3], abs=1e-6)
    examples = {c for d in m.departures for c in d.example_cases}
    assert set(m.case_timelines) == examples


def fake_journey(
    activities: list[str], n_steps: int = 8, n_stages: int = 4
) -> tuple[dict[str, int], list[MapStep]]:
    """A handful of steps over a few stages; activities cycle over them, every fifth left unmapped.

    Step ids are not positions (100, 107, ...) and the steps are given out of stage order, so an
    implementation that confuses ids, positions and stages fails.
    """
    steps = [MapStep(100 + 7 * k, f"Step {k}", (k * n_stages) // n_steps) for k in range(n_steps)]
    steps = steps[1::2] + steps[::2]
    mapping = {}
    for i, activity in enumerate(sorted(activities)):
        if i % 5 != 4:
            mapping[activity] = 100 + 7 * (i % n_steps)
    return mapping, steps


def compare_on(table: EventTable, calendar: BusinessCalendar | None = None) -> JourneyMeasurement:
    activities = table.frame["activity"].unique().to_list()
    mapping, steps = fake_journey(activities)
    m = measure_journey(table, mapping, steps, calendar=calendar, max_paths=10**6)
    assert_matches_reference(m, reference_measure(table, mapping, steps, calendar))
    return m


def test_matches_reference_on_the_synthetic_log() -> None:
    table = generate_incident_log(4_000, seed=11, span_days=120).to_table()
    m = compare_on(table)
    assert 0 < m.conformance.following < m.cases
    assert {d.kind for d in m.departures} >= {BACK_TO_EARLIER_STAGE, SKIPPED_STEP, ACTIVITY_NOT_ON_MAP}


def test_matches_reference_with_a_business_calendar() -> None:
    table = generate_incident_log(400, seed=5, span_days=40, timezone="Europe/Amsterdam").to_table()
    cal = BusinessCalendar(
        timezone="Europe/Amsterdam", holidays=frozenset({date(2024, 1, 1), date(2024, 1, 26)})
    )
    m = compare_on(table, cal)
    assert any(s.median_wait_before_business_s for s in m.steps)


def test_matches_reference_with_ties_and_unsorted_file_order() -> None:
    # Coarse (hour) timestamps make many ties; cases are interleaved and out of time order.
    rng = random.Random(3)
    rows = []
    for _ in range(600):
        case = f"c{rng.randrange(120)}"
        rows.append((case, rng.choice(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]), rng.randrange(12)))
    compare_on(log(*rows))


def _shared_tables() -> list[str]:
    return [
        "running-example.xes",
        "receipt.csv",
        "helpdesk.csv",
        "interval_event_log.csv",
        "reviewing.xes",
        "roadtraffic100traces.xes",
        "bpic2013_closed_problems.xes.gz",
        "bpic2012.xes.gz",
    ]


@pytest.mark.parametrize("name", _shared_tables())
def test_matches_reference_on_shared_logs(name: str) -> None:
    if not SHARED_EVENTLOGS.is_dir():
        pytest.skip(f"../shared event logs missing ({SHARED_EVENTLOGS}): shared data not beside the checkout")
    path = SHARED_EVENTLOGS / name
    mapping = None
    if name.endswith(".csv"):
        semantics = json.loads((SHARED_EVENTLOGS / f"{name}.truth.json").read_text(encoding="utf-8"))[
            "semantics"
        ]
        mapping = ColumnMapping(
            case=semantics["case_id"], activity=semantics["activity"], timestamp=semantics["timestamp"]
        )
    compare_on(read_log(path, mapping))
