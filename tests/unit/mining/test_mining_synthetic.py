"""The synthetic ITSM generator: its known answers equal the mined figures (in memory, CSV, XES)."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from worker.mining import MiningInputError, MiningResult, discover, preview, read_log
from worker.mining.synthetic import (
    ACTIVITIES,
    IncidentProcess,
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
    assert truth.n_cases == N_CASES
    assert_matches_n(result, truth)


def assert_matches_n(result: MiningResult, truth: KnownAnswers) -> None:
    s = result.summary
    assert s.n_cases == truth.n_cases
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
    assert sum(truth.end_activities.values()) == truth.n_cases
    assert len(truth.case_durations_s) == truth.n_cases
    assert set(truth.activity_counts) == set(ACTIVITIES)  # every step of the process occurs
    assert truth.start_activities == {"Logged": N_CASES}
    assert synthetic.events.columns[:6] == [
        "Number",
        "Status",
        "sys_updated_on",
        "Assigned to",
        "Channel",
        "Priority",
    ]


def test_process_has_the_itsm_loops(synthetic: SyntheticLog) -> None:
    dfg = synthetic.truth.dfg_counts
    for edge in (
        ("Logged", "Classify"),
        ("Logged", "Assign"),  # auto-routed
        ("Assign", "Reassign"),  # a wrong group bounces it ...
        ("Reassign", "Reassign"),  # ... more than once
        ("Reassign", "Work in progress"),
        ("Work in progress", "Reassign"),  # hand-over inside the group
        ("Work in progress", "Awaiting user info"),
        ("Awaiting user info", "Work in progress"),
        ("Work in progress", "Escalate"),
        ("Escalate", "Assign"),
        ("Work in progress", "Resolve"),
        ("Resolve", "Reopen"),
        ("Reopen", "Work in progress"),
        ("Resolve", "Close"),
    ):
        assert dfg.get(edge, 0) > 0, edge
    # Most tickets are closed; recent ones are still open at export time and end mid-process.
    ends = synthetic.truth.end_activities
    assert ends["Close"] > 0.9 * N_CASES
    assert sum(ends.values()) - ends["Close"] > 0
    assert len(ends) >= 3


def test_rates_follow_the_known_parameters() -> None:
    log = generate_incident_log(6000, seed=5)
    p = log.process
    frame = log.events
    cases = frame.group_by("Number").agg(
        classified=(pl.col("Status") == "Classify").any(),
        reopened=(pl.col("Status") == "Reopen").any(),
        # The step right after the first Assign is a Reassign: the first group was the wrong one.
        misrouted=pl.col("Status").shift(-1).filter(pl.col("Status") == "Assign").first() == "Reassign",
        priority=pl.col("Priority").first(),
        channel=pl.col("Channel").first(),
    )
    n = cases.height
    assert cases["classified"].mean() == pytest.approx(p.p_classify, abs=0.03)
    assert cases["reopened"].mean() == pytest.approx(p.p_reopen, abs=0.02)
    assert cases["misrouted"].mean() == pytest.approx(p.p_misroute, abs=0.03)
    shares = cases["priority"].value_counts().sort("priority")["count"].to_numpy() / n
    assert shares == pytest.approx(np.array(p.priority_weights), abs=0.03)
    channel_share = dict(cases["channel"].value_counts().iter_rows())
    for name, weight in zip(p.channels, p.channel_weights, strict=True):
        assert channel_share[name] / n == pytest.approx(weight, abs=0.03)


def _local(frame: pl.DataFrame, timezone: str) -> pl.DataFrame:
    local = pl.col("sys_updated_on").dt.convert_time_zone(timezone)
    return frame.with_columns(hour=local.dt.hour(), weekday=local.dt.weekday())


OFF_HOURS = (pl.col("hour") < 8) | (pl.col("hour") >= 18) | (pl.col("weekday") > 5)
WORK = ["Classify", "Assign", "Reassign", "Work in progress", "Awaiting user info", "Escalate", "Resolve"]


@pytest.mark.parametrize("timezone", ["UTC", "Europe/Amsterdam", "America/New_York"])
def test_work_happens_in_office_hours_of_the_logs_time_zone(timezone: str) -> None:
    log = generate_incident_log(1500, seed=9, timezone=timezone)
    frame = _local(log.events, timezone)
    work = frame.filter(pl.col("Status").is_in(WORK))
    assert work.height > 5000
    assert work.filter(OFF_HOURS).height == 0
    # Caller-side steps run on calendar time: nights and weekends included.
    night = frame.filter(pl.col("Status").is_in(["Reopen", "Close"]) & OFF_HOURS)
    assert night.height > 0.3 * frame.filter(pl.col("Status").is_in(["Reopen", "Close"])).height
    # Phone and chat tickets are logged in office hours; portal and e-mail also at night.
    logged = frame.filter(pl.col("Status") == "Logged")
    assert logged.filter(pl.col("Channel").is_in(["Phone", "Chat"]) & OFF_HOURS).height == 0
    assert logged.filter(pl.col("Channel").is_in(["Email", "Self-service portal"]) & OFF_HOURS).height > 0


def test_times_strictly_increase_within_a_case_even_across_dst() -> None:
    log = generate_incident_log(3000, seed=2, timezone="Europe/Amsterdam")
    gaps = (
        log.events.sort("Number", "sys_updated_on", maintain_order=True)
        .select(pl.col("sys_updated_on").diff().over("Number").dt.total_seconds().alias("gap"))
        .drop_nulls()
    )
    assert gaps["gap"].min() >= 1


def test_waits_have_long_tails_and_priority_matters(synthetic: SyntheticLog) -> None:
    durations = np.sort(np.asarray(synthetic.truth.case_durations_s))
    median, p99, top = np.median(durations), np.quantile(durations, 0.99), durations[-1]
    assert p99 > 3 * median and top > 8 * median  # a few tickets take months
    result = discover(synthetic.to_table())
    edge = result.edge("Awaiting user info", "Work in progress")
    assert edge is not None and edge.max_s > 20 * edge.median_s
    # Critical incidents are resolved much faster than low-priority ones.
    first_resolve = (
        synthetic.events.sort("sys_updated_on")
        .group_by("Number")
        .agg(
            priority=pl.col("Priority").first(),
            hours=(
                pl.col("sys_updated_on").filter(pl.col("Status") == "Resolve").first()
                - pl.col("sys_updated_on").first()
            ).dt.total_seconds()
            / 3600,
        )
        .drop_nulls()
        .group_by("priority")
        .agg(pl.col("hours").median())
    )
    by_priority = dict(first_resolve.iter_rows())
    assert by_priority[1] < 0.5 * by_priority[4]


def test_resources_follow_the_roles(synthetic: SyntheticLog) -> None:
    f = synthetic.events
    who = dict(
        f.group_by("Status")
        .agg(pl.col("Assigned to").unique().alias("r"))
        .select("Status", pl.col("r").list.sort())
        .iter_rows()
    )
    assert set(who["Reopen"]) == {"Caller"}
    assert set(who["Close"]) == {"Caller", "System"}
    assert all(r.startswith("SD Agent") for r in who["Classify"])
    assert all(r.startswith("SD Agent") or r == "System" for r in who["Logged"])
    assert any(r.startswith("L2 Engineer") for r in who["Work in progress"])
    assert not any(r.startswith("SD Agent") for r in who["Resolve"])


def test_custom_process_parameters() -> None:
    calm = IncidentProcess(p_reopen=0.0, p_escalate=(0.0, 0.0, 0.0, 0.0), p_misroute=0.0, p_handover=0.0)
    log = generate_incident_log(500, seed=1, process=calm)
    assert {"Reopen", "Escalate", "Reassign"}.isdisjoint(log.truth.activity_counts)
    assert_matches_n(discover(log.to_table()), log.truth)


def test_a_million_events_are_generated_fast() -> None:
    started = time.perf_counter()
    log = generate_incident_log(135_000, seed=2024)
    elapsed = time.perf_counter() - started
    assert log.truth.n_events > 1_000_000
    assert elapsed < 15, elapsed


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


def test_generator_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_incident_log(0)
    with pytest.raises(ValueError):
        generate_incident_log(10, span_days=0)
    with pytest.raises(MiningInputError, match="Unknown time zone"):
        generate_incident_log(10, timezone="Mars/Olympus")


def test_non_utc_log_round_trips_through_csv_with_offsets(tmp_path: Path) -> None:
    log = generate_incident_log(800, seed=13, timezone="Europe/Amsterdam")
    path = write_csv(log, tmp_path / "amsterdam.csv")
    first_row = path.read_text(encoding="utf-8").splitlines()[1]
    assert "+01:00" in first_row or "+02:00" in first_row
    result = discover(read_log(path))
    assert_matches_n(result, log.truth)
