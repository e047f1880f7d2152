"""Discovery semantics on small hand-made logs, result shape, progress reporting and purity."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker.mining import EventTable, MiningInputError, discover, mine, table_from_records
from worker.mining.synthetic import generate_incident_log, write_csv

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def log(rows: list[tuple[str, str, float]], resources: list[str | None] | None = None) -> EventTable:
    return table_from_records(
        [r[0] for r in rows], [r[1] for r in rows], [at(r[2]) for r in rows], resources=resources
    )


def test_unsorted_input_is_ordered_per_case_with_file_order_breaking_ties() -> None:
    table = log(
        [
            ("c2", "B", 5),
            ("c1", "C", 10),
            ("c1", "A", 0),
            ("c1", "B", 10),  # same time as C: file order (C before B) decides
            ("c2", "A", 5),  # same time as B in c2: B stays first
        ]
    )
    result = discover(table)
    variants = {tuple(v.activities): v.count for v in result.variants}
    assert variants == {("A", "C", "B"): 1, ("B", "A"): 1}
    assert result.start_activities == {"A": 1, "B": 1}
    assert result.end_activities == {"A": 1, "B": 1}
    assert {(e.source, e.target): e.count for e in result.dfg} == {
        ("A", "C"): 1,
        ("C", "B"): 1,
        ("B", "A"): 1,
    }
    assert result.summary.case_duration_max_s == 600.0


def test_edge_statistics_use_pandas_median_and_linear_quantiles() -> None:
    waits = [1, 2, 3, 10]  # minutes; even count: median averages the middle two
    rows: list[tuple[str, str, float]] = []
    for i, w in enumerate(waits):
        rows += [(f"c{i}", "A", 0), (f"c{i}", "B", w)]
    edge = discover(log(rows)).edge("A", "B")
    assert edge is not None
    assert edge.count == 4
    assert edge.median_s == 150.0
    assert edge.mean_s == 240.0
    assert edge.min_s == 60.0 and edge.max_s == 600.0
    assert edge.p90_s == pytest.approx(60 * (3 + 0.7 * 7))  # numpy/pandas 'linear'


def test_variant_ranking_share_and_duration() -> None:
    rows = [("a", "X", 0), ("a", "Y", 10), ("b", "X", 0), ("b", "Y", 30), ("c", "Y", 0), ("c", "X", 5)]
    result = discover(log(rows))
    first = result.variants[0]
    assert (first.rank, first.activities, first.count) == (1, ["X", "Y"], 2)
    assert first.share == pytest.approx(2 / 3)
    assert first.median_duration_s == 1200.0
    assert result.variants[1].activities == ["Y", "X"]
    assert discover(log(rows), max_variants=1).variants == [first]


def test_rework_and_resources() -> None:
    rows = [
        ("a", "Work", 0),
        ("a", "Review", 1),
        ("a", "Work", 2),
        ("a", "Work", 3),
        ("b", "Work", 0),
        ("b", "Review", 1),
    ]
    result = discover(log(rows, resources=["ann", "bob", "ann", "cy", None, "bob"]))
    stats = {a.activity: a for a in result.activities}
    assert (
        stats["Work"].events,
        stats["Work"].cases,
        stats["Work"].rework_cases,
        stats["Work"].rework_events,
    ) == (4, 2, 1, 2)
    assert stats["Work"].rework_share == 0.5
    assert stats["Review"].rework_cases == 0
    assert (stats["Work"].resources, stats["Review"].resources) == (2, 1)
    assert result.summary.cases_with_rework == 1 and result.summary.rework_share == 0.5
    assert result.summary.n_resources == 3
    assert stats["Work"].duration_mean_s is None  # no start timestamps


def test_start_timestamps_order_and_waits() -> None:
    table = table_from_records(
        ["c", "c", "c"],
        ["long", "short", "last"],
        [at(100), at(30), at(120)],  # completion times
        starts=[at(0), at(20), at(110)],  # 'long' started first, so it comes first
    )
    result = discover(table)
    assert [tuple(v.activities) for v in result.variants] == [("long", "short", "last")]
    edge = result.edge("long", "short")
    assert edge is not None and edge.median_s == (20 - 100) * 60  # start(b) - end(a): overlap is negative
    assert result.summary.case_duration_max_s == (120 - 100) * 60  # end(last) - end(first), as pm4py
    assert {a.activity: a.duration_median_s for a in result.activities} == {
        "long": 6000.0,
        "short": 600.0,
        "last": 600.0,
    }


def test_histogram_and_bottlenecks() -> None:
    result = discover(generate_incident_log(500, seed=2).to_table())
    hist = result.case_duration_histogram
    assert sum(b.count for b in hist.bins) == 500
    assert hist.unit in {"hours", "days", "weeks"}
    for a, b in zip(hist.bins, hist.bins[1:], strict=False):
        assert a.upper_s == b.lower_s
    assert all(b.upper_s is not None for b in hist.bins[:-1])
    impacts = [b.impact_s for b in result.bottlenecks]
    assert impacts == sorted(impacts, reverse=True) and len(impacts) <= 20
    top = result.bottlenecks[0]
    edge = result.edge(top.source, top.target)
    assert edge is not None and top.impact_s == pytest.approx(edge.median_s * edge.count)
    assert 0 < top.impact_share <= 1


def test_single_event_log() -> None:
    result = discover(log([("only", "A", 0)]))
    assert result.summary.n_cases == 1 and result.dfg == [] and result.bottlenecks == []
    assert result.summary.case_duration_median_s == 0.0
    assert [b.count for b in result.case_duration_histogram.bins] == [1]


def test_empty_table_is_an_input_error() -> None:
    table = table_from_records([], [], [])
    with pytest.raises(MiningInputError, match="no events"):
        discover(table)


def test_result_is_json_serialisable_with_builtin_types_only() -> None:
    result = discover(generate_incident_log(200, seed=5).to_table())
    payload = result.to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text) == payload

    def walk(value: object) -> None:
        assert type(value) in (dict, list, str, int, float, bool, type(None)), type(value)
        if isinstance(value, float):
            assert math.isfinite(value)
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        if isinstance(value, list):
            for v in value:
                walk(v)

    walk(payload)
    assert set(payload) >= {
        "summary",
        "activities",
        "dfg",
        "variants",
        "case_duration_histogram",
        "bottlenecks",
    }


def test_progress_phases(tmp_path: Path) -> None:
    path = write_csv(generate_incident_log(300, seed=1), tmp_path / "log.csv")
    calls: list[tuple[str, float]] = []
    mine(path, progress=lambda phase, fraction: calls.append((phase, fraction)))
    phases = [p for p, _ in calls]
    assert [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p] == [
        "reading",
        "sorting",
        "discovering",
    ]
    for phase in ("reading", "sorting", "discovering"):
        fractions = [f for p, f in calls if p == phase]
        assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
        assert all(0.0 <= f <= 1.0 for f in fractions)


def test_library_imports_no_web_stack() -> None:
    code = (
        "import sys, worker.mining, worker.mining.synthetic;"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'sqlalchemy', 'webapp', 'rq')"
        " or m.startswith('worker.jobs'));"
        "print(','.join(bad))"
    )
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=repo,
        env=env,
    )
    assert out.stdout.strip() == ""
