"""The multi-process XES reader gives exactly the single-parser result, or declines and lets it run."""

# ruff: noqa: E501  (the XML fixtures read best one element per line)

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from worker.mining import MiningInputError, discover, read_xes, readers, xes_expat, xes_parallel
from worker.mining.synthetic import generate_incident_log, write_xes

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "eventlogs"


@pytest.fixture
def always_parallel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Use the parallel reader for any size (it normally starts at 16 MiB)."""
    monkeypatch.setattr(xes_parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(xes_parallel, "cpu_count", lambda: 2)


def serial(path: Path) -> xes_expat.XesColumns:
    return readers._parse_xes(path, start_key="start_timestamp", progress=None)


def assert_same(parsed: xes_parallel.ParsedXes | None, path: Path) -> None:
    assert parsed is not None
    expected = serial(path)
    for name in xes_expat.COLUMNS:
        assert parsed.columns[name].to_list() == getattr(expected, name), name
    assert (parsed.unnamed_traces, parsed.orphan_events) == (expected.unnamed_traces, expected.orphan_events)


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_synthetic_log_in_parts_equals_one_parser(tmp_path: Path, parts: int, always_parallel: None) -> None:
    path = write_xes(generate_incident_log(300, seed=4), tmp_path / "log.xes")
    assert_same(xes_parallel.parse(path.read_bytes(), start_key="start_timestamp", parts=parts), path)


ODD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<xes:log xmlns:xes="http://www.xes-standard.org/" xes.version="1.0">
  <xes:global scope="event"><xes:string key="concept:name" value="UNKNOWN"/></xes:global>
  <xes:event><xes:string key="concept:name" value="orphan"/><xes:date key="time:timestamp" value="2020-03-02T10:00:00Z"/></xes:event>
{traces}
</xes:log>
"""
TRACE = """  <xes:trace>
    <xes:event>
      <xes:string value="Logged &amp; seen" key="concept:name"/>
      <xes:date key="time:timestamp" value="2020-03-01T10:00:{s:02d}+01:00"/>
      <xes:list key="tags"><xes:values><xes:string key="concept:name" value="NESTED"/></xes:values></xes:list>
      <xes:string key="org:resource" value="Ann 'A' &lt;1&gt;"/>
    </xes:event>
    <xes:string key="concept:name" value="case {i}"/>
    <xes:event>
      <xes:string key="concept:name" value="Closed"/>
      <xes:date key="time:timestamp" value="2020-03-01T11:30:{s:02d}Z"/>
      <xes:date key="start_timestamp" value="2020-03-01T11:00:{s:02d}Z"/>
      <xes:string key="lifecycle:transition" value="complete"/>
    </xes:event>
  </xes:trace >
"""


def _odd(tmp_path: Path, n: int = 40, extra: str = "") -> Path:
    traces = "".join(TRACE.format(i=i, s=i % 60) for i in range(n))
    path = tmp_path / "odd.xes"
    path.write_text(ODD.format(traces=traces + extra), encoding="utf-8")
    return path


def test_prefixes_nesting_entities_orphans_and_late_case_ids(tmp_path: Path, always_parallel: None) -> None:
    path = _odd(tmp_path)
    parsed = xes_parallel.parse(path.read_bytes(), start_key="start_timestamp")
    assert_same(parsed, path)
    assert parsed is not None and parsed.orphan_events == 1
    assert parsed.columns["activities"][0] == "Logged & seen"


@pytest.mark.parametrize("suffix", [".xes", ".xes.gz"])  # children read the file / a copy
def test_read_xes_uses_it_and_mines_the_same(
    tmp_path: Path, always_parallel: None, suffix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_xes(generate_incident_log(400, seed=8), tmp_path / f"log{suffix}")
    results: list[object] = []
    real = xes_parallel.parse

    def spy(*args: object, **kwargs: object) -> object:
        results.append(real(*args, **kwargs))  # type: ignore[arg-type]
        return results[-1]

    monkeypatch.setattr(xes_parallel, "parse", spy)
    fast = read_xes(path)
    assert len(results) == 1 and results[0] is not None  # the parallel reader did the work
    xes_parallel.PARALLEL_MIN_BYTES = 1 << 60
    slow = read_xes(path)
    assert fast.frame.equals(slow.frame)
    assert discover(fast).to_dict() == discover(slow).to_dict()


def test_unnamed_traces_in_a_later_part_are_left_to_one_parser(tmp_path: Path, always_parallel: None) -> None:
    unnamed = '  <xes:trace><xes:event><xes:string key="concept:name" value="x"/><xes:date key="time:timestamp" value="2020-01-01T00:00:00Z"/></xes:event></xes:trace>\n'
    path = _odd(tmp_path, extra=unnamed)
    assert xes_parallel.parse(path.read_bytes(), start_key="start_timestamp") is None
    table = read_xes(path)
    assert table.frame["case"][-1] == "(unnamed trace 41)"


def test_a_trace_end_inside_a_comment_is_not_a_cut(tmp_path: Path, always_parallel: None) -> None:
    traces = "".join(TRACE.format(i=i, s=i) for i in range(3))
    comment = "  <!-- </xes:trace> inside a comment -->\n" * 50
    path = tmp_path / "comment.xes"
    path.write_text(ODD.format(traces=traces + comment + traces.replace("case ", "later ")), encoding="utf-8")
    parsed = xes_parallel.parse(path.read_bytes(), start_key="start_timestamp")
    if parsed is not None:  # the cut may land on a real trace end; either way the result is exact
        assert_same(parsed, path)
    assert read_xes(path).n_events == 12


def test_doctype_is_left_to_the_refusing_parser(tmp_path: Path, always_parallel: None) -> None:
    path = tmp_path / "doctype.xes"
    path.write_text('<?xml version="1.0"?>\n<!DOCTYPE log [<!ENTITY a "b">]>\n<log><trace></trace></log>\n')
    assert xes_parallel.parse(path.read_bytes(), start_key=None) is None
    with pytest.raises(MiningInputError, match="DOCTYPE"):
        read_xes(path)


def test_broken_second_part_gives_the_single_parser_error(tmp_path: Path, always_parallel: None) -> None:
    path = _odd(tmp_path)
    text = path.read_text(encoding="utf-8")
    cut = text.rindex("</xes:event>")
    path.write_text(text[:cut] + "</xes:evnt>" + text[cut + len("</xes:event>") :], encoding="utf-8")
    with pytest.raises(
        MiningInputError, match=r"not well-formed XML at line \d+, column \d+ \(mismatched tag\)"
    ) as err:
        read_xes(path)
    xes_parallel.PARALLEL_MIN_BYTES = 1 << 60
    with pytest.raises(MiningInputError) as err_serial:
        read_xes(path)
    assert str(err.value) == str(err_serial.value)


def test_a_failing_child_falls_back(
    tmp_path: Path, always_parallel: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(xes_parallel, "_CHILD_SCRIPT", tmp_path / "missing.py")
    path = _odd(tmp_path)
    assert xes_parallel.parse(path.read_bytes(), start_key="start_timestamp") is None
    table = read_xes(path)
    assert table.n_events == 80


def test_child_protocol_round_trip() -> None:
    cols = xes_expat.XesColumns(
        cases=["a", "a"],
        activities=["x", ""],
        timestamps=["t1", None],
        starts=[None, None],
        resources=["é ünï", None],
        lifecycles=[None, "complete"],
        orphan_events=3,
    )
    answer = xes_parallel._read_answer(xes_expat.encode(cols))
    assert answer is not None
    header, columns = answer
    assert header["orphan_events"] == 3
    for name in xes_expat.COLUMNS:
        assert columns[name].to_list() == getattr(cols, name)
        assert columns[name].dtype == pl.String


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared event logs folder missing")
@pytest.mark.parametrize("name", ["receipt.xes.gz", "interval_event_log.xes", "helpdesk.xes.gz"])
def test_shared_logs(name: str, always_parallel: None) -> None:
    path = SHARED / name
    assert_same(xes_parallel.parse(readers._read_bytes(path), start_key="start_timestamp"), path)
