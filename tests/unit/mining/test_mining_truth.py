"""Our figures equal pm4py 2.7.23.11's ground truth on every shared log (counts exact, times ±1 s)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from worker.mining import ColumnMapping, MiningResult, discover, preview, read_log

TOLERANCE_S = 1.0


def test_shared_folder_has_truth_files(mining_eventlogs: Path) -> None:
    assert sorted(mining_eventlogs.glob("*.truth.json")), "shared eventlogs folder has no *.truth.json"


def test_counts(truth: dict[str, Any], mined: MiningResult) -> None:
    s = mined.summary
    assert (s.n_cases, s.n_events, s.n_activities, s.n_variants) == (
        truth["n_cases"],
        truth["n_events"],
        truth["n_activities"],
        truth["n_variants"],
    )


def test_activity_counts(truth: dict[str, Any], mined: MiningResult) -> None:
    assert {a.activity: a.events for a in mined.activities} == truth["activities"]


def test_start_and_end_activities(truth: dict[str, Any], mined: MiningResult) -> None:
    assert mined.start_activities == truth["start_activities"]
    assert mined.end_activities == truth["end_activities"]


def test_first_and_last_timestamp(truth: dict[str, Any], mined: MiningResult) -> None:
    for ours, theirs in (
        (mined.summary.first_timestamp, truth["first_timestamp"]),
        (mined.summary.last_timestamp, truth["last_timestamp"]),
    ):
        assert ours is not None
        delta = datetime.fromisoformat(ours) - datetime.fromisoformat(theirs)
        assert abs(delta.total_seconds()) < TOLERANCE_S, (ours, theirs)


def test_every_dfg_edge(truth: dict[str, Any], mined: MiningResult) -> None:
    assert len(mined.dfg) == truth["dfg_n_edges"]
    assert sum(e.count for e in mined.dfg) == truth["dfg_total_arcs"]
    ours = {(e.source, e.target): e for e in mined.dfg}
    mismatches = []
    for edge in truth["dfg_edges"]:
        got = ours.get((edge["source"], edge["target"]))
        if got is None:
            mismatches.append(("missing", edge))
            continue
        if got.count != edge["count"]:
            mismatches.append(("count", edge, got.count))
        for stat in ("median", "mean", "min", "max"):
            if abs(getattr(got, f"{stat}_s") - edge[f"{stat}_s"]) > TOLERANCE_S:
                mismatches.append((stat, edge, getattr(got, f"{stat}_s")))
    assert not mismatches, mismatches[:5]


def test_dfg_top10_order(truth: dict[str, Any], mined: MiningResult) -> None:
    # Equal counts may be listed in any order, so compare counts by rank and membership by count.
    ours = [(e.source, e.target, e.count) for e in mined.dfg[:10]]
    theirs = [(e["source"], e["target"], e["count"]) for e in truth["dfg_top10"]]
    assert [c for *_, c in ours] == [c for *_, c in theirs]
    cutoff = theirs[-1][2]
    assert {t for t in theirs if t[2] > cutoff} == {t for t in ours if t[2] > cutoff}


def test_top_variants(truth: dict[str, Any], mined: MiningResult) -> None:
    counts = {tuple(v.activities): v.count for v in mined.variants}
    for variant in truth["top_variants"]:
        assert counts.get(tuple(variant["variant"])) == variant["count"], variant
    top = [v.count for v in mined.variants[: len(truth["top_variants"])]]
    assert top == [v["count"] for v in truth["top_variants"]]
    assert sum(v.count for v in mined.variants) == truth["n_cases"] or len(mined.variants) == 1000


def test_case_durations(truth: dict[str, Any], mined: MiningResult) -> None:
    s = mined.summary
    expected = truth["throughput_time_s"]
    assert s.case_duration_median_s == pytest.approx(expected["median"], abs=TOLERANCE_S)
    assert s.case_duration_mean_s == pytest.approx(expected["mean"], abs=TOLERANCE_S)
    assert s.case_duration_min_s == pytest.approx(expected["min"], abs=TOLERANCE_S)
    assert s.case_duration_max_s == pytest.approx(expected["max"], abs=TOLERANCE_S)


def test_csv_mapping_is_guessed(csv_truth: dict[str, Any], mining_eventlogs: Path) -> None:
    proposal = preview(mining_eventlogs / csv_truth["file"]).proposal
    assert proposal is not None
    sem = csv_truth["semantics"]
    assert (proposal.case, proposal.activity, proposal.timestamp) == (
        sem["case_id"],
        sem["activity"],
        sem["timestamp"],
    )


def test_interval_csv_with_start_column_matches_interval_xes(mining_eventlogs: Path) -> None:
    # pm4py's XES truth uses the start_timestamp attribute (order by start, wait = start(b) - end(a));
    # mapping the CSV's start column must give the very same figures.
    xes_truth = json.loads(
        (mining_eventlogs / "interval_event_log.xes.truth.json").read_text(encoding="utf-8")
    )
    mapping = ColumnMapping(
        case="case:concept:name",
        activity="concept:name",
        timestamp="time:timestamp",
        start_timestamp="start_timestamp",
    )
    result = discover(read_log(mining_eventlogs / "interval_event_log.csv", mapping))
    assert result.summary.n_variants == xes_truth["n_variants"]
    assert result.summary.case_duration_min_s == pytest.approx(xes_truth["throughput_time_s"]["min"], abs=1)
    ours = {(e.source, e.target): e for e in result.dfg}
    for edge in xes_truth["dfg_edges"]:
        got = ours[(edge["source"], edge["target"])]
        assert got.count == edge["count"]
        assert got.median_s == pytest.approx(edge["median_s"], abs=1)
        assert got.mean_s == pytest.approx(edge["mean_s"], abs=1)
