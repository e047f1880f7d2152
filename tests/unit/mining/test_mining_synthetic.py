"""The synthetic ITSM generator: its known answers equal the mined figures (in memory, CSV, XES)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from worker.mining import MiningResult, discover, preview, read_log
from worker.mining.synthetic import (
    ACTIVITIES,
    KnownAnswers,
    SyntheticLog,
    generate_incident_log,
    write_csv,
    write_xes,
)

N_CASES = 2000


@pytest.fixture(scope="module")
def synthetic() -> SyntheticLog:
    return generate_incident_log(N_CASES, seed=7)


def assert_matches(result: MiningResult, truth: KnownAnswers) -> None:
    s = result.summary
    assert s.n_cases == truth.n_cases == N_CASES
    assert s.n_events == truth.n_events
    assert s.n_activities == truth.n_activities
    assert s.n_variants == truth.n_variants
    assert {a.activity: a.events for a in result.activities} == truth.activity_counts
    assert result.start_activities == truth.start_activities
    assert result.end_activities == truth.end_activities
    assert {(e.source, e.target): e.count for e in result.dfg} == truth.dfg_counts
    assert len(result.variants) == min(truth.n_variants, 1000)
    for v in result.variants:
        assert truth.variant_counts[tuple(v.activities)] == v.count
    durations = truth.case_durations_s
    assert s.case_duration_median_s == pytest.approx(statistics.median(durations), abs=1)
    assert s.case_duration_mean_s == pytest.approx(statistics.fmean(durations), abs=1)
    assert s.case_duration_min_s == pytest.approx(min(durations), abs=1)
    assert s.case_duration_max_s == pytest.approx(max(durations), abs=1)


def test_known_answers_are_self_consistent(synthetic: SyntheticLog) -> None:
    truth = synthetic.truth
    assert synthetic.events.height == truth.n_events
    assert sum(truth.variant_counts.values()) == truth.n_cases
    assert sum(truth.activity_counts.values()) == truth.n_events
    assert sum(truth.dfg_counts.values()) == truth.n_events - truth.n_cases
    assert set(truth.activity_counts) <= set(ACTIVITIES)
    assert truth.start_activities == {"Logged": N_CASES}
    # The process really branches: escalations, reopenings and open tickets all occur.
    for activity in ("Escalate", "Reopen", "Awaiting user info", "Triage"):
        assert truth.activity_counts[activity] > 0
    assert set(truth.end_activities) == {"Close", "Resolve"}


def test_in_memory_table_matches_known_answers(synthetic: SyntheticLog) -> None:
    assert_matches(discover(synthetic.to_table()), synthetic.truth)


def test_csv_round_trip_matches_known_answers(synthetic: SyntheticLog, tmp_path: Path) -> None:
    path = write_csv(synthetic, tmp_path / "incidents.csv")
    # The mapping is guessed from ServiceNow-style column names.
    proposal = preview(path).proposal
    assert proposal is not None
    assert (proposal.case, proposal.activity, proposal.timestamp, proposal.resource) == (
        "Number",
        "Status",
        "sys_updated_on",
        "Assigned to",
    )
    assert_matches(discover(read_log(path)), synthetic.truth)


def test_gzipped_csv_and_xes_round_trips(synthetic: SyntheticLog, tmp_path: Path) -> None:
    assert_matches(discover(read_log(write_csv(synthetic, tmp_path / "incidents.csv.gz"))), synthetic.truth)
    assert_matches(discover(read_log(write_xes(synthetic, tmp_path / "incidents.xes.gz"))), synthetic.truth)


def test_xes_round_trip_keeps_resources(synthetic: SyntheticLog, tmp_path: Path) -> None:
    table = read_log(write_xes(synthetic, tmp_path / "incidents.xes"))
    assert table.has_resource
    result = discover(table)
    assert_matches(result, synthetic.truth)
    assert result.summary.n_resources == synthetic.events["Assigned to"].n_unique()


def test_generator_is_seeded() -> None:
    a = generate_incident_log(50, seed=3)
    b = generate_incident_log(50, seed=3)
    c = generate_incident_log(50, seed=4)
    assert a.events.equals(b.events)
    assert a.truth == b.truth
    assert not a.events.equals(c.events)


def test_generator_rejects_zero_cases() -> None:
    with pytest.raises(ValueError):
        generate_incident_log(0)
