"""CSV/Parquet reading, column-mapping guesses and timestamp formats, including the awkward cases."""

from __future__ import annotations

import codecs
import gzip
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from worker.mining import (
    ColumnMapping,
    MiningInputError,
    detect_format,
    discover,
    parse_timestamps,
    preview,
    propose_mapping,
    read_csv,
    read_log,
    read_parquet,
)

ROWS = [
    ("INC1", "Logged", "2023-05-01 08:00:00", "Ann"),
    ("INC1", "Réparé", "2023-05-01 09:30:00", "Zoë"),
    ("INC2", "Logged", "2023-05-02 10:00:00", "Ann"),
    ("INC1", "Close", "2023-05-03 08:00:00", "System"),
    ("INC2", "Réparé", "2023-05-02 10:00:00", "Zoë"),
]


def make_csv(
    delimiter: str = ",", header: tuple[str, ...] = ("Case ID", "Activity", "Timestamp", "Resource")
) -> str:
    lines = [delimiter.join(header)] + [delimiter.join(r) for r in ROWS]
    return "\r\n".join(lines) + "\r\n"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def check_basic(path: Path) -> None:
    table = read_log(path)
    rows = table.frame.to_dicts()
    assert [r["case"] for r in rows] == [r[0] for r in ROWS]
    assert [r["activity"] for r in rows] == [r[1] for r in ROWS]
    assert rows[1]["resource"] == "Zoë"
    assert rows[0]["timestamp"] == utc(2023, 5, 1, 8)
    result = discover(table)
    assert result.summary.n_cases == 2
    assert result.start_activities == {"Logged": 2}


@pytest.mark.parametrize(
    ("encoding", "bom"),
    [
        ("utf-8", b""),
        ("utf-8", codecs.BOM_UTF8),
        ("utf-16-le", codecs.BOM_UTF16_LE),
        ("utf-16-be", codecs.BOM_UTF16_BE),
        ("utf-16-le", b""),
        ("latin-1", b""),
        ("cp1252", b""),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "latin1", "cp1252"],
)
def test_encodings(tmp_path: Path, encoding: str, bom: bytes) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(bom + make_csv().encode(encoding))
    check_basic(path)
    assert read_log(path).frame.columns[0] == "case"  # no BOM glued to the first header


def test_cp1252_euro_sign(tmp_path: Path) -> None:
    path = tmp_path / "euro.csv"
    path.write_bytes(make_csv().replace("Ann", "Ann €").encode("cp1252"))
    assert read_log(path).frame["resource"][0] == "Ann €"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semicolon", "tab", "pipe"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / ("log.tsv" if delimiter == "\t" else "log.csv")
    path.write_text(make_csv(delimiter), encoding="utf-8")
    check_basic(path)
    assert preview(path).delimiter == delimiter


def test_semicolon_with_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(
        'Case ID;Activity;Timestamp;Note\n1;"Call back, then close";2023-01-01 10:00;"a;b"\n'
        "1;Close;2023-01-01 11:00;x\n",
        encoding="utf-8",
    )
    table = read_log(path)
    assert table.frame["activity"].to_list() == ["Call back, then close", "Close"]


def test_gzipped_csv(tmp_path: Path) -> None:
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(make_csv().encode("utf-8")))
    check_basic(path)


def test_duplicate_headers_and_unnamed_index(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text(
        ",Case ID,Activity,Complete Timestamp,Variant,Variant index,Variant\n"
        "0,C1,A,2012/10/09 14:50:17.000,Variant 1,1,Variant 1\n"
        "1,C1,B,2012/10/09 14:51:01.500,Variant 1,1,Variant 1b\n",
        encoding="utf-8",
    )
    p = preview(path)
    assert p.columns == [
        "Unnamed: 0",
        "Case ID",
        "Activity",
        "Complete Timestamp",
        "Variant",
        "Variant index",
        "Variant.1",
    ]
    assert p.rows[1][-1] == "Variant 1b"
    assert p.proposal is not None
    assert (p.proposal.case, p.proposal.activity, p.proposal.timestamp) == (
        "Case ID",
        "Activity",
        "Complete Timestamp",
    )
    assert p.proposal.timestamp_format == "%Y/%m/%d"
    table = read_log(path)
    assert table.frame["timestamp"].to_list()[1] == utc(2012, 10, 9, 14, 51, 1, 500000)
    # A mapping may name the renamed duplicate.
    table = read_log(
        path, ColumnMapping(case="Variant.1", activity="Activity", timestamp="Complete Timestamp")
    )
    assert table.frame["case"].to_list() == ["Variant 1", "Variant 1b"]


@pytest.mark.parametrize("content", [b"", b"   \r\n\r\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(MiningInputError, match="is empty"):
        read_log(path)
    with pytest.raises(MiningInputError, match="is empty"):
        preview(path)


def test_header_only(tmp_path: Path) -> None:
    path = tmp_path / "header.csv"
    path.write_text("Case ID,Activity,Timestamp\n", encoding="utf-8")
    with pytest.raises(MiningInputError, match="header row but no events"):
        read_log(path)
    with pytest.raises(MiningInputError, match="header row but no events"):
        preview(path)


def test_single_column_file(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text("just a list\nof words\n", encoding="utf-8")
    with pytest.raises(MiningInputError, match="needs at least case id, activity and timestamp"):
        read_log(path)


def test_ragged_rows(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "Case ID,Activity,Timestamp\n1,A,2020-01-01\n1,B,2020-01-02,extra,fields\n", encoding="utf-8"
    )
    with pytest.raises(MiningInputError, match="Check the delimiter and quoting"):
        read_log(path)


def test_bad_timestamp_names_row_and_value(tmp_path: Path) -> None:
    rows = [f"C{i},A,{(i % 28) + 1:02d}/03/2020" for i in range(1, 30)]
    rows[16] = "C17,A,31/02/2020"
    path = tmp_path / "bad.csv"
    path.write_text("Case ID,Activity,Timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(MiningInputError) as err:
        read_log(path)
    message = str(err.value)
    assert "Column 'Timestamp' row 17: '31/02/2020' is not a date" in message
    assert "choose the timestamp format explicitly" in message


def test_unrecognisable_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "words.csv"
    path.write_text("Case ID,Activity,Timestamp\n1,A,soon\n1,B,later\n", encoding="utf-8")
    with pytest.raises(MiningInputError, match="could not recognise a date/time format"):
        read_log(path)


def test_missing_mapping_column_lists_available(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(make_csv(), encoding="utf-8")
    with pytest.raises(MiningInputError, match="'Nope' is not in 'log.csv'; available columns are 'Case ID'"):
        read_log(path, ColumnMapping(case="Nope", activity="Activity", timestamp="Timestamp"))


def test_unguessable_mapping(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("alpha,beta,gamma\nx,y,z\n", encoding="utf-8")
    with pytest.raises(
        MiningInputError, match="choose the case id, activity and timestamp columns explicitly"
    ):
        read_log(path)


def test_rows_missing_key_fields_are_dropped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "gaps.csv"
    path.write_text(
        "Case ID,Activity,Timestamp\n1,A,2020-01-01 10:00\n,B,2020-01-01 11:00\n1,,2020-01-01 12:00\n"
        "1,C,\n1,D,2020-01-01 13:00\n",
        encoding="utf-8",
    )
    table = read_log(path)
    assert table.frame["activity"].to_list() == ["A", "D"]
    assert table.dropped_rows == 3
    assert any("3 event(s)" in n for n in table.notes)


# ---------------------------------------------------------------------------------------------
# Timestamp formats


@pytest.mark.parametrize(
    ("values", "spec", "expected"),
    [
        (["2010-12-30 14:32:00+01:00", "2011-05-30 14:32:00+02:00"], "ISO8601", utc(2010, 12, 30, 13, 32)),
        (
            ["2011-10-01T00:38:44.546+02:00", "2011-10-02T00:38:44Z"],
            "ISO8601",
            utc(2011, 9, 30, 22, 38, 44, 546000),
        ),
        (["2012/10/09 14:50:17.000", "2012/10/10 14:50:17.000"], "%Y/%m/%d", utc(2012, 10, 9, 14, 50, 17)),
        (["31-12-2020 23:59", "01-01-2021 00:00"], "%d-%m-%Y", utc(2020, 12, 31, 23, 59)),
        (["12/31/2020 11:59 PM", "01/01/2021 12:00 AM"], "%m/%d/%Y", utc(2020, 12, 31, 23, 59)),
        (["13.01.2021 08:00", "14.01.2021 09:15:00"], "%d.%m.%Y", utc(2021, 1, 13, 8)),
        (["1609459200", "1609462800"], "EPOCH_S", utc(2021, 1, 1)),
        (["1609459200000", "1609462800500"], "EPOCH_MS", utc(2021, 1, 1)),
    ],
)
def test_timestamp_formats(tmp_path: Path, values: list[str], spec: str, expected: datetime) -> None:
    assert (fmt := detect_format(values)) is not None and fmt.spec == spec
    path = tmp_path / "ts.csv"
    path.write_text(
        "Case ID;Activity;Timestamp\n" + "".join(f"1;A{i};{v}\n" for i, v in enumerate(values)),
        encoding="utf-8",
    )
    table = read_log(path)
    assert table.timestamp_format == spec
    assert table.frame["timestamp"][0] == expected


def test_mixed_offsets_are_normalised_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "offsets.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp\n"
        "c,a,2011-10-30 01:30:00+02:00\nc,b,2011-10-30 01:10:00+01:00\n",
        encoding="utf-8",
    )
    result = discover(read_log(path))
    edge = result.edge("a", "b")
    # 00:10Z - 23:30Z: 40 minutes, although the local clock went backwards.
    assert edge is not None and edge.median_s == 2400.0


def test_ambiguous_day_month_and_explicit_override(tmp_path: Path) -> None:
    path = tmp_path / "ambiguous.csv"
    path.write_text(
        "Case ID,Activity,Timestamp\n1,A,01/02/2020 10:00\n1,B,03/04/2020 10:00\n", encoding="utf-8"
    )
    proposal = preview(path).proposal
    assert proposal is not None
    assert proposal.timestamp_format == "%m/%d/%Y" and proposal.timestamp_format_ambiguous
    assert read_log(path).frame["timestamp"][0] == utc(2020, 1, 2, 10)
    mapping = ColumnMapping(
        case="Case ID", activity="Activity", timestamp="Timestamp", timestamp_format="%d/%m/%Y"
    )
    assert read_log(path, mapping).frame["timestamp"][0] == utc(2020, 2, 1, 10)
    exact = ColumnMapping(
        case="Case ID", activity="Activity", timestamp="Timestamp", timestamp_format="%d/%m/%Y %H:%M"
    )
    assert read_log(path, exact).frame["timestamp"][1] == utc(2020, 4, 3, 10)


def test_explicit_format_that_does_not_fit(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text(make_csv(), encoding="utf-8")
    mapping = ColumnMapping(
        case="Case ID", activity="Activity", timestamp="Timestamp", timestamp_format="%d/%m/%Y"
    )
    with pytest.raises(
        MiningInputError, match=r"row 1: '2023-05-01 08:00:00' is not a date in the format DD/MM/YYYY"
    ):
        read_log(path, mapping)


def test_timezone_override_for_naive_times(tmp_path: Path) -> None:
    path = tmp_path / "local.csv"
    path.write_text(
        "Case ID,Activity,Timestamp\n1,A,2020-03-01 10:00:00\n1,B,2020-07-01 10:00:00+00:00\n",
        encoding="utf-8",
    )
    mapping = ColumnMapping(
        case="Case ID", activity="Activity", timestamp="Timestamp", timezone="Europe/Amsterdam"
    )
    ts = read_log(path, mapping).frame["timestamp"].to_list()
    assert ts == [utc(2020, 3, 1, 9), utc(2020, 7, 1, 10)]  # explicit offsets win over the zone
    with pytest.raises(MiningInputError, match="Unknown time zone 'Mars/Olympus'"):
        read_log(
            path,
            ColumnMapping(
                case="Case ID", activity="Activity", timestamp="Timestamp", timezone="Mars/Olympus"
            ),
        )


def test_nonexistent_local_time_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text("Case ID,Activity,Timestamp\n1,A,2021-03-28 02:30:00\n", encoding="utf-8")
    mapping = ColumnMapping(
        case="Case ID", activity="Activity", timestamp="Timestamp", timezone="Europe/Amsterdam"
    )
    with pytest.raises(MiningInputError, match="does not exist in time zone Europe/Amsterdam"):
        read_log(path, mapping)


def test_start_timestamp_column(tmp_path: Path) -> None:
    path = tmp_path / "interval.csv"
    path.write_text(
        "case:concept:name,concept:name,time:timestamp,start_timestamp\n"
        "C1,a,2020-01-01 10:00:00,2020-01-01 09:00:00\nC1,b,2020-01-01 12:00:00,2020-01-01 11:00:00\n",
        encoding="utf-8",
    )
    proposal = preview(path).proposal
    assert proposal is not None and proposal.start_timestamp == "start_timestamp"
    result = discover(read_log(path))
    assert result.summary.has_start_timestamps
    edge = result.edge("a", "b")
    assert edge is not None and edge.median_s == 3600.0  # start(b) - end(a)
    assert {a.activity: a.duration_mean_s for a in result.activities} == {"a": 3600.0, "b": 3600.0}


# ---------------------------------------------------------------------------------------------
# Mapping guesses


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (
            ["case:concept:name", "concept:name", "time:timestamp", "org:resource", "start_timestamp"],
            ("case:concept:name", "concept:name", "time:timestamp", "start_timestamp", "org:resource"),
        ),
        (
            ["Case ID", "Activity", "Resource", "Complete Timestamp"],
            ("Case ID", "Activity", "Complete Timestamp", None, "Resource"),
        ),
        (
            ["Number", "Status", "sys_updated_on", "Assigned to"],
            ("Number", "Status", "sys_updated_on", None, "Assigned to"),
        ),
        (
            ["Incident ID", "Status", "Updated", "Assignee"],
            ("Incident ID", "Status", "Updated", None, "Assignee"),
        ),
        (
            ["ticket_number", "event", "event_time", "agent"],
            ("ticket_number", "event", "event_time", None, "agent"),
        ),
    ],
)
def test_propose_mapping_by_name(columns: list[str], expected: tuple[str | None, ...]) -> None:
    sample = [["X1", "Logged", "2020-01-01 10:00:00", "Ann", "2020-01-01 09:00:00"][: len(columns)]]
    p = propose_mapping(columns, sample)
    assert (p.case, p.activity, p.timestamp, p.start_timestamp, p.resource) == expected
    assert p.missing == []


def test_propose_mapping_finds_timestamp_by_values() -> None:
    p = propose_mapping(
        ["Ticket", "What", "When"],
        [["T1", "Logged", "2020-01-01T10:00:00Z"], ["T1", "Closed", "2020-01-02T10:00:00Z"]],
    )
    assert (p.case, p.timestamp, p.timestamp_format) == ("Ticket", "When", "ISO8601")
    assert p.activity is None and p.missing == ["activity"]
    with pytest.raises(MiningInputError, match="activity"):
        p.to_mapping()


def test_mapping_and_proposal_are_json_ready() -> None:
    import json

    p = propose_mapping(["Case ID", "Activity", "Timestamp"], [["1", "A", "2020-01-01"]])
    json.dumps(p.to_dict())
    json.dumps(p.to_mapping().to_dict())


# ---------------------------------------------------------------------------------------------
# Parquet


def test_parquet_typed_and_text_timestamps(tmp_path: Path) -> None:
    typed = pl.DataFrame(
        {
            "case_id": [1, 1, 2],
            "activity": ["A", "B", "A"],
            "timestamp": [datetime(2020, 1, 1, 10), datetime(2020, 1, 1, 11), datetime(2020, 1, 2, 10)],
            "resource": ["x", None, "y"],
        }
    )
    path = tmp_path / "typed.parquet"
    typed.write_parquet(path)
    table = read_log(path)
    assert table.source_format == "parquet"
    assert table.frame["case"].to_list() == ["1", "1", "2"]
    assert table.frame["timestamp"][1] == utc(2020, 1, 1, 11)
    result = discover(table)
    assert result.summary.n_cases == 2 and result.summary.n_resources == 2
    mapping = ColumnMapping(
        case="case_id", activity="activity", timestamp="timestamp", timezone="Europe/Amsterdam"
    )
    assert read_parquet(path, mapping).frame["timestamp"][0] == utc(2020, 1, 1, 9)

    text = typed.with_columns(pl.col("timestamp").dt.strftime("%d-%m-%Y %H:%M"))
    text_path = tmp_path / "renamed.bin"  # content, not the suffix, decides the reader
    text.write_parquet(text_path)
    assert read_log(text_path).frame["timestamp"][2] == utc(2020, 1, 2, 10)
    assert preview(text_path).format == "parquet"


def test_read_csv_directly_with_explicit_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    path.write_text(make_csv(";"), encoding="utf-8")
    table = read_csv(path, delimiter=";")
    assert table.n_events == len(ROWS)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_preview_of_a_large_file_reads_only_its_head(tmp_path: Path, encoding: str) -> None:
    # > 1 MiB, with multi-byte characters everywhere, so the 1 MiB cut lands inside one.
    rows = "".join(f"C{i},Réparé ✓,2020-01-01 10:00:{i % 60:02d}\n" for i in range(40_000))
    path = tmp_path / "large.csv"
    path.write_bytes(("Case ID,Activity,Timestamp\n" + rows).encode(encoding))
    assert path.stat().st_size > 1 << 20
    p = preview(path, n_rows=5)
    assert p.encoding == encoding
    assert p.rows[0] == ["C0", "Réparé ✓", "2020-01-01 10:00:00"]
    assert len(p.rows) == 5


def test_iso_variants_mixed_in_one_column() -> None:
    # Most rows share one layout; rare rows (beyond any sample) with a fraction, an offset, no
    # seconds or no time at all must still parse.
    values = ["2020-01-01 10:00:00"] * 5000 + [
        "2020-01-01 10:00:00.5",
        "2020-01-01T10:00:00+02:00",
        "2020-01-01 10:00",
        "2020-01-01",
    ]
    parsed, spec = parse_timestamps(pl.Series("t", values), column="t")
    assert spec == "ISO8601"
    assert parsed[-4:].to_list() == [
        utc(2020, 1, 1, 10, 0, 0, 500000),
        utc(2020, 1, 1, 8),
        utc(2020, 1, 1, 10),
        utc(2020, 1, 1),
    ]
