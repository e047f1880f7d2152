"""draft_journey: the proposed map is valid export JSON, in the log's order, with blueprint lanes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from webapp.services.journey_format import validate
from worker.mining import EventTable, MiningInputError, build_table, read_log, table_from_records
from worker.mining.drafting import LANES, _stage_count, _stage_cuts, draft_journey
from worker.mining.synthetic import generate_incident_log

H = 3_600_000_000_000
SHARED_EVENTLOGS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "eventlogs"


def steps_of(journey: dict) -> list[dict]:
    return [step for stage in journey["stages"] for step in stage["steps"]]


def names_of(journey: dict) -> list[str]:
    return [step["name"] for step in steps_of(journey)]


def table(rows: list[tuple[str, str, int, str | None]]) -> EventTable:
    return table_from_records(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] * H for r in rows], resources=[r[3] for r in rows]
    )


def test_synthetic_log_draft_is_valid_ordered_and_laned() -> None:
    journey = draft_journey(generate_incident_log(2_000, seed=3).to_table(), title="  Incidents  ")
    assert validate(journey)["title"] == "Incidents"
    assert (journey["kind"], journey["state"], journey["status"], journey["persona"]) == (
        "customer",
        "current",
        "draft",
        None,
    )
    assert [lane["name"] for lane in journey["lanes"]] == list(LANES)
    names = names_of(journey)
    assert sorted(names) == sorted(
        [
            "Logged", "Classify", "Assign", "Reassign", "Work in progress", "Awaiting user info",
            "Escalate", "Resolve", "Reopen", "Close",
        ]
    )  # fmt: skip
    for earlier, later in [
        ("Logged", "Assign"),
        ("Assign", "Work in progress"),
        ("Work in progress", "Resolve"),
    ]:
        assert names.index(earlier) < names.index(later)
    assert names[0] == "Logged" and names[-1] == "Close"
    assert 4 <= len(journey["stages"]) <= 7
    assert all(stage["name"] == stage["steps"][0]["name"] for stage in journey["stages"])
    lane = {step["name"]: step["lane"] for step in steps_of(journey)}
    assert lane["Logged"] == "Actions"  # the start activity
    assert lane["Reopen"] == "Actions"  # done by the "Caller"
    assert lane["Close"] == "Support processes"  # mostly the nightly "System" job
    assert lane["Classify"] == "Frontstage"  # the desk agents who also log calls
    assert lane["Work in progress"] == "Backstage"  # resolver groups
    step = steps_of(journey)[0]
    assert (step["channel"], step["emotion"], step["expected_duration_s"], step["moment_of_truth"]) == (
        "other",
        0,
        None,
        False,
    )
    assert "2,000 cases" in journey["scenario"]


def test_max_steps_keeps_the_most_common_activities_by_cases() -> None:
    rows = []
    for i in range(10):
        rows += [(f"c{i}", "start", 0, None), (f"c{i}", "end", 5, None)]
    rows += [("c0", "rare", 1, None)] * 30  # many events, one case
    rows += [(f"c{i}", "middle", 2, None) for i in range(6)]
    journey = draft_journey(table(rows), title="t", max_steps=3)
    assert names_of(journey) == ["start", "middle", "end"]
    assert "1 less common activity was left out" in journey["scenario"]
    lanes = {step["name"]: step["lane"] for step in steps_of(journey)}
    assert lanes == {"start": "Actions", "middle": "Frontstage", "end": "Frontstage"}  # no resources


def test_order_uses_first_occurrence_so_rework_does_not_drag_a_step_late() -> None:
    rows = []
    for i in range(5):
        case = f"c{i}"
        rows += [(case, "open", 0, None), (case, "work", 1, None), (case, "check", 2, None)]
        rows += [(case, "work", 3 + k, None) for k in range(6)]
        rows += [(case, "close", 20, None)]
    assert names_of(draft_journey(table(rows), title="t")) == ["open", "work", "check", "close"]


def test_lanes_follow_the_resources() -> None:
    rows = []
    for i in range(8):
        case = f"c{i}"
        rows += [
            (case, "call desk", 0, f"agent {i % 2}"),
            (case, "log ticket", 1, f"agent {i % 2}"),
            (case, "repair", 2, f"engineer {i % 3}"),
            (case, "confirm", 3, "Customer"),
            (case, "auto close", 4, "Batch job"),
        ]
    lanes = {s["name"]: s["lane"] for s in steps_of(draft_journey(table(rows), title="t"))}
    assert lanes == {
        "call desk": "Actions",
        "log ticket": "Frontstage",
        "repair": "Backstage",
        "confirm": "Actions",
        "auto close": "Support processes",
    }


def test_assignment_group_attribute_stands_in_for_resources() -> None:
    n = 6
    cases = [f"c{i}" for i in range(n) for _ in range(3)]
    acts = ["open", "route", "fix"] * n
    groups = ["Service Desk", "Service Desk", "Network team"] * n
    tab = build_table(
        {
            "case": pl.Series(cases),
            "activity": pl.Series(acts),
            "timestamp": pl.Series([i % 3 * H for i in range(3 * n)], dtype=pl.Int64)
            .cast(pl.Datetime("ns"))
            .dt.replace_time_zone("UTC"),
            "attr:Assignment group": pl.Series(groups),
        },
        source_format="memory",
    )
    lanes = {s["name"]: s["lane"] for s in steps_of(draft_journey(tab, title="t"))}
    assert lanes == {"open": "Actions", "route": "Frontstage", "fix": "Backstage"}


def test_stage_counts_and_natural_breaks() -> None:
    assert [_stage_count(n) for n in (1, 3, 4, 5, 10, 20, 30, 60)] == [1, 3, 4, 4, 4, 5, 7, 7]
    # Two clear clusters of positions and a third: cut where the positions jump.
    assert _stage_cuts([0, 0.1, 0.2, 5, 5.1, 9, 9.2, 9.3], 3) == [3, 5]
    # No stage more than 1.5 x the average size, even when the positions are all alike.
    cuts = _stage_cuts([1.0] * 12, 4)
    sizes = [b - a for a, b in zip([0, *cuts], [*cuts, 12], strict=True)]
    assert len(sizes) == 4 and max(sizes) <= 5
    assert _stage_cuts([0.0], 1) == []


def test_awkward_names_and_title_are_made_valid() -> None:
    rows = [("c", "   ", 0, None), ("c", "x" * 300, 1, None)]
    journey = draft_journey(table(rows), title="   ")
    cleaned = validate(journey)
    assert cleaned["title"] == "Drafted journey"
    assert sorted(len(n) for n in names_of(cleaned)) == [18, 200]


def test_empty_log_is_refused() -> None:
    with pytest.raises(MiningInputError):
        draft_journey(table_from_records([], [], []), title="t")


@pytest.mark.parametrize("name", ["bpic2012.xes.gz", "helpdesk.xes.gz", "receipt.xes.gz"])
def test_real_logs_give_valid_drafts(name: str) -> None:
    if not SHARED_EVENTLOGS.is_dir():
        pytest.skip(f"../shared event logs missing ({SHARED_EVENTLOGS}): shared data not beside the checkout")
    journey = draft_journey(read_log(SHARED_EVENTLOGS / name), title=name, max_steps=30)
    validate(journey)
    assert 1 <= len(steps_of(journey)) <= 30
    if name == "bpic2012.xes.gz":
        assert names_of(journey)[:3] == ["A_SUBMITTED", "A_PARTLYSUBMITTED", "A_PREACCEPTED"]
