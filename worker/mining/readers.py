"""Readers for CSV/TSV, XES and Parquet event logs, all producing an :class:`EventTable`.

* CSV/TSV (optionally ``.gz``): encoding detection (UTF-8, UTF-8 BOM, UTF-16/32 with BOM or
  UTF-16 without BOM, else Windows-1252 / Latin-1), delimiter sniffing over ``, ; TAB |``,
  duplicate header names renamed pandas-style (``Variant``, ``Variant.1``), empty header names
  (e.g. a pandas index column) named ``Unnamed: N``. Parsing is polars' multi-threaded reader with
  every column read as text, so case ids like ``007`` keep their zeros.
* XES / XES.gz: streaming stdlib expat parser with every DTD feature refused up front (no DOCTYPE,
  no entity declarations, no external entities, parameter entities never parsed), which is the
  same defence ``defusedxml`` applies, without the dependency. Expat is used rather than lxml
  ``iterparse`` because it is ~20% faster here and its DOCTYPE callback lets us refuse the
  document before any entity is declared, let alone expanded.
* Parquet: polars' native reader (no pyarrow needed).

All of them keep events in file order; sorting is the miner's job.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import re
import xml.parsers.expat as expat
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import polars as pl

from .errors import MiningInputError
from .progress import Progress, throttled
from .table import (
    ACTIVITY,
    CASE,
    LIFECYCLE,
    RESOURCE,
    START_TIMESTAMP,
    TIMESTAMP,
    EventTable,
    build_table,
)
from .timestamps import ISO8601, check_timezone, detect_format, parse_timestamps

# Decompressed size limit: a small .gz can expand to gigabytes ("zip bomb"); the job should fail
# with a message rather than exhaust the worker's memory.
DEFAULT_MAX_BYTES = 8 * 1024**3
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
_BLANK = re.compile(rb"[\s\x00]*\Z")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass(frozen=True)
class ColumnMapping:
    """Which source columns hold case id, activity, timestamp (+ optional start, resource)."""

    case: str
    activity: str
    timestamp: str
    start_timestamp: str | None = None
    resource: str | None = None
    timestamp_format: str | None = None
    timezone: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class MappingProposal:
    """A guessed mapping; ``missing`` lists roles that could not be guessed."""

    case: str | None = None
    activity: str | None = None
    timestamp: str | None = None
    start_timestamp: str | None = None
    resource: str | None = None
    timestamp_format: str | None = None
    timestamp_format_label: str | None = None
    timestamp_format_ambiguous: bool = False
    missing: list[str] = field(default_factory=list)

    def to_mapping(self) -> ColumnMapping:
        """Turn the proposal into a mapping, or raise if a required role is unknown."""
        if self.case is None or self.activity is None or self.timestamp is None:
            raise MiningInputError(
                "Could not tell which columns hold the "
                + ", ".join(self.missing)
                + "; choose the case id, activity and timestamp columns explicitly."
            )
        return ColumnMapping(
            case=self.case,
            activity=self.activity,
            timestamp=self.timestamp,
            start_timestamp=self.start_timestamp,
            resource=self.resource,
            timestamp_format=self.timestamp_format,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class Preview:
    """First rows of a file as text, for the column-mapping screen."""

    format: str
    columns: list[str]
    rows: list[list[str | None]]
    encoding: str | None = None
    delimiter: str | None = None
    proposal: MappingProposal | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Byte-level helpers


def _report(progress: Progress | None, phase: str, fraction: float) -> None:
    if progress is not None:
        progress(phase, fraction)


def _read_bytes(
    path: Path,
    *,
    limit: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    progress: Progress | None = None,
) -> bytes:
    """Read (and gunzip) a file into memory, refusing to expand beyond ``max_bytes``."""
    total = max(1, path.stat().st_size)
    raw = path.open("rb")
    try:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        chunks: list[bytes] = []
        size = 0
        while True:
            want = _CHUNK if limit is None else min(_CHUNK, limit - size)
            if want <= 0:
                break
            try:
                chunk = stream.read(want)
            except (OSError, EOFError) as exc:
                raise MiningInputError(
                    f"'{path.name}' looks gzip-compressed but cannot be decompressed ({exc}); "
                    "upload it again."
                ) from None
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise MiningInputError(
                    f"'{path.name}' expands to more than {max_bytes // 1024**2} MiB; "
                    "split the log or upload it uncompressed."
                )
            chunks.append(chunk)
            _report(progress, "reading", 0.5 * raw.tell() / total)
        return b"".join(chunks)
    finally:
        raw.close()


def _detect_encoding(head: bytes) -> str | None:
    """Encoding from a BOM or from NUL-byte patterns (UTF-16 without BOM); None = decide later."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith(codecs.BOM_UTF32_LE) or head.startswith(codecs.BOM_UTF32_BE):
        return "utf-32"
    if head.startswith(codecs.BOM_UTF16_LE) or head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16"
    sample = head[:4096]
    if len(sample) >= 4 and sample.count(b"\x00") >= len(sample) // 4:
        # ASCII text in UTF-16 has a NUL in every other byte; which side tells the byte order.
        even = sample[0::2].count(b"\x00")
        odd = sample[1::2].count(b"\x00")
        return "utf-16-le" if odd > even else "utf-16-be"
    return None


def _to_utf8(data: bytes, encoding: str | None) -> tuple[bytes, str]:
    """Return (UTF-8 bytes without BOM, name of the source encoding)."""
    enc = encoding or _detect_encoding(data[:4096])
    if enc is None:
        try:
            data.decode("utf-8")
            return data, "utf-8"
        except UnicodeDecodeError:
            # Excel on Windows writes cp1252 (a Latin-1 superset with € and curly quotes);
            # cp1252 leaves five bytes undefined, so fall back to strict Latin-1 for those files.
            try:
                return data.decode("cp1252").encode("utf-8"), "windows-1252"
            except UnicodeDecodeError:
                return data.decode("latin-1").encode("utf-8"), "latin-1"
    try:
        text = data.decode(enc)
    except (UnicodeDecodeError, LookupError) as exc:
        raise MiningInputError(
            f"The file cannot be decoded as {enc} ({exc.__class__.__name__}); "
            "save it as UTF-8 and upload it again."
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if enc in ("utf-8", "utf-8-sig") and encoding is None:
        return data[3:] if data.startswith(codecs.BOM_UTF8) else data, enc
    return text.encode("utf-8"), enc


def _complete_lines(text: str, max_lines: int) -> list[str]:
    """The first complete lines of a text sample (the last, maybe truncated, line is dropped)."""
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")):
        lines = lines[:-1]
    return lines[:max_lines]


def _sniff_delimiter(sample: str) -> str:
    """Pick the delimiter giving the most, and consistent, fields per row in the sample."""
    lines = _complete_lines(sample, 200)
    best: tuple[float, int, int] | None = None
    choice = ","
    for rank, delim in enumerate(_DELIMITERS):
        try:
            rows = [r for r in csv.reader(io.StringIO("".join(lines)), delimiter=delim) if r]
        except csv.Error:
            continue
        if not rows:
            continue
        width = len(rows[0])
        if width < 2:
            continue
        body = rows[1:] or rows
        consistency = sum(1 for r in body if len(r) == width) / len(body)
        score = (consistency, width, -rank)
        if best is None or score > best:
            best, choice = score, delim
    return choice


def _unique_names(raw: Sequence[str]) -> list[str]:
    """Pandas-style header names: empty -> 'Unnamed: i', duplicates -> 'name.1', 'name.2'."""
    names: list[str] = []
    seen: set[str] = set()
    for i, name in enumerate(raw):
        base = name.strip() if name.strip() else f"Unnamed: {i}"
        candidate = base
        k = 0
        while candidate in seen:
            k += 1
            candidate = f"{base}.{k}"
        seen.add(candidate)
        names.append(candidate)
    return names


@dataclass
class _CsvLayout:
    body: bytes
    encoding: str
    delimiter: str
    names: list[str]
    sample_rows: list[list[str]]


def _csv_layout(data: bytes, name: str, *, encoding: str | None, delimiter: str | None) -> _CsvLayout:
    """Decode, sniff and read the header of CSV bytes; raise a clear error for empty files."""
    # re.match stops at the first non-blank byte, unlike bytes.strip() which copies the file.
    if _BLANK.match(data):
        raise MiningInputError(
            f"'{name}' is empty; export the event log again with a header row and at least one event."
        )
    body, enc = _to_utf8(data, encoding)
    if _BLANK.match(body):
        raise MiningInputError(
            f"'{name}' is empty; export the event log again with a header row and at least one event."
        )
    sample = body[: 256 * 1024].decode("utf-8", errors="ignore")
    if delimiter is not None and delimiter not in _DELIMITERS and len(delimiter) != 1:
        raise MiningInputError(f"Delimiter {delimiter!r} is not a single character.")
    delim = delimiter or _sniff_delimiter(sample)
    try:
        rows = [
            r for r in csv.reader(io.StringIO("".join(_complete_lines(sample, 60))), delimiter=delim) if r
        ]
    except csv.Error as error:
        raise MiningInputError(
            f"'{name}' does not read as a CSV text file ({error}). Is it a binary file with a .csv name? "
            "Export the log again as CSV (UTF-8) or XES."
        ) from error
    if not rows:
        raise MiningInputError(f"'{name}' has no header row; the first line must name the columns.")
    names = _unique_names(rows[0])
    if len(names) < 3:
        raise MiningInputError(
            f"'{name}' has only {len(names)} column(s) with the {_DELIMITER_NAMES.get(delim, repr(delim))} "
            "delimiter; an event log needs at least case id, activity and timestamp columns. "
            "Check the delimiter or export the file again as CSV."
        )
    return _CsvLayout(body=body, encoding=enc, delimiter=delim, names=names, sample_rows=rows[1:51])


def _read_csv_frame(
    layout: _CsvLayout, name: str, indices: list[int] | None, n_rows: int | None = None
) -> pl.DataFrame:
    """Run polars' CSV reader on the decoded body, all columns as text, renamed by position."""
    try:
        frame = pl.read_csv(
            io.BytesIO(layout.body),
            has_header=True,
            separator=layout.delimiter,
            infer_schema=False,
            columns=indices,
            n_rows=n_rows,
            quote_char='"',
            raise_if_empty=False,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, pl.exceptions.ShapeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise MiningInputError(
            f"'{name}' could not be read as {_DELIMITER_NAMES.get(layout.delimiter, repr(layout.delimiter))}-"
            f"separated text ({first}). Check the delimiter and quoting, or export the file again as CSV."
        ) from None
    wanted = indices if indices is not None else list(range(len(layout.names)))
    if frame.width != len(wanted):
        raise MiningInputError(
            f"'{name}': the header has {len(layout.names)} columns but the rows do not match it; "
            "check the delimiter and quoting."
        )
    frame.columns = [layout.names[i] for i in wanted]
    return frame


# --------------------------------------------------------------------------------------------
# Column mapping guesses


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.strip().lower())


# Ordered by confidence: XES standard names first, then common ITSM / process-mining exports.
_CASE_NAMES = (
    "case:concept:name",
    "caseid",
    "case",
    "caseconceptname",
    "casenumber",
    "caseno",
    "number",
    "incidentid",
    "incidentnumber",
    "incident",
    "ticketid",
    "ticketnumber",
    "ticket",
    "requestid",
    "requestnumber",
    "sysid",
    "traceid",
    "processinstance",
    "processinstanceid",
    "orderid",
)
_ACTIVITY_NAMES = (
    "concept:name",
    "activity",
    "activityname",
    "eventname",
    "event",
    "task",
    "taskname",
    "action",
    "step",
    "status",
    "state",
    "incidentstate",
    "eventtype",
    "operation",
    "transition",
)
_TIMESTAMP_NAMES = (
    "time:timestamp",
    "completetimestamp",
    "timestamp",
    "endtimestamp",
    "completetime",
    "endtime",
    "endtimestamp",
    "eventtime",
    "eventtimestamp",
    "sysupdatedon",
    "updatedon",
    "updated",
    "updatedat",
    "datetime",
    "date",
    "time",
    "eventdate",
    "changedate",
    "changedon",
    "modifiedon",
    "createdon",
)
_START_NAMES = (
    "start_timestamp",
    "starttimestamp",
    "starttime",
    "start",
    "time:start",
    "startedon",
    "startedat",
)
_RESOURCE_NAMES = (
    "org:resource",
    "resource",
    "assignedto",
    "assignee",
    "user",
    "username",
    "agent",
    "performer",
    "owner",
    "operator",
    "employee",
    "sysupdatedby",
    "updatedby",
    "actor",
    "executor",
    "analyst",
)
# Fallback for case ids: the name mentions a case/ticket/incident, or ends in "id" / "number".
_CASE_HINT = re.compile(r"case|ticket|incident|request|issue|(^|[^a-z])id$|caseid$|number$|^no$")


def propose_mapping(columns: Sequence[str], sample_rows: Sequence[Sequence[Any]]) -> MappingProposal:
    """Guess case / activity / timestamp / start / resource columns from names and sample values."""
    norm = {c: _norm(c) for c in columns}
    used: set[str] = set()

    def by_name(candidates: Sequence[str]) -> str | None:
        """First unused column whose normalised name is in ``candidates`` (in their order)."""
        wanted = [_norm(c) for c in candidates]
        for w in wanted:
            for col in columns:
                if col not in used and norm[col] == w:
                    return col
        return None

    def values_of(col: str) -> list[str]:
        """Non-empty sample values of a column."""
        idx = list(columns).index(col)
        out = []
        for row in sample_rows:
            if idx < len(row) and row[idx] is not None and str(row[idx]).strip() != "":
                out.append(str(row[idx]))
        return out

    def looks_like_time(col: str) -> bool:
        """True when the sample values parse as dates (bare numbers do not count)."""
        vals = values_of(col)
        if not vals or all(re.fullmatch(r"[+-]?\d+(\.\d+)?", v) for v in vals):
            # Bare numbers are ids or amounts far more often than epoch times; only names say epoch.
            return False
        fmt = detect_format(vals)
        return fmt is not None

    proposal = MappingProposal()
    proposal.case = by_name(_CASE_NAMES)
    if proposal.case:
        used.add(proposal.case)
    proposal.activity = by_name(_ACTIVITY_NAMES)
    if proposal.activity:
        used.add(proposal.activity)
    proposal.timestamp = by_name(_TIMESTAMP_NAMES)
    if proposal.timestamp is None:
        for col in columns:
            if col not in used and "start" not in norm[col] and looks_like_time(col):
                proposal.timestamp = col
                break
    if proposal.timestamp:
        used.add(proposal.timestamp)
    start = by_name(_START_NAMES)
    if start is not None and (not values_of(start) or looks_like_time(start)):
        proposal.start_timestamp = start
        used.add(start)
    proposal.resource = by_name(_RESOURCE_NAMES)
    if proposal.resource:
        used.add(proposal.resource)
    if proposal.case is None:
        for col in columns:
            if col not in used and _CASE_HINT.search(norm[col]) and not looks_like_time(col):
                proposal.case = col
                used.add(col)
                break
    if proposal.timestamp is not None:
        vals = values_of(proposal.timestamp)
        fmt = detect_format(vals) if vals else None
        if fmt is not None:
            proposal.timestamp_format = fmt.spec
            proposal.timestamp_format_label = fmt.label
            proposal.timestamp_format_ambiguous = fmt.ambiguous
    proposal.missing = [
        role
        for role, value in (
            ("case id", proposal.case),
            ("activity", proposal.activity),
            ("timestamp", proposal.timestamp),
        )
        if value is None
    ]
    return proposal


def _check_mapping(mapping: ColumnMapping, columns: Sequence[str], name: str) -> None:
    available = ", ".join(f"'{c}'" for c in columns)
    for role, col in (
        ("case id", mapping.case),
        ("activity", mapping.activity),
        ("timestamp", mapping.timestamp),
        ("start timestamp", mapping.start_timestamp),
        ("resource", mapping.resource),
    ):
        if col is not None and col not in columns:
            raise MiningInputError(
                f"The {role} column '{col}' is not in '{name}'; available columns are {available}."
            )


def _table_from_frame(
    frame: pl.DataFrame, mapping: ColumnMapping, *, source_format: str, row_offset: int = 1
) -> EventTable:
    """Map source columns to the EventTable schema, parsing timestamps (errors name the row)."""
    ts, spec = parse_timestamps(
        frame[mapping.timestamp],
        column=mapping.timestamp,
        spec=mapping.timestamp_format,
        timezone=mapping.timezone,
        row_offset=row_offset,
    )
    cols: dict[str, pl.Series] = {
        CASE: frame[mapping.case].cast(pl.String),
        ACTIVITY: frame[mapping.activity].cast(pl.String),
        TIMESTAMP: ts,
    }
    if mapping.start_timestamp is not None:
        start_fmt = mapping.timestamp_format if mapping.timestamp_format else None
        try:
            cols[START_TIMESTAMP], _ = parse_timestamps(
                frame[mapping.start_timestamp],
                column=mapping.start_timestamp,
                spec=start_fmt,
                timezone=mapping.timezone,
                row_offset=row_offset,
            )
        except MiningInputError:
            # The start column may use another layout than the end column; detect it on its own.
            cols[START_TIMESTAMP], _ = parse_timestamps(
                frame[mapping.start_timestamp],
                column=mapping.start_timestamp,
                timezone=mapping.timezone,
                row_offset=row_offset,
            )
    if mapping.resource is not None:
        cols[RESOURCE] = frame[mapping.resource].cast(pl.String)
    # Empty strings are missing values (pandas reads them as NaN, which pm4py then drops).
    for key in (CASE, ACTIVITY, RESOURCE):
        if key in cols:
            s = cols[key]
            cols[key] = pl.select(pl.when(s == "").then(None).otherwise(s).alias(key)).to_series()
    return build_table(cols, source_format=source_format, timestamp_format=spec)


# --------------------------------------------------------------------------------------------
# CSV


def read_csv(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
    progress: Progress | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> EventTable:
    """Read a CSV/TSV (optionally gzipped) event log; guess the mapping when none is given."""
    progress = throttled(progress)
    path = Path(path)
    _report(progress, "reading", 0.0)
    data = _read_bytes(path, max_bytes=max_bytes, progress=progress)
    layout = _csv_layout(data, path.name, encoding=encoding, delimiter=delimiter)
    del data
    if not layout.sample_rows:
        raise MiningInputError(
            f"'{path.name}' has a header row but no events; export the log again including its rows."
        )
    if mapping is None:
        # The proposal saw 50 rows; let the parser detect the format over the whole column.
        proposal = propose_mapping(layout.names, layout.sample_rows)
        mapping = replace(proposal.to_mapping(), timestamp_format=None)
    _check_mapping(mapping, layout.names, path.name)
    needed = [mapping.case, mapping.activity, mapping.timestamp, mapping.start_timestamp, mapping.resource]
    indices = sorted({layout.names.index(c) for c in needed if c is not None})
    frame = _read_csv_frame(layout, path.name, indices)
    if frame.height == 0:
        raise MiningInputError(
            f"'{path.name}' has a header row but no events; export the log again including its rows."
        )
    _report(progress, "reading", 0.7)
    table = _table_from_frame(frame, mapping, source_format="csv")
    table.notes.insert(
        0, f"Read as {layout.encoding}, {_DELIMITER_NAMES.get(layout.delimiter, layout.delimiter)}-separated."
    )
    _report(progress, "reading", 1.0)
    return table


# --------------------------------------------------------------------------------------------
# XES


class _XesRefused(Exception):
    """Raised inside expat callbacks to abort on forbidden XML constructs."""


class _StopParsing(Exception):
    """Raised inside expat callbacks to stop early (previews)."""


def _refuse_doctype(*_args: object) -> None:
    raise _XesRefused("DOCTYPE")


def _refuse_entity(*_args: object) -> None:
    raise _XesRefused("ENTITY")


def _refuse_external(*_args: object) -> int:
    raise _XesRefused("external ENTITY")


@dataclass
class _XesColumns:
    cases: list[str | None] = field(default_factory=list)
    activities: list[str | None] = field(default_factory=list)
    timestamps: list[str | None] = field(default_factory=list)
    starts: list[str | None] = field(default_factory=list)
    resources: list[str | None] = field(default_factory=list)
    lifecycles: list[str | None] = field(default_factory=list)
    unnamed_traces: int = 0
    orphan_events: int = 0


def _parse_xes(
    path: Path,
    *,
    start_key: str | None,
    progress: Progress | None,
    max_events: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> _XesColumns:
    """Stream an XES file through expat and collect the standard attributes per event."""
    out = _XesColumns()
    acts_append = out.activities.append
    ts_append = out.timestamps.append
    st_append = out.starts.append
    res_append = out.resources.append
    lc_append = out.lifecycles.append
    cases_extend = out.cases.extend

    parser = expat.ParserCreate()
    parser.buffer_text = True
    parser.ordered_attributes = True  # [k1, v1, k2, v2]: cheaper than a dict per element
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external

    # Parser state kept in closure cells: this runs ~2 callbacks per XML element, so every
    # attribute lookup saved matters. nest = depth below the current <event> (-1: outside one).
    nest = -1
    tnest = -1
    act = ts = st = res = lc = None
    cid: str | None = None
    pending = 0
    n_traces = 0
    n_events = 0
    ev_name = "event"
    tr_name = "trace"

    def key_value(attrs: list[str]) -> tuple[str | None, str | None]:
        """(key, value) of an XES attribute element whatever the attribute order."""
        if len(attrs) >= 4 and attrs[0] == "key" and attrs[2] == "value":
            return attrs[1], attrs[3]
        d = dict(zip(attrs[::2], attrs[1::2], strict=False))
        return d.get("key"), d.get("value")

    def start(name: str, attrs: list[str]) -> None:
        """Element start: remember event / trace attributes at the right depth."""
        nonlocal nest, tnest, act, ts, st, res, lc, cid, pending, n_traces
        if nest >= 0:
            nest += 1
            if nest == 1:
                k: str | None
                v: str | None
                if len(attrs) >= 4 and attrs[0] == "key" and attrs[2] == "value":
                    k = attrs[1]
                    v = attrs[3]
                else:
                    k, v = key_value(attrs)
                if k == "concept:name":
                    act = v
                elif k == "time:timestamp":
                    ts = v
                elif k == "org:resource":
                    res = v
                elif k == "lifecycle:transition":
                    lc = v
                elif k == start_key and k is not None:
                    st = v
        elif name == ev_name:
            nest = 0
            act = ts = st = res = lc = None
        elif tnest >= 0:
            tnest += 1
            if tnest == 1:
                k, v = key_value(attrs)
                if k == "concept:name":
                    cid = v
        elif name == tr_name:
            tnest = 0
            pending = 0
            cid = None
            n_traces += 1

    def end(name: str) -> None:
        """Element end: emit an event, or stamp a finished trace's events with its case id."""
        nonlocal nest, tnest, pending, n_events
        if nest > 0:
            nest -= 1
        elif nest == 0:
            nest = -1
            if tnest < 0:
                out.orphan_events += 1  # an <event> outside any <trace> belongs to no case
                return
            acts_append(act)
            ts_append(ts)
            st_append(st)
            res_append(res)
            lc_append(lc)
            pending += 1
        elif tnest > 0:
            tnest -= 1
        elif tnest == 0:
            tnest = -1
            case_id = cid
            if case_id is None:
                out.unnamed_traces += 1
                case_id = f"(unnamed trace {n_traces})"
            cases_extend([case_id] * pending)
            n_events += pending
            if max_events is not None and n_events >= max_events:
                raise _StopParsing

    def root(name: str, attrs: list[str]) -> None:
        """Root element: learn the prefix (e.g. <xes:log>), then hand over to ``start``."""
        nonlocal ev_name, tr_name
        prefix = name.rpartition(":")[0]
        if prefix:
            ev_name, tr_name = prefix + ":event", prefix + ":trace"
        parser.StartElementHandler = start

    parser.StartElementHandler = root
    parser.EndElementHandler = end

    total = max(1, path.stat().st_size)
    raw = path.open("rb")
    try:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        size = 0
        try:
            while True:
                try:
                    chunk = stream.read(_CHUNK)
                except (OSError, EOFError) as exc:
                    raise MiningInputError(
                        f"'{path.name}' looks gzip-compressed but cannot be decompressed ({exc}); "
                        "upload it again."
                    ) from None
                size += len(chunk)
                if size > max_bytes:
                    raise MiningInputError(
                        f"'{path.name}' expands to more than {max_bytes // 1024**2} MiB; split the log first."
                    )
                parser.Parse(chunk, not chunk)
                if not chunk:
                    break
                _report(progress, "reading", 0.9 * raw.tell() / total)
        except _StopParsing:
            pass
        except _XesRefused as exc:
            raise MiningInputError(
                f"'{path.name}' contains a {exc} declaration. XES logs never need one and it can be used to "
                "attack the server (entity expansion, external files), so the file was refused; "
                "export the log again without a DOCTYPE."
            ) from None
        except expat.ExpatError as exc:
            msg = expat.ErrorString(exc.code) if exc.code else str(exc)
            if size == 0 or (not out.activities and n_traces == 0 and "no element found" in msg):
                raise MiningInputError(f"'{path.name}' is empty or is not an XES (XML) file.") from None
            raise MiningInputError(
                f"'{path.name}' is not well-formed XML at line {exc.lineno}, column {exc.offset} ({msg}); "
                "check that the file is complete XES (re-export or re-upload it)."
            ) from None
    finally:
        raw.close()
    return out


def read_xes(
    path: str | Path,
    *,
    timezone: str | None = None,
    start_key: str | None = "start_timestamp",
    progress: Progress | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> EventTable:
    """Read an XES / XES.gz log: trace concept:name = case, event concept:name / time:timestamp.

    ``start_key`` names an event date attribute holding the activity start (pm4py's
    ``start_timestamp`` convention); pass None to ignore start times.
    """
    progress = throttled(progress)
    path = Path(path)
    check_timezone(timezone)
    _report(progress, "reading", 0.0)
    cols = _parse_xes(path, start_key=start_key, progress=progress, max_bytes=max_bytes)
    if not cols.activities:
        raise MiningInputError(
            f"'{path.name}' contains no events inside <trace> elements; is it an XES event log?"
        )
    notes: list[str] = []
    if cols.unnamed_traces:
        notes.append(f"{cols.unnamed_traces} trace(s) had no concept:name and were numbered instead.")
    if cols.orphan_events:
        notes.append(f"{cols.orphan_events} event(s) outside any trace were ignored.")
    ts, spec = parse_timestamps(
        pl.Series("time:timestamp", cols.timestamps, dtype=pl.String),
        column="time:timestamp",
        spec=ISO8601,
        timezone=timezone,
        row_label="event",
    )
    series: dict[str, pl.Series] = {
        CASE: pl.Series(CASE, cols.cases, dtype=pl.String),
        ACTIVITY: pl.Series(ACTIVITY, cols.activities, dtype=pl.String),
        TIMESTAMP: ts,
    }
    if start_key is not None and any(v is not None for v in cols.starts):
        series[START_TIMESTAMP], _ = parse_timestamps(
            pl.Series(start_key, cols.starts, dtype=pl.String),
            column=start_key,
            spec=ISO8601,
            timezone=timezone,
            row_label="event",
        )
    if any(v is not None for v in cols.resources):
        series[RESOURCE] = pl.Series(RESOURCE, cols.resources, dtype=pl.String)
    if any(v is not None for v in cols.lifecycles):
        series[LIFECYCLE] = pl.Series(LIFECYCLE, cols.lifecycles, dtype=pl.String)
    table = build_table(series, source_format="xes", timestamp_format=spec, notes=notes)
    _report(progress, "reading", 1.0)
    return table


# --------------------------------------------------------------------------------------------
# Parquet


def read_parquet(
    path: str | Path, mapping: ColumnMapping | None = None, *, progress: Progress | None = None
) -> EventTable:
    """Read a Parquet event log (typed or text timestamps); guess the mapping when none is given."""
    progress = throttled(progress)
    path = Path(path)
    _report(progress, "reading", 0.0)
    try:
        schema = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise MiningInputError(f"'{path.name}' is not a readable Parquet file ({exc}).") from None
    columns = list(schema)
    if mapping is None:
        head = pl.read_parquet(path, n_rows=50)
        rows = [[None if v is None else str(v) for v in row] for row in head.iter_rows()]
        mapping = replace(propose_mapping(columns, rows).to_mapping(), timestamp_format=None)
    _check_mapping(mapping, columns, path.name)
    needed = [
        c
        for c in (
            mapping.case,
            mapping.activity,
            mapping.timestamp,
            mapping.start_timestamp,
            mapping.resource,
        )
        if c
    ]
    frame = pl.read_parquet(path, columns=list(dict.fromkeys(needed)))
    if frame.height == 0:
        raise MiningInputError(f"'{path.name}' has no rows.")
    table = _table_from_frame(frame, mapping, source_format="parquet")
    _report(progress, "reading", 1.0)
    return table


# --------------------------------------------------------------------------------------------
# Dispatch and preview


def detect_format_of(path: str | Path) -> str:
    """'xes', 'parquet' or 'csv', from content first (uploads get renamed), then the suffix."""
    path = Path(path)
    if not path.exists():
        raise MiningInputError(f"File '{path.name}' does not exist.")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic == b"PAR1":
        return "parquet"
    head = _read_bytes(path, limit=4096)
    enc = _detect_encoding(head)
    text = head.decode(enc or "utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        return "xes"
    suffixes = [s.lower() for s in path.suffixes]
    if ".xes" in suffixes:
        return "xes"
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    return "csv"


def read_log(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    *,
    progress: Progress | None = None,
    delimiter: str | None = None,
    encoding: str | None = None,
    timezone: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> EventTable:
    """Read any supported event log into an EventTable (format detected from the content)."""
    progress = throttled(progress)
    kind = detect_format_of(path)
    if kind == "xes":
        tz = timezone if timezone is not None else (mapping.timezone if mapping else None)
        return read_xes(path, timezone=tz, progress=progress, max_bytes=max_bytes)
    if kind == "parquet":
        return read_parquet(path, mapping, progress=progress)
    return read_csv(
        path, mapping, delimiter=delimiter, encoding=encoding, progress=progress, max_bytes=max_bytes
    )


def preview(path: str | Path, n_rows: int = 20) -> Preview:
    """Columns and the first ``n_rows`` rows (as text) plus a proposed mapping."""
    path = Path(path)
    kind = detect_format_of(path)
    if kind == "xes":
        cols = _parse_xes(path, start_key="start_timestamp", progress=None, max_events=n_rows)
        names = [
            "case:concept:name",
            "concept:name",
            "time:timestamp",
            "org:resource",
            "lifecycle:transition",
            "start_timestamp",
        ]
        data = list(
            zip(
                cols.cases,
                cols.activities,
                cols.timestamps,
                cols.resources,
                cols.lifecycles,
                cols.starts,
                strict=False,
            )
        )[:n_rows]
        keep = [i for i in range(len(names)) if i < 3 or any(r[i] is not None for r in data)]
        rows = [[r[i] for i in keep] for r in data]
        columns = [names[i] for i in keep]
        return Preview(
            format="xes",
            columns=columns,
            rows=rows,
            encoding=None,
            delimiter=None,
            proposal=propose_mapping(columns, rows),
        )
    if kind == "parquet":
        columns = list(pl.read_parquet_schema(path))
        head = pl.read_parquet(path, n_rows=n_rows)
        rows = [[None if v is None else str(v) for v in row] for row in head.iter_rows()]
        return Preview(format="parquet", columns=columns, rows=rows, proposal=propose_mapping(columns, rows))
    # Only the head of a CSV is needed: read 1 MiB and cut it at the last complete line *before*
    # decoding, so a multi-byte character split by the cut cannot make UTF-8 look like Latin-1.
    limit = 1 << 20
    head_bytes = _read_bytes(path, limit=limit)
    encoding: str | None = None
    source_encoding: str | None = None
    if len(head_bytes) >= limit:
        enc = _detect_encoding(head_bytes[:4096])
        if enc is not None and enc.startswith(("utf-16", "utf-32")):
            text = head_bytes.decode(enc, errors="ignore")
            head_bytes = text[: text.rfind("\n") + 1].lstrip("\ufeff").encode("utf-8")
            encoding, source_encoding = "utf-8", enc
        else:
            head_bytes = head_bytes[: head_bytes.rfind(b"\n") + 1]
    layout = _csv_layout(head_bytes, path.name, encoding=encoding, delimiter=None)
    if source_encoding is not None:
        layout.encoding = source_encoding
    frame = _read_csv_frame(layout, path.name, None, n_rows=n_rows)
    rows = [list(r) for r in frame.iter_rows()]
    if not rows:
        raise MiningInputError(
            f"'{path.name}' has a header row but no events; export the log again including its rows."
        )
    return Preview(
        format="csv",
        columns=layout.names,
        rows=rows,
        encoding=layout.encoding,
        delimiter=layout.delimiter,
        proposal=propose_mapping(layout.names, rows),
    )
