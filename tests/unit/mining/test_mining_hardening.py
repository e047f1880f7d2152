# ruff: noqa: E501  (the XML fixtures read best one element per line)
"""Hostile and broken inputs: each is refused fast (well under 2 s) with a message naming the limit,
row or line, before any large DataFrame is built; and a huge-but-honest case still mines right."""

from __future__ import annotations

import gzip
import re
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from worker.mining import ColumnMapping, MiningInputError, discover, preview, read_log, read_xes, readers
from worker.mining.timestamps import MAX_YEAR, MIN_YEAR

HEADER = b"Case ID,Activity,Timestamp,Resource\n"
ROW = b"INC1,Logged,2023-05-01 08:00:00,Ann\n"
FAST_S = 2.0


@contextmanager
def refused(match: str, *, max_alloc_mib: float = 200.0) -> Iterator[None]:
    """Expect a MiningInputError matching ``match``, raised fast and without big allocations."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(MiningInputError, match=match):
            yield
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < FAST_S, f"took {elapsed:.2f} s"
    assert peak < max_alloc_mib * 1024**2, f"allocated {peak / 1024**2:.0f} MiB"


def gzip_bomb(path: Path, head: bytes, filler: bytes, expanded_mib: int) -> Path:
    """A few hundred KiB of concatenated gzip members that inflate to ``expanded_mib`` MiB."""
    member = gzip.compress(filler * (1024**2 // len(filler)), compresslevel=9)
    path.write_bytes(gzip.compress(head) + member * expanded_mib)
    return path


# --------------------------------------------------------------------------------------------
# Decompression caps


@pytest.mark.parametrize(
    ("name", "head", "filler"),
    [
        ("bomb.csv.gz", HEADER + ROW, b"INC1,Logged,2023-05-01 08:00:00,Ann\n"),
        ("bomb.xes.gz", b'<?xml version="1.0"?>\n<log>', b" " * 64),
    ],
)
def test_gzip_bomb_stops_at_max_bytes(tmp_path: Path, name: str, head: bytes, filler: bytes) -> None:
    path = gzip_bomb(tmp_path / name, head, filler, expanded_mib=1024)  # 1 GiB expanded
    assert path.stat().st_size < 4 * 1024**2  # a few MiB upload, 1 GiB of text
    with refused(r"expands to more than the 8 MiB limit when decompressed"):
        read_log(path, max_bytes=8 * 1024**2)


@pytest.mark.parametrize(
    ("name", "head", "filler"),
    [
        ("bomb.csv.gz", HEADER + ROW, b"\n"),
        ("bomb.xes.gz", b'<?xml version="1.0"?>\n<log>', b" "),
    ],
)
def test_gzip_bomb_is_caught_by_its_ratio_with_default_limits(
    tmp_path: Path, name: str, head: bytes, filler: bytes
) -> None:
    # 16 GiB expanded: the default 4 GiB cap would take seconds; the ratio guard needs 16 MiB.
    path = gzip_bomb(tmp_path / name, head, filler, expanded_mib=16 * 1024)
    with refused(r"expands more than 250x when decompressed .* decompression bomb", max_alloc_mib=150):
        read_log(path)


def test_preview_of_a_bomb_reads_only_the_head(tmp_path: Path) -> None:
    path = gzip_bomb(tmp_path / "bomb.csv.gz", HEADER + ROW, ROW, expanded_mib=1024)
    started = time.perf_counter()
    result = preview(path, n_rows=5)
    assert time.perf_counter() - started < FAST_S
    assert result.columns == ["Case ID", "Activity", "Timestamp", "Resource"]


def test_plain_file_larger_than_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(HEADER + ROW * 100_000)
    with refused(r"big.csv' is 3 MiB, more than the 1 MiB limit"):
        read_log(path, max_bytes=1024**2)


def test_limits_are_module_constants_read_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(HEADER + ROW * 50_000))
    monkeypatch.setattr(readers, "DEFAULT_MAX_BYTES", 256 * 1024)
    with refused(r"more than the 262,144 bytes limit"):
        read_log(path)


# --------------------------------------------------------------------------------------------
# Columns, fields, lines


def test_hundred_thousand_columns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    names = ",".join(f"c{i}" for i in range(100_000))
    values = ",".join("x" for _ in range(100_000))
    path.write_text(f"{names}\n{values}\n", encoding="utf-8")
    with refused(r"has 100,000 columns .* at most 1,000 are supported"):
        read_log(path)
    with refused(r"has 100,000 columns"):
        preview(path)


def test_thousand_columns_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "wide_ok.csv"
    names = ["Case ID", "Activity", "Timestamp"] + [f"extra{i}" for i in range(readers.MAX_COLUMNS - 3)]
    path.write_text(",".join(names) + "\n" + ",".join(["1", "a", "2024-01-01 00:00:00"] + ["x"] * 997) + "\n")
    assert read_log(path).n_events == 1


def test_a_row_with_far_too_many_fields(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_bytes(HEADER + ROW + b",".join([b"x"] * 100_000) + b"\n" + ROW)
    with refused(r"could not be read as comma-separated text"):
        read_log(path)


def test_field_longer_than_64_kib(tmp_path: Path) -> None:
    path = tmp_path / "long_field.csv"
    long_activity = b"A" * (70 * 1024)
    path.write_bytes(HEADER + ROW + b"INC2," + long_activity + b",2023-05-01 09:00:00,Bob\n")
    with refused(r"column 'Activity' row 2 is 71,680 bytes long; values longer than 64 KiB"):
        read_log(path)
    with refused(r"column 'Activity' row 2 is 71,680 bytes long"):
        preview(path)


def test_quoted_field_spanning_many_short_lines(tmp_path: Path) -> None:
    # Every physical line is short, but an open quote swallows 80 KiB into one value.
    path = tmp_path / "open_quote.csv"
    path.write_bytes(HEADER + ROW + b'INC2,"runaway' + b"\nx" * 40_000 + b'",2023-05-01 09:00:00,Bob\n')
    with refused(r"column 'Activity' row 2 is [\d,]+ bytes long"):
        read_log(path)


def test_column_name_longer_than_64_kib(tmp_path: Path) -> None:
    path = tmp_path / "long_name.csv"
    path.write_bytes(b"Case ID,Activity,Timestamp," + b"N" * (100 * 1024) + b"\n" + ROW)
    with refused(r"longer than 64 KiB"):
        read_log(path)


def test_line_longer_than_1_mib(tmp_path: Path) -> None:
    path = tmp_path / "long_line.csv"
    path.write_bytes(HEADER + ROW + b"INC2,Logged,2023-05-01 09:00:00," + b"B" * (2 * 1024**2) + b"\n" + ROW)
    with refused(r"line 3 is 2,097,184 bytes long; lines longer than 1 MiB are not supported"):
        read_log(path)
    with refused(r"line 3 is longer than 1 MiB"):
        preview(path)


def test_file_without_line_breaks(tmp_path: Path) -> None:
    path = tmp_path / "one_line.csv"
    path.write_bytes(b"Case ID,Activity,Timestamp," + b"x," * (3 * 1024**2))
    with refused(r"line 1 is (longer than 1 MiB|[\d,]+ bytes long)"):
        read_log(path)
    with refused(r"line 1 is longer than 1 MiB"):
        preview(path)


@pytest.mark.parametrize("newline", [b"\n", b""], ids=["terminated", "last-line"])
def test_long_line_after_many_short_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newline: bytes
) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 100 * 1024)  # the scan takes many steps
    path = tmp_path / "late.csv"
    long_row = b"INC3,Logged,2023-05-01 09:00:00," + b"B" * (150 * 1024) + newline
    path.write_bytes(HEADER + ROW * 20_000 + long_row + (ROW * 10 if newline else b""))
    with refused(r"line 20002 is 153,632 bytes long; lines longer than 102,400 bytes"):
        read_log(path)


def test_lines_just_under_the_limit_are_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_LINE_BYTES", 1024)
    row = b"INC1,Logged,2023-05-01 08:00:00," + b"R" * (1024 - 32) + b"\n"
    assert len(row) == 1024 + 1  # 1,024 bytes plus the newline
    path = tmp_path / "edge.csv"
    path.write_bytes(HEADER + row * 50)
    assert read_log(path).n_events == 50


def test_xes_attribute_longer_than_64_kib(tmp_path: Path) -> None:
    path = tmp_path / "long.xes"
    value = "A" * (70 * 1024)
    path.write_text(
        '<log><trace><string key="concept:name" value="c1"/>'
        '<event><string key="concept:name" value="ok"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>'
        f'<event><string key="concept:name" value="{value}"/><date key="time:timestamp" value="2020-01-01T00:01:00Z"/></event>'
        "</trace></log>",
        encoding="utf-8",
    )
    with refused(r"column 'concept:name' event 2 is 71,680 bytes long"):
        read_xes(path)


# --------------------------------------------------------------------------------------------
# Timestamps: unparseable and out-of-range values are refused, naming column, row and value


def _csv_with_times(tmp_path: Path, times: list[str]) -> Path:
    path = tmp_path / "times.csv"
    lines = ["Case ID,Activity,Timestamp"] + [f"C{i % 2},A{i},{t}" for i, t in enumerate(times)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_unparseable_timestamp_names_the_row(tmp_path: Path) -> None:
    path = _csv_with_times(tmp_path, ["2024-01-01 10:00:00", "2024-01-01 11:00:00", "31/02/2024 10:00"])
    with refused(r"Column 'Timestamp' row 3: '31/02/2024 10:00' is not a date"):
        read_log(path)


@pytest.mark.parametrize(
    ("value", "row"),
    [
        ("9999-12-31 23:59:59", 3),  # "never": wraps to 1816 at ns precision if not caught
        ("2500-06-01 00:00:00", 3),  # wraps *into* the plausible range at ns precision
        ("2101-01-01 00:00:00", 3),
        ("1899-12-31 23:59:59", 3),
        ("0001-01-01 00:00:00", 3),
    ],
)
def test_out_of_range_timestamps_are_refused(tmp_path: Path, value: str, row: int) -> None:
    path = _csv_with_times(tmp_path, ["2024-01-01 10:00:00", "2024-01-01 11:00:00", value, value])
    with refused(
        rf"Column 'Timestamp' row {row}: '{value}' is outside the supported range "
        rf"{MIN_YEAR}-01-01 to {MAX_YEAR}-12-31 \(1 more rows are out of range too\)"
    ):
        read_log(path)


def test_range_edges_are_accepted(tmp_path: Path) -> None:
    path = _csv_with_times(tmp_path, ["1900-01-01 00:00:00", "2100-12-31 23:59:59"])
    times = read_log(path).frame["timestamp"].to_list()
    assert times == [datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)]


def test_out_of_range_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / "epoch.csv"
    path.write_text("case,activity,time\n1,a,1700000000\n1,b,4133980800\n", encoding="utf-8")
    mapping = ColumnMapping(case="case", activity="activity", timestamp="time", timestamp_format="EPOCH_S")
    with refused(r"row 2: '4133980800' is outside the supported range"):
        read_log(path, mapping)


def test_out_of_range_typed_parquet_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "far.parquet"
    pl.DataFrame(
        {
            "case": ["1", "1"],
            "activity": ["a", "b"],
            "time": pl.Series([datetime(2024, 1, 1), datetime(9999, 12, 31)], dtype=pl.Datetime("us")),
        }
    ).write_parquet(path)
    with refused(r"Column 'time' row 2: '9999-12-31 00:00:00' is outside the supported range"):
        read_log(path)


def test_out_of_range_xes_timestamp_names_the_event(tmp_path: Path) -> None:
    path = tmp_path / "far.xes"
    path.write_text(
        '<log><trace><string key="concept:name" value="c1"/>'
        '<event><string key="concept:name" value="a"/><date key="time:timestamp" value="2020-01-01T00:00:00Z"/></event>'
        '<event><string key="concept:name" value="b"/><date key="time:timestamp" value="9999-12-31T23:59:59.000+00:00"/></event>'
        "</trace></log>",
        encoding="utf-8",
    )
    with refused(r"Column 'time:timestamp' event 2: '9999-12-31T23:59:59.000\+00:00' is outside"):
        read_xes(path)


# --------------------------------------------------------------------------------------------
# Encodings: legacy single-byte files are converted, files mixing UTF-8 and Latin-1 are refused


def test_utf8_file_with_latin1_bytes_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    utf8_rows = "".join(f"INC{i},Réparé,2023-05-01 0{i}:00:00,Zoë\n" for i in range(1, 4))
    path.write_bytes(
        HEADER + utf8_rows.encode("utf-8") + "INC4,Réparé,2023-05-01 05:00:00,Zoë\n".encode("latin-1")
    )
    with refused(r"mixes text encodings: it is UTF-8, but line 5 \(byte 7\) has the byte 0xE9"):
        read_log(path)
    with refused(r"line 5 \(byte 7\)"):
        preview(path)


def test_pure_latin1_file_is_still_read(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER + "INC1,Réparé,2023-05-01 08:00:00,Zoë\n".encode("latin-1"))
    table = read_log(path)
    assert table.frame["activity"].to_list() == ["Réparé"]
    assert any("windows-1252" in note for note in table.notes)


def test_utf8_bom_file_with_a_latin1_byte(tmp_path: Path) -> None:
    path = tmp_path / "bom_mixed.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + HEADER + ROW + "INC2,Réparé,2023-05-01 09:00:00,Zoë\n".encode("latin-1")
    )
    with refused(r"cannot be decoded as utf-8-sig at line 3"):
        read_log(path)


# --------------------------------------------------------------------------------------------
# Huge but honest: one case with a million events


def test_a_case_with_a_million_events(tmp_path: Path) -> None:
    n = 1_000_000
    names = np.array(["Check", "Fix", "Test"])
    t0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())
    big = pl.DataFrame(
        {
            "Case ID": pl.Series(["BIG"] * n),
            "Activity": pl.Series(names[np.arange(n) % 3]),
            "Timestamp": pl.Series((t0 + np.arange(n)) * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us")),
        }
    )
    small = pl.DataFrame(
        {
            "Case ID": ["SMALL", "SMALL"],
            "Activity": ["Check", "Test"],
            "Timestamp": [datetime(2024, 1, 1), datetime(2024, 1, 2)],
        },
        schema_overrides={"Timestamp": pl.Datetime("us")},
    )
    # Newest first, so the reader has to sort the million events back into order.
    frame = pl.concat([small, big]).reverse()
    path = tmp_path / "one_big_case.csv"
    frame.with_columns(pl.col("Timestamp").dt.strftime("%Y-%m-%d %H:%M:%S")).write_csv(path)

    started = time.perf_counter()
    result = discover(read_log(path))
    elapsed = time.perf_counter() - started
    s = result.summary
    assert (s.n_cases, s.n_events, s.n_variants, s.n_activities) == (2, n + 2, 2, 3)
    assert s.case_duration_max_s == n - 1
    assert result.start_activities == {"Check": 2}
    assert result.end_activities == {"Check": 1, "Test": 1}  # 999,999 % 3 == 0 -> Check
    edges = {(e.source, e.target): e for e in result.dfg}
    assert edges[("Check", "Fix")].count == 333_333
    assert edges[("Fix", "Test")].count == 333_333
    assert edges[("Test", "Check")].count == 333_333
    assert edges[("Check", "Test")].count == 1  # the small case
    assert edges[("Fix", "Test")].median_s == edges[("Fix", "Test")].max_s == 1.0
    big_variant = max(result.variants, key=lambda v: len(v.activities))
    assert len(big_variant.activities) == n and big_variant.activities[:4] == [
        "Check",
        "Fix",
        "Test",
        "Check",
    ]
    assert elapsed < 10, elapsed


# --------------------------------------------------------------------------------------------
# Files that are not what they claim (found by the hostile-upload corpus and the fuzz run)


@pytest.mark.parametrize(
    ("head", "kind"),
    [(b"", ""), (b"PK\x03\x04", ", it looks like a ZIP archive, such as an Excel .xlsx workbook")],
)
def test_binary_junk_named_csv_is_refused_as_not_text(tmp_path: Path, head: bytes, kind: str) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(head + np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    for read in (read_log, preview):
        with refused(
            rf"'junk.csv' is not a text file \([\d,]+ of its first 65,536 bytes are binary control codes{kind}\)"
        ):
            read(path)


def test_a_stray_control_character_in_a_text_file_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bell.csv"
    path.write_bytes(HEADER + ROW * 20 + b"INC2,Ring \x07 the bell,2023-05-01 09:00:00,Bob\n\x1a")
    assert read_log(path).n_events == 21


@pytest.mark.parametrize("value", ["50000-01-01 00:00:00", "+12024-05-01T10:00:00Z"])
def test_a_five_digit_year_is_out_of_range_not_a_format_problem(tmp_path: Path, value: str) -> None:
    path = _csv_with_times(tmp_path, ["2024-01-01 10:00:00", "2024-01-01 11:00:00", value])
    with refused(rf"Column 'Timestamp' row 3: '{re.escape(value)}' is outside the supported range"):
        read_log(path)


@pytest.mark.parametrize("encoding", ["NaNUTF-8", "shift_jis", "rot13"])
def test_xes_declaring_an_unusable_encoding(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "odd.xes"
    path.write_bytes(f'<?xml version="1.0" encoding="{encoding}"?><log><trace></trace></log>'.encode())
    for read in (read_log, preview):
        with refused(r"declares a text encoding the XML reader cannot use .* save the file as UTF-8"):
            read(path)


def test_damaged_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"  # named .csv: the content says Parquet
    path.write_bytes(b"PAR1" + b"\x00\x01" * 500)
    for read in (read_log, preview):
        with refused(r"'log.csv' is not a readable Parquet file \(.+\); export the log again"):
            read(path)
