"""Case filters (period, attribute values, variant) select whole cases; attribute options describe the log."""

from __future__ import annotations

import pytest

from worker.mining import ColumnMapping, Filters, MiningInputError, mine
from worker.mining.synthetic import generate_incident_log, write_csv

MAPPING = ColumnMapping("Number", "Status", "sys_updated_on")


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    log = generate_incident_log(600, seed=17)
    path = write_csv(log, tmp_path_factory.mktemp("filters") / "incidents.csv")
    return log, path


def _first_priority_per_case(events) -> dict[str, str]:
    import polars as pl

    return dict(events.group_by("Number").agg(pl.col("Priority").first().cast(pl.String)).iter_rows())


def test_attribute_options_count_cases_per_value(log_file):
    log, path = log_file
    result = mine(path, MAPPING)
    assert "Priority" in result.attributes and "Channel" in result.attributes
    expected: dict[str, int] = {}
    for priority in _first_priority_per_case(log.events).values():
        expected[priority] = expected.get(priority, 0) + 1
    assert result.attributes["Priority"] == expected
    assert list(result.attributes["Priority"].values()) == sorted(expected.values(), reverse=True)


def test_attribute_filter_keeps_whole_cases_with_the_value(log_file):
    log, path = log_file
    import polars as pl

    wanted = {
        case for case, priority in _first_priority_per_case(log.events).items() if priority in ("1", "2")
    }
    result = mine(path, MAPPING, filters=Filters(attributes={"Priority": ["1", "2"]}))
    assert result.summary.n_cases == len(wanted)
    expected_events = log.events.filter(pl.col("Number").is_in(list(wanted))).height
    assert result.summary.n_events == expected_events
    assert (
        result.attributes["Priority"] == mine(path, MAPPING).attributes["Priority"]
    )  # options of the whole log


def test_variant_filter_keeps_exactly_that_variant(log_file):
    log, path = log_file
    whole = mine(path, MAPPING)
    second = whole.variants[1]
    result = mine(path, MAPPING, filters=Filters(variant=second.activities))
    assert result.summary.n_cases == second.count
    assert result.summary.n_variants == 1 and result.variants[0].activities == second.activities


def test_period_filter_keeps_cases_started_in_it(log_file):
    log, path = log_file
    import polars as pl

    starts = log.events.group_by("Number").agg(pl.col("sys_updated_on").min())
    in_q1 = starts.filter(pl.col("sys_updated_on").dt.strftime("%Y-%m-%d") <= "2024-03-31").height
    result = mine(path, MAPPING, filters=Filters(end="2024-03-31"))
    assert result.summary.n_cases == in_q1
    assert result.summary.first_timestamp.startswith("2024-01")


def test_filters_that_leave_nothing_say_so(log_file):
    _, path = log_file
    with pytest.raises(MiningInputError, match="No case matches"):
        mine(path, MAPPING, filters=Filters(start="2030-01-01"))
    with pytest.raises(MiningInputError, match="no attribute column 'Colour'"):
        mine(path, MAPPING, filters=Filters(attributes={"Colour": ["red"]}))
