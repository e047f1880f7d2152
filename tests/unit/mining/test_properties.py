"""Property tests (hypothesis): column mapping and preview on generated CSVs, and timestamp parsing.

* CSV: any delimiter the reader supports, minimal or full quoting, values holding the delimiter,
  quotes and line breaks, columns in any order with the usual export names for the roles: the preview
  gives back exactly the header and rows written, the delimiter used, and the role columns; the log
  then reads with every event in file order.
* Timestamps: datetimes formatted in every supported format (and the format families' time-of-day
  variants) parse back to the same instant, with the format given or detected (a day/month swap is
  only allowed when detection says the format is ambiguous); mixed UTC offsets in one column are each
  honoured; naive wall-clock times in an IANA zone come back to the instant they were taken from
  (the earlier one of a repeated autumn hour).

Runs are derandomised and bounded, so CI is repeatable and quick; HYPOTHESIS_PROFILE=explore runs
many more random examples.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zoneinfo
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from worker.mining import ColumnMapping, MiningInputError, detect_format, parse_timestamps, preview, read_log
from worker.mining.timestamps import EPOCH_MS, EPOCH_S, ISO8601, MAX_YEAR, MIN_YEAR

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=2000,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", max_examples=2000, deadline=None, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# --------------------------------------------------------------------------------------------
# CSV: preview and mapping

DELIMITERS = (",", ";", "\t", "|")
# Export names per role that the mapping guess must recognise (ServiceNow, Jira, XES, pm4py, Celonis).
CASE_NAMES = ("Case ID", "case:concept:name", "Number", "Incident Number", "Ticket ID", "case_id", "CaseID")
ACTIVITY_NAMES = ("Activity", "concept:name", "Status", "Event Name", "Task", "activity")
TIMESTAMP_NAMES = ("Timestamp", "time:timestamp", "sys_updated_on", "Complete Timestamp", "End Time")
# Other columns: names no role list contains.
EXTRA_NAMES = ("Priority", "Category", "Channel", "Assignment group", "Notes", "Impact", "Région", "備考")

# Text without control characters (a CSV holds none; the reader refuses files full of them), but with
# quotes, every candidate delimiter, spaces and non-ASCII letters.
_TEXT = st.text(
    alphabet=st.characters(
        categories=("L", "N", "P", "S", "Zs"),
        exclude_characters="\u2028\u2029\x85",  # str.splitlines() would see a line break
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s.strip() == s and s != "")


@st.composite
def csv_logs(draw: st.DrawFn) -> dict:
    """A CSV event log as (header, rows, delimiter, roles, text) with awkward but valid content."""
    delimiter = draw(st.sampled_from(DELIMITERS))
    quoting = draw(st.sampled_from((csv.QUOTE_MINIMAL, csv.QUOTE_ALL)))
    roles = {
        "case": draw(st.sampled_from(CASE_NAMES)),
        "activity": draw(st.sampled_from(ACTIVITY_NAMES)),
        "timestamp": draw(st.sampled_from(TIMESTAMP_NAMES)),
    }
    extras = draw(st.lists(st.sampled_from(EXTRA_NAMES), unique=True, max_size=3))
    header = draw(st.permutations([*roles.values(), *extras]))
    n_rows = draw(st.integers(min_value=1, max_value=25))
    other = [d for d in DELIMITERS if d != delimiter]

    def value(allow_breaks: bool) -> st.SearchStrategy[str]:
        # Values may hold the file's delimiter and quotes (the writer quotes them) and, for free text, a
        # line break inside quotes. Other delimiter characters would make the delimiter itself a guess.
        text = _TEXT.filter(lambda s: not any(d in s for d in other))
        if allow_breaks:
            text = st.one_of(text, st.tuples(text, text).map(lambda t: f"{t[0]}\n{t[1]}"))
        return text

    start = datetime(2023, 1, 1)
    rows = []
    for _ in range(n_rows):
        row = {
            roles["case"]: draw(st.sampled_from(("007", "INC0010001", "A-1", "b")) | value(False)),
            roles["activity"]: draw(value(True)),
            roles["timestamp"]: (start + timedelta(seconds=draw(st.integers(0, 10**8)))).strftime(
                "%Y-%m-%d %H:%M:%S"
            ),
        }
        for extra in extras:
            row[extra] = draw(value(True))
        rows.append([row[c] for c in header])
    buffer = io.StringIO()
    writer = csv.writer(
        buffer, delimiter=delimiter, quoting=quoting, lineterminator=draw(st.sampled_from(("\n", "\r\n")))
    )
    writer.writerow(header)
    writer.writerows(rows)
    return {"header": header, "rows": rows, "delimiter": delimiter, "roles": roles, "text": buffer.getvalue()}


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory(prefix="jl-properties-") as tmp:
        yield Path(tmp)


@given(log=csv_logs(), encoding=st.sampled_from(("utf-8", "utf-8-sig", "utf-16")))
def test_preview_gives_back_the_header_rows_delimiter_and_roles(
    folder: Path, log: dict, encoding: str
) -> None:
    path = folder / "log.csv"
    path.write_bytes(log["text"].encode(encoding))
    seen = preview(path, n_rows=20)
    assert seen.columns == log["header"]
    assert seen.delimiter == log["delimiter"]
    assert seen.rows == log["rows"][:20]
    proposal = seen.proposal
    assert proposal is not None
    assert (proposal.case, proposal.activity, proposal.timestamp) == (
        log["roles"]["case"],
        log["roles"]["activity"],
        log["roles"]["timestamp"],
    )
    assert proposal.timestamp_format == ISO8601 and proposal.missing == []


@given(log=csv_logs())
def test_the_proposed_mapping_reads_every_event_in_file_order(folder: Path, log: dict) -> None:
    path = folder / "log.csv"
    path.write_text(log["text"], encoding="utf-8")
    table = read_log(path)  # no mapping: the reader proposes it, as the preview did
    index = {name: i for i, name in enumerate(log["header"])}
    roles = log["roles"]
    assert table.frame["case"].to_list() == [r[index[roles["case"]]] for r in log["rows"]]
    assert table.frame["activity"].to_list() == [r[index[roles["activity"]]] for r in log["rows"]]
    expected = [
        datetime.strptime(r[index[roles["timestamp"]]], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        for r in log["rows"]
    ]
    assert table.frame["timestamp"].to_list() == expected


# --------------------------------------------------------------------------------------------
# Timestamps

# Wide enough for every offset to stay inside the supported years.
_INSTANTS = st.datetimes(min_value=datetime(MIN_YEAR, 1, 2), max_value=datetime(MAX_YEAR, 12, 30))
_OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))

# (spec, strftime pattern, precision the pattern keeps). Python and chrono agree on these directives.
FORMATS = [
    (ISO8601, "%Y-%m-%d %H:%M:%S", "s"),
    (ISO8601, "%Y-%m-%dT%H:%M:%S", "s"),
    (ISO8601, "%Y-%m-%d %H:%M:%S.%f", "us"),
    (ISO8601, "%Y-%m-%dT%H:%M", "m"),
    (ISO8601, "%Y-%m-%d", "d"),
    ("%Y/%m/%d", "%Y/%m/%d %H:%M:%S", "s"),
    ("%m/%d/%Y", "%m/%d/%Y %I:%M %p", "m"),
    ("%m/%d/%Y", "%m/%d/%Y %I:%M:%S.%f %p", "us"),
    ("%d/%m/%Y", "%d/%m/%Y %H:%M", "m"),
    ("%d-%m-%Y", "%d-%m-%Y %H:%M:%S", "s"),
    ("%m-%d-%Y", "%m-%d-%Y %H:%M", "m"),
    ("%d.%m.%Y", "%d.%m.%Y %H:%M:%S", "s"),
    ("%d-%b-%Y", "%d-%b-%Y %H:%M", "m"),
    ("%d %b %Y", "%d %b %Y %H:%M:%S", "s"),
    ("%Y%m%d", "%Y%m%d", "d"),
    ("%d.%m.%Y %H.%M", "%d.%m.%Y %H.%M", "m"),  # an exact pattern, as a user would type it
]


def _truncate(moment: datetime, precision: str) -> datetime:
    if precision == "us":
        return moment
    moment = moment.replace(microsecond=0)
    if precision in ("m", "d"):
        moment = moment.replace(second=0)
    if precision == "d":
        moment = moment.replace(hour=0, minute=0)
    return moment


def _parse(values: list[str], spec: str | None, zone: str | None = None) -> tuple[list[datetime], str]:
    series, used = parse_timestamps(
        pl.Series("t", values, dtype=pl.String), column="t", spec=spec, timezone=zone
    )
    return series.to_list(), used


@given(
    moments=st.lists(_INSTANTS, min_size=1, max_size=30),
    fmt=st.sampled_from(FORMATS),
    detect=st.booleans(),
)
def test_formatted_datetimes_parse_back_to_the_same_instant(
    moments: list[datetime], fmt: tuple[str, str, str], detect: bool
) -> None:
    spec, pattern, precision = fmt
    values = [m.strftime(pattern) for m in moments]
    expected = [_truncate(m, precision).replace(tzinfo=UTC) for m in moments]
    if not detect or "%H" in spec:  # an exact pattern is typed by a person, never detected
        assert _parse(values, spec) == (expected, spec)
        return
    detected = detect_format(values)
    assume(detected is not None)  # e.g. one "%Y%m%d" value is also a plausible number
    parsed, used = _parse(values, None)
    if parsed != expected:
        # Only a real day/month ambiguity may read the values another way, and detection says so.
        assert detected.ambiguous and detected.alternative == spec, (values, detected)
    else:
        assert used == detected.spec


@given(moments=st.lists(st.tuples(_INSTANTS, _OFFSETS), min_size=1, max_size=30), style=st.integers(0, 3))
def test_mixed_offsets_in_one_column_each_count(moments: list[tuple[datetime, timezone]], style: int) -> None:
    values = []
    for moment, offset in moments:
        text = moment.replace(tzinfo=offset).isoformat(sep=" " if style % 2 else "T")
        if style >= 2:  # +0100 instead of +01:00, and Z for UTC
            text = text[:-3] + text[-2:] if not text.endswith("+00:00") else text[:-6] + "Z"
        values.append(text)
    expected = [m.replace(tzinfo=o).astimezone(UTC) for m, o in moments]
    for spec in (ISO8601, None):
        parsed, used = _parse(values, spec)
        assert used == ISO8601 and parsed == expected, values


ZONES = ("Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo")
# The tz database only promises agreement since 1970: before it, zones were merged (Amsterdam's 1940
# offset of +00:20 is Brussels' +00:00 in the copy polars carries), so Python and polars may differ.
# And polars' rules stop at 2099: summer time in the year 2100 (inside MIN_YEAR..MAX_YEAR) is read as
# winter time. Only a naive time with a time zone chosen is affected; no real log is, so it stays.
_SINCE_1970 = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2099, 12, 30))


@given(moments=st.lists(_SINCE_1970, min_size=1, max_size=30), zone=st.sampled_from(ZONES))
def test_naive_wall_clock_times_in_a_zone_come_back_to_their_instant(
    moments: list[datetime], zone: str
) -> None:
    tz = zoneinfo.ZoneInfo(zone)
    local = [m.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None) for m in moments]
    values = [t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in local]
    # A repeated hour (clocks going back) reads as its first occurrence, which fold=0 is.
    expected = [t.replace(tzinfo=tz, fold=0).astimezone(UTC) for t in local]
    assert _parse(values, ISO8601, zone)[0] == expected


@given(moments=st.lists(_INSTANTS, min_size=1, max_size=30), unit=st.sampled_from((EPOCH_S, EPOCH_MS)))
def test_epoch_numbers_parse_back(moments: list[datetime], unit: str) -> None:
    epoch = datetime(1970, 1, 1)
    step = timedelta(seconds=1) if unit == EPOCH_S else timedelta(milliseconds=1)
    counts = [(m - epoch) // step for m in moments]
    expected = [(epoch + n * step).replace(tzinfo=UTC) for n in counts]
    assert _parse([str(n) for n in counts], unit) == (expected, unit)


@given(
    good=st.lists(_INSTANTS, min_size=1, max_size=10),
    bad=st.sampled_from(
        ("soon", "31/02/2024 10:00", "2024-13-01 00:00:00", "9999-12-31 23:59:59", "50000-01-01")
    ),
    where=st.integers(0, 10),
)
def test_one_bad_value_is_named_with_its_row(good: list[datetime], bad: str, where: int) -> None:
    values = [m.strftime("%Y-%m-%d %H:%M:%S") for m in good]
    row = min(where, len(values))
    values.insert(row, bad)
    with pytest.raises(MiningInputError) as error:
        _parse(values, ISO8601)
    assert f"Column 't' row {row + 1}: '{bad}'" in str(error.value)


@given(log=csv_logs())
@settings(max_examples=20, suppress_health_check=[HealthCheck.too_slow])
def test_an_explicit_mapping_reads_the_same_as_the_guess(folder: Path, log: dict) -> None:
    path = folder / "log.csv"
    path.write_text(log["text"], encoding="utf-8")
    roles = log["roles"]
    explicit = read_log(
        path, ColumnMapping(case=roles["case"], activity=roles["activity"], timestamp=roles["timestamp"])
    )
    guessed = read_log(path)
    assert explicit.frame.select("case", "activity", "timestamp").equals(
        guessed.frame.select("case", "activity", "timestamp")
    )
