"""A bounded fuzz run of the readers (hypothesis), part of every `make test`.

Valid CSV, XES, Parquet and gzipped files are mutated (bytes flipped, cut, repeated, deleted, and tokens that
break parsers inserted: quotes, delimiters, NUL, BOMs, invalid UTF-8, entity and DOCTYPE declarations,
CDATA, stray tags, impossible dates) and fed to what a worker runs: ``preview`` and ``mine`` (read_log
then discover). The property: each gives a result that holds together, or raises MiningInputError with
a message for the uploader. Any other exception, or a call that does not return within a few seconds,
fails the test. The XES parser that splits a document over processes must agree with the one-process
parser on every mutant it accepts.

Bounded by ``max_examples`` (derandomised, so CI sees the same inputs every run): about 20 s on a
busy 2-core machine. ``HYPOTHESIS_PROFILE=explore`` (see test_properties.py) runs many more random
ones; ``FUZZ_EXAMPLES=N`` sets the count here.
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from worker.mining import MiningInputError, discover, preview, read_log, xes_expat, xes_parallel
from worker.mining.readers import _translate_xes_errors
from worker.mining.table import ACTIVITY, CASE, TIMESTAMP
from worker.mining.timestamps import MAX_YEAR, MIN_YEAR

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "0")) or None
HANG_S = 10  # a call that takes this long is a hang (the files are at most a few KiB)

T = TypeVar("T")

CSV_SEED = (
    "Case ID,Activity,Timestamp,Resource,Priority\n"
    "INC001,Logged,2024-03-01 08:00:00,Ann,1\n"
    'INC001,"Assigned, to L2",2024-03-01 08:30:00,Bob,1\n'
    "INC002,Logged,2024-03-01T09:00:00+01:00,Zoë,2\n"
    'INC001,"Say ""hi""",2024-03-01 10:00:00.250,Ann,1\n'
    "INC002,Réparé,2024-03-02 11:00:00,Zoë,2\n"
    "INC001,Closed,2024-03-03 12:00:00,,1\n"
).encode()

XES_SEED = b"""<?xml version="1.0" encoding="UTF-8"?>
<log xes.version="1.0" xmlns="http://www.xes-standard.org/">
  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>
  <global scope="event"><string key="concept:name" value="__INVALID__"/></global>
  <!-- an export comment with </trace> in it -->
  <trace>
    <string key="concept:name" value="case-1"/>
    <event>
      <string key="concept:name" value="Register &amp; check"/>
      <string key="org:resource" value="Ann"/>
      <string key="lifecycle:transition" value="complete"/>
      <date key="time:timestamp" value="2024-03-01T08:00:00.000+01:00"/>
      <list key="tags"><values><string key="tag" value="x"/></values></list>
    </event>
    <event>
      <string value="Decide" key="concept:name"/>
      <date key="start_timestamp" value="2024-03-01T08:30:00Z"/>
      <date key="time:timestamp" value="2024-03-01T09:00:00Z"/>
    </event>
  </trace>
  <trace>
    <string key="concept:name" value="case-2"/>
    <event><string key="concept:name" value="Register &amp; check"/>
      <date key="time:timestamp" value="2024-03-02T08:00:00Z"/></event>
    <event><string key="concept:name" value="R\xc3\xa9par\xc3\xa9"/>
      <date key="time:timestamp" value="2024-03-02T10:00:00Z"/></event>
  </trace>
</log>
"""


def _parquet_seed() -> bytes:
    buffer = io.BytesIO()
    pl.read_csv(CSV_SEED, infer_schema=False).write_parquet(buffer)
    return buffer.getvalue()


PARQUET_SEED = _parquet_seed()

TOKENS = [
    b'"',
    b'""',
    b",",
    b";",
    b"\t",
    b"|",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\x1a",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xe9",
    b"\xc3",
    b"\xf0\x9f\x98",
    b"<",
    b">",
    b"&",
    b"&amp;",
    b"&#0;",
    b"&#x110000;",
    b"&undefined;",
    b"<!DOCTYPE log>",
    b'<!DOCTYPE log [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    b'<!ENTITY a "b">',
    b"<![CDATA[",
    b"]]>",
    b"<?pi x?>",
    b"<!--",
    b"-->",
    b"<trace>",
    b"</trace>",
    b"<event>",
    b"</event>",
    b"</log>",
    b'<string key="concept:name" value="',
    b'<date key="time:timestamp" value="9999-12-31T23:59:59"/>',
    b"9999-12-31 23:59:59",
    b"50000-01-01",
    b"2024-13-45 25:61:61",
    b"1e308",
    b"-",
    b"NaN",
    b"\x1f\x8b",
    b"PAR1",
    b"A" * 70_000,  # longer than a field may be
]


@st.composite
def mutants(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with 1-6 random mutations."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(("flip", "token", "bytes", "delete", "repeat", "cut")))
        if kind == "flip" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif kind == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif kind == "bytes":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            piece = data[at : at + draw(st.integers(1, 200))]
            data[at:at] = piece * draw(st.integers(1, 50))
        elif kind == "cut":
            del data[at:]
    return bytes(data)


@contextmanager
def no_hang(what: str) -> Iterator[None]:
    def _alarm(*_: Any) -> None:
        raise TimeoutError(f"{what} did not return within {HANG_S} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def outcome(what: str, call: Callable[[], T]) -> T | MiningInputError:
    """The call's result, or the MiningInputError it raised (any other exception propagates)."""
    with no_hang(what):
        try:
            return call()
        except MiningInputError as error:
            assert str(error).strip() and "Traceback" not in str(error), repr(error)
            return error


def check_mining(path: Path) -> None:
    """What the worker does with an upload: preview it, then read and discover it."""
    seen = outcome("preview", lambda: preview(path, n_rows=20))
    if not isinstance(seen, MiningInputError):
        assert seen.columns and len(set(seen.columns)) == len(seen.columns)
        assert all(len(row) == len(seen.columns) for row in seen.rows)
    table = outcome("read_log", lambda: read_log(path))
    if isinstance(table, MiningInputError):
        return
    frame = table.frame
    assert {CASE, ACTIVITY, TIMESTAMP} <= set(frame.columns)
    assert frame.select(pl.col(CASE, ACTIVITY, TIMESTAMP).null_count().sum()).row(0) == (0, 0, 0)
    assert frame[TIMESTAMP].dtype == pl.Datetime("ns", "UTC")
    if frame.height:
        years = frame[TIMESTAMP].dt.year()
        assert years.min() >= MIN_YEAR and years.max() <= MAX_YEAR  # type: ignore[operator]
    result = outcome("discover", lambda: discover(table))
    if not isinstance(result, MiningInputError):
        assert result.summary.n_events == table.n_events
        result.to_dict()


def _settings(examples: int) -> settings:
    return settings(
        max_examples=EXAMPLES or examples,
        deadline=None,  # a hang is caught by the alarm; time per example varies on a shared machine
        derandomize=EXAMPLES is None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="jl-fuzz-") as tmp:
        yield Path(tmp)


def test_the_seeds_are_valid(folder: Path) -> None:
    for name, data, events in (
        ("seed.csv", CSV_SEED, 6),
        ("seed.xes", XES_SEED, 4),
        ("seed.parquet", PARQUET_SEED, 6),
    ):
        path = folder / name
        path.write_bytes(data)
        assert read_log(path).n_events == events


@_settings(800)
@given(data=mutants(CSV_SEED), name=st.sampled_from(("log.csv", "log.tsv", "log.xes")))
def test_mutated_csv(folder: Path, data: bytes, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    check_mining(path)


@_settings(800)
@given(data=mutants(XES_SEED), name=st.sampled_from(("log.xes", "log.csv")))
def test_mutated_xes(folder: Path, data: bytes, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    check_mining(path)


@_settings(300)
@given(
    data=st.one_of(
        mutants(gzip.compress(CSV_SEED)),  # a damaged container
        mutants(gzip.compress(XES_SEED)),
        mutants(CSV_SEED).map(gzip.compress),  # a sound container around damaged content
        mutants(XES_SEED).map(gzip.compress),
    ),
    name=st.sampled_from(("log.csv.gz", "log.xes.gz")),
)
def test_mutated_gzip(folder: Path, data: bytes, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    check_mining(path)


@_settings(300)
@given(data=mutants(PARQUET_SEED), name=st.sampled_from(("log.parquet", "log.csv")))
def test_mutated_parquet(folder: Path, data: bytes, name: str) -> None:
    path = folder / name
    path.write_bytes(data)
    check_mining(path)


_XML_TEXT = st.text(
    alphabet=st.characters(categories=("L", "N", "P", "S", "Zs"), exclude_characters="\ufffe\uffff"),
    max_size=10,
).map(lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;").replace("'", "&apos;"))
_ATTRIBUTE_VALUE = st.one_of(_XML_TEXT, st.sampled_from(("&#233;t&#xE9;", "a&amp;b", "x&lt;/trace&gt;", "")))
# What may sit between elements: whitespace, and comments, CDATA or PIs holding a close tag.
_FILLER = st.sampled_from(
    ("", "\n  ", "<!-- </trace> -->", "<?pi </trace>?>", "<![CDATA[</trace>]]>", "<!---->", "\t")
)


@st.composite
def xes_documents(draw: st.DrawFn) -> bytes:
    """A well-formed XES document with awkward but valid content: entities, comments that hold
    ``</trace>``, CDATA, attribute orders, nested attributes, events outside traces, a namespace prefix."""
    prefix = draw(st.sampled_from(("", "xes:")))

    def attribute(key: str, kind: str = "string") -> str:
        value = draw(_ATTRIBUTE_VALUE) if kind == "string" else "2024-03-01T08:00:00Z"
        if draw(st.booleans()):
            return f'<{prefix}{kind} key="{key}" value="{value}"/>'
        return f"<{prefix}{kind} value='{value}' key='{key}'></{prefix}{kind}>"

    def event() -> str:
        parts = [attribute("concept:name"), attribute("time:timestamp", "date")]
        if draw(st.booleans()):
            parts.append(attribute("org:resource"))
        if draw(st.booleans()):
            nested = f"<{prefix}values>{attribute('concept:name')}</{prefix}values>"
            parts.append(f'<{prefix}list key="l">{nested}</{prefix}list>')
        parts = draw(st.permutations(parts))
        return f"<{prefix}event>{draw(_FILLER)}{''.join(parts)}</{prefix}event>"

    traces = []
    for _ in range(draw(st.integers(1, 8))):
        events = [event() for _ in range(draw(st.integers(0, 4)))]
        name = attribute("concept:name")  # every trace named: unnamed ones are parsed serially anyway
        traces.append(
            f"<{prefix}trace>{name}{draw(_FILLER)}{''.join(events)}</{prefix}trace >{draw(_FILLER)}"
        )
    orphan = event() if draw(st.booleans()) else ""
    xmlns = ' xmlns:xes="http://www.xes-standard.org/"' if prefix else ""
    head = draw(
        st.sampled_from(('<?xml version="1.0" encoding="UTF-8"?>\n', "", "\ufeff", "<!-- export -->\n"))
    )
    body = f"<{prefix}log{xmlns} xes.version='1.0'>{orphan}{''.join(traces)}</{prefix}log>\n"
    return (head + body).encode("utf-8")


@_settings(100)
@given(data=st.one_of(xes_documents(), xes_documents().flatmap(mutants), mutants(XES_SEED)))
def test_the_split_xes_parser_agrees_with_the_serial_one(
    folder: Path, data: bytes, monkeypatch_module: pytest.MonkeyPatch
) -> None:
    """Parsed on two processes (any size), a document gives the one-process columns, or is handed back
    (then the serial parser reads it). A well-formed document always reads serially."""
    with no_hang("xes_parallel.parse"):
        split = xes_parallel.parse(data, start_key="start_timestamp", parts=2)
    serial = outcome(
        "serial parse",
        lambda: _translate_xes_errors(
            "log.xes", lambda out: xes_expat.parse([data], out, start_key="start_timestamp")
        ),
    )
    if split is None:
        return
    assert not isinstance(serial, MiningInputError), (
        f"split parse accepted what the serial one refuses: {serial}"
    )
    for name, series in split.columns.items():
        assert series.to_list() == getattr(serial, name), name
    assert (split.unnamed_traces, split.orphan_events) == (serial.unnamed_traces, serial.orphan_events)


@_settings(50)
@given(data=xes_documents())
def test_well_formed_xes_is_read_through_the_split_parser(
    folder: Path, data: bytes, monkeypatch_module: pytest.MonkeyPatch
) -> None:
    path = folder / "log.xes"
    path.write_bytes(data)
    table = outcome("read_log", lambda: read_log(path))
    if isinstance(table, MiningInputError):  # a document whose traces hold no event at all
        assert "contains no events inside <trace> elements" in str(table), table
        return
    check_mining(path)


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """The split parser on documents of any size (it normally starts at 16 MiB)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(xes_parallel, "PARALLEL_MIN_BYTES", 0)
        yield patch
