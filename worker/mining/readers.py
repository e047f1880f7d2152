"""Readers for CSV/TSV, XES and Parquet event logs, all producing an :class:`EventTable`.

* CSV/TSV (optionally ``.gz``): encoding detection (UTF-8, UTF-8 BOM, UTF-16/32 with BOM or
  UTF-16 without BOM, else Windows-1252 / Latin-1), delimiter sniffing over ``, ; TAB |``,
  duplicate header names renamed pandas-style (``Variant``, ``Variant.1``), empty header names
  (e.g. a pandas index column) named ``Unnamed: N``. Parsing is polars' multi-threaded reader with
  every column read as text, so case ids like ``007`` keep their zeros.
* XES / XES.gz: stdlib expat (:mod:`xes_expat`) with every DTD feature refused up front (no
  DOCTYPE, no entity declarations, no external entities, parameter entities never parsed), which
  is the same defence ``defusedxml`` applies, without the dependency. Documents of 16 MiB and more
  are cut after ``</trace>`` tags and parsed on every core (:mod:`xes_parallel`); anything unusual
  falls back to one streaming parser, which also words every error.
* Parquet: polars' native reader (no pyarrow needed).

All of them keep events in file order; sorting is the miner's job.

Hostile input (each refused with a MiningInputError naming the limit, row or line, before a large
DataFrame exists; the limits are the module constants below):

* decompression is streamed and capped (``DEFAULT_MAX_BYTES``, ``MAX_COMPRESSION_RATIO``), so a
  gzip bomb stops after 16 MiB of output; a plain file over the cap is refused before reading;
* a binary file named .csv (more than 1% control bytes in its head) is refused as not text;
* CSV: at most ``MAX_COLUMNS`` columns, ``MAX_LINE_BYTES`` per physical line, ``MAX_FIELD_BYTES``
  per value (header names, preview rows, mapped columns; XES: case, activity, resource values);
* timestamps that do not parse, or fall outside the years 1900-2100, are refused naming the column,
  row and value (see :mod:`timestamps`);
* mixed encodings: a file that is UTF-8 but also contains bytes that are not (Latin-1 rows pasted
  into a UTF-8 export) is refused naming the first bad line, because decoding it either way would
  silently split one activity into two spellings. A file with no UTF-8 multi-byte sequence at all
  is taken as Windows-1252 (Latin-1 for its five undefined bytes), as Excel writes it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
import xml.parsers.expat as expat
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from . import xes_expat, xes_parallel
from .errors import MiningInputError
from .progress import Progress, throttled
from .table import (
    ACTIVITY,
    ATTRIBUTE_PREFIX,
    CASE,
    LIFECYCLE,
    RESOURCE,
    START_TIMESTAMP,
    TIMESTAMP,
    EventTable,
    build_table,
)
from .timestamps import ISO8601, check_timezone, detect_format, parse_timestamps

# ---- Limits on hostile or broken input. Each one turns "the worker ran out of memory / hung" into
# a MiningInputError that names the limit, found before any large DataFrame is built. Functions
# read them at call time, so a deployment (or a test) can change them on the module.

# Bytes of text after decompression. The web app caps uploads at 1 GiB; the CSV reader keeps the
# whole text in memory plus the parsed columns (~2-3x the text), so 4 GiB of text is about what a
# 24 GiB worker can mine (~50M events). A "gzip bomb" (KiB that inflate to TiB) stops here at the
# latest, having held at most this much.
DEFAULT_MAX_BYTES = 4 * 1024**3
# Decompressed / compressed size. Real event logs compress 5-40x (CSV ~10x, XES ~20x); deflate tops
# out near 1030x, which is what bombs use. Checked once MIN_RATIO_CHECK_BYTES have come out, so a
# bomb is refused after ~16 MiB (a fraction of a second, and a small part of a work horse's 200 MiB
# budget: the output is held until then) instead of after DEFAULT_MAX_BYTES.
MAX_COMPRESSION_RATIO = 250
MIN_RATIO_CHECK_BYTES = 16 * 1024**2
# Columns in a CSV header. ITSM exports have tens, wide ones a few hundred; 100,000 columns is an
# attack on the parser (a schema and a column buffer each) or the wrong delimiter.
MAX_COLUMNS = 1_000
# One field (CSV cell, XES attribute value). Case ids, activity labels and resource names are short;
# a 64 KiB+ value is a runaway quote or a pasted document, and it would be copied into every figure
# (DFG labels, variants) and the stored JSON result.
MAX_FIELD_BYTES = 64 * 1024
# One physical CSV line. A 1 MiB+ line is a file without line breaks (wrong format, or everything
# inside one unterminated quote); refusing it keeps the parser from building one gigantic row.
MAX_LINE_BYTES = 1024 * 1024
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
_BLANK = re.compile(rb"[\s\x00]*\Z")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_T = TypeVar("_T")


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


def _limit(max_bytes: int | None) -> int:
    return DEFAULT_MAX_BYTES if max_bytes is None else max_bytes


def _mib(n: int) -> str:
    return f"{n / 1024**2:,.0f} MiB" if n >= 1024**2 else f"{n:,} bytes"


def _chunks(
    path: Path,
    *,
    max_bytes: int | None = None,
    limit: int | None = None,
    progress: Progress | None = None,
    progress_share: float = 0.5,
) -> Iterator[bytes]:
    """Stream a file's bytes (gunzipped when it starts with the gzip magic), enforcing the caps.

    ``limit`` stops quietly after that many bytes (previews); ``max_bytes`` and the compression
    ratio raise. Decompression is incremental, so nothing beyond one chunk is held here.
    """
    cap = _limit(max_bytes)
    total = max(1, path.stat().st_size)
    with path.open("rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        if not gz and limit is None and total > cap:
            raise MiningInputError(
                f"'{path.name}' is {_mib(total)}, more than the {_mib(cap)} limit; "
                "split the log into smaller files."
            )
        stream: io.BufferedIOBase = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        size = 0
        while True:
            want = _CHUNK if limit is None else min(_CHUNK, limit - size)
            if want <= 0:
                return
            try:
                chunk = stream.read(want)
            except (OSError, EOFError, zlib.error) as exc:
                raise MiningInputError(
                    f"'{path.name}' looks gzip-compressed but cannot be decompressed ({exc}); "
                    "upload it again."
                ) from None
            if not chunk:
                return
            size += len(chunk)
            if size > cap:
                raise MiningInputError(
                    f"'{path.name}' expands to more than the {_mib(cap)} limit"
                    f"{' when decompressed' if gz else ''}; split the log into smaller files."
                )
            if gz and size >= MIN_RATIO_CHECK_BYTES and size > MAX_COMPRESSION_RATIO * max(1, raw.tell()):
                raise MiningInputError(
                    f"'{path.name}' expands more than {MAX_COMPRESSION_RATIO}x when decompressed (over "
                    f"{_mib(size)} from {_mib(raw.tell())}); event logs compress far less, so this looks "
                    "like a decompression bomb and was refused. If it is a real log, upload it uncompressed."
                )
            yield chunk
            if progress is not None:
                progress("reading", progress_share * raw.tell() / total)


def _read_bytes(
    path: Path,
    *,
    limit: int | None = None,
    max_bytes: int | None = None,
    progress: Progress | None = None,
) -> bytes:
    """Read (and gunzip) a file into memory, refusing to expand beyond ``max_bytes``."""
    if limit is None:
        with path.open("rb") as fh:
            plain = fh.read(2) != b"\x1f\x8b"
        if plain and path.stat().st_size <= _limit(max_bytes):
            # One read into one bytes object: no chunk list to join (a copy of the whole file).
            data = path.read_bytes()
            if len(data) <= _limit(max_bytes):
                if progress is not None:
                    progress("reading", 0.5)
                return data
    return b"".join(_chunks(path, max_bytes=max_bytes, limit=limit, progress=progress))


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


# A valid UTF-8 multi-byte sequence (2-4 bytes). Latin-1 / cp1252 text almost never contains one by
# accident (it would need e.g. "Ã©"), so its presence means the file was (mostly) written as UTF-8.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _line_of(data: bytes, pos: int) -> tuple[int, int]:
    """1-based (line, column in bytes) of byte offset ``pos``."""
    line_start = data.rfind(b"\n", 0, pos) + 1
    return data.count(b"\n", 0, pos) + 1, pos - line_start + 1


def _to_utf8(data: bytes, encoding: str | None, name: str = "the file") -> tuple[bytes, str]:
    """Return (UTF-8 bytes without BOM, name of the source encoding).

    Without a BOM or an explicit encoding: valid UTF-8 is taken as is; a file with no UTF-8
    multi-byte sequence at all is legacy Windows-1252 (else Latin-1) and is converted as a whole;
    a file with *both* valid UTF-8 sequences and bytes that are not UTF-8 mixes encodings (rows
    pasted from another system) and is refused naming the first bad line: decoding it either way
    would silently split one activity into two spellings ("Réparé" and "RÃ©parÃ©").
    """
    enc = encoding or _detect_encoding(data[:4096])
    if enc is None:
        if data.isascii():  # ~100x faster than decoding, and most exports are plain ASCII
            return data, "utf-8"
        try:
            data.decode("utf-8")
            return data, "utf-8"
        except UnicodeDecodeError as exc:
            if _UTF8_MULTIBYTE.search(data) is not None:
                line, col = _line_of(data, exc.start)
                raise MiningInputError(
                    f"'{name}' mixes text encodings: it is UTF-8, but line {line} (byte {col}) has the byte "
                    f"0x{data[exc.start]:02X}, which is not UTF-8 (probably Latin-1 / Windows-1252 text "
                    "pasted in). Save the whole file as UTF-8 and upload it again."
                ) from None
            # Excel on Windows writes cp1252 (a Latin-1 superset with € and curly quotes);
            # cp1252 leaves five bytes undefined, so fall back to strict Latin-1 for those files.
            try:
                return data.decode("cp1252").encode("utf-8"), "windows-1252"
            except UnicodeDecodeError:
                return data.decode("latin-1").encode("utf-8"), "latin-1"
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        where = ""
        if enc.replace("-", "").startswith("utf8"):
            line, col = _line_of(data, exc.start)
            where = f" at line {line} (byte {col})"
        raise MiningInputError(
            f"'{name}' cannot be decoded as {enc}{where}; save it as UTF-8 and upload it again."
        ) from None
    except LookupError:
        raise MiningInputError(f"Unknown text encoding '{enc}'; use e.g. utf-8 or latin-1.") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if enc in ("utf-8", "utf-8-sig") and encoding is None:
        return data[3:] if data.startswith(codecs.BOM_UTF8) else data, enc
    return text.encode("utf-8"), enc


# Bytes that text never holds (C0 controls other than TAB, LF, VT, FF, CR). Binary formats are full of
# them (~10% of random bytes); a text export has none, or a stray one in a free-text field.
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_BINARY_KINDS = (
    (b"PK\x03\x04", "a ZIP archive, such as an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
)


def _refuse_binary(head: bytes, name: str) -> None:
    """Refuse a file whose head is mostly not text (binary junk named .csv), saying what it looks like."""
    controls = len(_CONTROL_BYTES.findall(head))
    if controls == 0 or controls * 100 < len(head):
        return
    kind = next((f", it looks like {what}" for magic, what in _BINARY_KINDS if head.startswith(magic)), "")
    raise MiningInputError(
        f"'{name}' is not a text file ({controls:,} of its first {len(head):,} bytes are binary control "
        f"codes{kind}). Export the log again as CSV (UTF-8 text) or XES and upload that file."
    )


def _check_line_lengths(body: bytes, name: str) -> None:
    """Refuse a physical line longer than MAX_LINE_BYTES.

    From each line start, the last newline within MAX_LINE_BYTES + 1 bytes (memrchr) proves every
    line up to it short enough, so a 1 GiB file takes ~1,000 steps rather than one per line.
    """
    cap = MAX_LINE_BYTES
    size = len(body)
    start = 0
    while size - start > cap:
        newline = body.rfind(b"\n", start, start + cap + 1)
        if newline < 0:
            end = body.find(b"\n", start)
            length = (end if end >= 0 else size) - start
            raise _line_too_long(name, body.count(b"\n", 0, start) + 1, length)
        start = newline + 1


def _line_too_long(name: str, line: int, size: int | None) -> MiningInputError:
    length = f"is {size:,} bytes long" if size is not None else f"is longer than {_mib(MAX_LINE_BYTES)}"
    return MiningInputError(
        f"'{name}': line {line} {length}; lines longer than {_mib(MAX_LINE_BYTES)} are not supported. "
        "Is this really a CSV event log (one event per line), or is a quote left open?"
    )


def _field_too_long(name: str, where: str, size: int) -> MiningInputError:
    return MiningInputError(
        f"'{name}': {where} is {size:,} bytes long; values longer than {MAX_FIELD_BYTES // 1024} KiB are "
        "not supported for case ids, activities, resources or column names. Check the delimiter and "
        "quoting (a quote left open swallows the following rows)."
    )


def _check_field_lengths(frame: pl.DataFrame, name: str, *, row_label: str = "row") -> None:
    """Refuse any text value longer than MAX_FIELD_BYTES, naming the column and row."""
    text_cols = [c for c, t in frame.schema.items() if t == pl.String]
    if not text_cols or frame.height == 0:
        return
    longest = frame.select(pl.col(text_cols).str.len_bytes().max()).row(0)
    for col, size in zip(text_cols, longest, strict=True):
        if size is not None and size > MAX_FIELD_BYTES:
            lengths = frame[col].str.len_bytes()
            row = int((lengths > MAX_FIELD_BYTES).arg_true()[0]) + 1
            raise _field_too_long(name, f"column '{col}' {row_label} {row}", int(lengths[row - 1]))


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
    if encoding is None and _detect_encoding(data[:4096]) is None:  # UTF-16/32 text has NUL bytes
        _refuse_binary(data[: 64 * 1024], name)
    body, enc = _to_utf8(data, encoding, name)
    if _BLANK.match(body):
        raise MiningInputError(
            f"'{name}' is empty; export the event log again with a header row and at least one event."
        )
    _check_line_lengths(body, name)
    # The sample always holds the whole header line (<= MAX_LINE_BYTES after the check above).
    header_end = body.find(b"\n")
    sample = body[: max(256 * 1024, header_end + 1 + 64 * 1024)].decode("utf-8", errors="ignore")
    if delimiter is not None and delimiter not in _DELIMITERS and len(delimiter) != 1:
        raise MiningInputError(f"Delimiter {delimiter!r} is not a single character.")
    delim = delimiter or _sniff_delimiter(sample)
    try:
        rows = [
            r for r in csv.reader(io.StringIO("".join(_complete_lines(sample, 60))), delimiter=delim) if r
        ]
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise _field_too_long(name, "a value in the first lines", csv.field_size_limit()) from None
        raise MiningInputError(
            f"'{name}' does not read as a CSV text file ({error}). Is it a binary file with a .csv name? "
            "Export the log again as CSV (UTF-8) or XES."
        ) from error
    if not rows:
        raise MiningInputError(f"'{name}' has no header row; the first line must name the columns.")
    if len(rows[0]) > MAX_COLUMNS:
        raise MiningInputError(
            f"'{name}' has {len(rows[0]):,} columns with the {_DELIMITER_NAMES.get(delim, repr(delim))} "
            f"delimiter; at most {MAX_COLUMNS:,} are supported. Export only the columns the event log needs "
            "(case id, activity, timestamp, resource, ...)."
        )
    for i, raw_name in enumerate(rows[0]):
        size = len(raw_name.encode("utf-8"))
        if size > MAX_FIELD_BYTES:
            raise _field_too_long(name, f"the name of column {i + 1}", size)
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
            layout.body,
            has_header=True,
            separator=layout.delimiter,
            infer_schema=False,
            columns=indices,
            n_rows=n_rows,
            quote_char='"',
            raise_if_empty=False,
        )
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:  # its header reads otherwise
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
    _check_field_lengths(frame, name)
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


# Columns with at most this many distinct values are kept as attributes to filter on (priority,
# category, channel); free text and ids are not, so memory stays bounded.
MAX_ATTRIBUTE_VALUES = 50
MAX_ATTRIBUTE_COLUMNS = 20


def _attribute_candidates(
    names: Sequence[str], sample_rows: Sequence[Sequence[Any]], mapping: ColumnMapping
) -> list[str]:
    """Unmapped columns that look categorical in the sample (few distinct values), read for filtering."""
    mapped = {mapping.case, mapping.activity, mapping.timestamp, mapping.start_timestamp, mapping.resource}
    candidates = []
    for index, name in enumerate(names):
        if name in mapped or not name.strip() or name.lower().startswith("unnamed"):
            continue
        values = {row[index] for row in sample_rows if index < len(row) and row[index] not in (None, "")}
        if values and len(values) <= max(2, min(20, len(sample_rows) // 2)):
            candidates.append(name)
        if len(candidates) >= MAX_ATTRIBUTE_COLUMNS:
            break
    return candidates


def _attribute_columns(frame: pl.DataFrame, mapping: ColumnMapping) -> dict[str, pl.Series]:
    """The unmapped low-cardinality columns, as "attr:<name>" string series."""
    mapped = {mapping.case, mapping.activity, mapping.timestamp, mapping.start_timestamp, mapping.resource}
    kept: dict[str, pl.Series] = {}
    for name in frame.columns:
        if name in mapped or not name.strip() or len(kept) >= MAX_ATTRIBUTE_COLUMNS:
            continue
        series = frame[name]
        if series.null_count() == series.len() or series.n_unique() > MAX_ATTRIBUTE_VALUES:
            continue
        kept[ATTRIBUTE_PREFIX + name] = series.cast(pl.String)
    return kept


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
    cols.update(_attribute_columns(frame, mapping))
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
    max_bytes: int | None = None,
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
    needed += _attribute_candidates(layout.names, layout.sample_rows, mapping)
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


def _translate_xes_errors(name: str, run: Callable[[xes_expat.XesColumns], object]) -> xes_expat.XesColumns:
    """Run an expat parse into fresh columns, turning XML problems into MiningInputError."""
    out = xes_expat.XesColumns()
    try:
        run(out)
    except xes_expat.XesRefused as exc:
        raise MiningInputError(
            f"'{name}' contains a {exc} declaration. XES logs never need one and it can be used to "
            "attack the server (entity expansion, external files), so the file was refused; "
            "export the log again without a DOCTYPE."
        ) from None
    except expat.ExpatError as exc:
        msg = expat.ErrorString(exc.code) if exc.code else str(exc)
        if out.size == 0 or (not out.activities and out.n_traces == 0 and "no element found" in msg):
            raise MiningInputError(f"'{name}' is empty or is not an XES (XML) file.") from None
        raise MiningInputError(
            f"'{name}' is not well-formed XML at line {exc.lineno}, column {exc.offset} ({msg}); "
            "check that the file is complete XES (re-export or re-upload it)."
        ) from None
    except (LookupError, ValueError) as exc:  # expat only decodes single-byte encodings it can look up
        raise MiningInputError(
            f"'{name}' declares a text encoding the XML reader cannot use ({exc}); save the file as UTF-8 "
            '(encoding="UTF-8" in its first line) and upload it again.'
        ) from None
    return out


def _parse_xes(
    path: Path,
    *,
    start_key: str | None,
    progress: Progress | None,
    max_events: int | None = None,
    max_bytes: int | None = None,
) -> xes_expat.XesColumns:
    """Stream an XES file through one expat parser and collect the standard attributes per event."""
    chunks = _chunks(path, max_bytes=max_bytes, progress=progress, progress_share=0.9)
    try:
        return _translate_xes_errors(
            path.name,
            lambda out: xes_expat.parse(chunks, out, start_key=start_key, max_events=max_events),
        )
    finally:
        chunks.close()


def _drain(stack: list[bytes]) -> Iterator[bytes]:
    """Pop and yield the items of a reversed list, so each chunk is freed once parsed."""
    while stack:
        yield stack.pop()


def _xes_series(
    path: Path, *, start_key: str | None, progress: Progress | None, max_bytes: int | None
) -> tuple[dict[str, pl.Series], int, int]:
    """Event columns of an XES file as String series, plus (unnamed traces, orphan events).

    A document of PARALLEL_MIN_BYTES..PARALLEL_MAX_BYTES is parsed on all cores
    (:mod:`xes_parallel`); anything else, or anything that module declines, goes through one
    streaming expat parser, which also gives the exact error for a broken file.
    """
    chunks = _chunks(path, max_bytes=max_bytes, progress=progress, progress_share=0.5)
    try:
        held: list[bytes] = []
        size = 0
        complete = True
        for chunk in chunks:
            held.append(chunk)
            size += len(chunk)
            if size > xes_parallel.PARALLEL_MAX_BYTES:
                complete = False
                break
        source: Iterator[bytes]
        if complete and size >= xes_parallel.PARALLEL_MIN_BYTES and xes_parallel.cpu_count() > 1:
            data = b"".join(held)
            held.clear()
            with path.open("rb") as fh:
                plain = fh.read(2) != b"\x1f\x8b"
            parsed = xes_parallel.parse(data, start_key=start_key, source=path if plain else None)
            if parsed is not None:
                return parsed.columns, parsed.unnamed_traces, parsed.orphan_events
            source = (data[i : i + _CHUNK] for i in range(0, len(data), _CHUNK))
        else:
            held.reverse()  # handed out (and released) one by one, oldest first
            source = itertools.chain(_drain(held), chunks)
        cols = _translate_xes_errors(path.name, lambda out: xes_expat.parse(source, out, start_key=start_key))
    finally:
        chunks.close()
    series = {n: pl.Series(n, getattr(cols, n), dtype=pl.String) for n in xes_expat.COLUMNS}
    return series, cols.unnamed_traces, cols.orphan_events


def read_xes(
    path: str | Path,
    *,
    timezone: str | None = None,
    start_key: str | None = "start_timestamp",
    progress: Progress | None = None,
    max_bytes: int | None = None,
) -> EventTable:
    """Read an XES / XES.gz log: trace concept:name = case, event concept:name / time:timestamp.

    ``start_key`` names an event date attribute holding the activity start (pm4py's
    ``start_timestamp`` convention); pass None to ignore start times.
    """
    progress = throttled(progress)
    path = Path(path)
    check_timezone(timezone)
    _report(progress, "reading", 0.0)
    cols, unnamed_traces, orphan_events = _xes_series(
        path, start_key=start_key, progress=progress, max_bytes=max_bytes
    )
    if cols["activities"].len() == 0:
        raise MiningInputError(
            f"'{path.name}' contains no events inside <trace> elements; is it an XES event log?"
        )
    notes: list[str] = []
    if unnamed_traces:
        notes.append(f"{unnamed_traces} trace(s) had no concept:name and were numbered instead.")
    if orphan_events:
        notes.append(f"{orphan_events} event(s) outside any trace were ignored.")
    texts = {
        "case:concept:name": cols["cases"].alias(CASE),
        "concept:name": cols["activities"].alias(ACTIVITY),
    }
    if cols["resources"].null_count() < cols["resources"].len():
        texts["org:resource"] = cols["resources"].alias(RESOURCE)
    _check_field_lengths(pl.DataFrame(texts), path.name, row_label="event")
    ts, spec = parse_timestamps(
        cols["timestamps"].alias("time:timestamp"),
        column="time:timestamp",
        spec=ISO8601,
        timezone=timezone,
        row_label="event",
    )
    series: dict[str, pl.Series] = {
        CASE: texts["case:concept:name"],
        ACTIVITY: texts["concept:name"],
        TIMESTAMP: ts,
    }
    if start_key is not None and cols["starts"].null_count() < cols["starts"].len():
        series[START_TIMESTAMP], _ = parse_timestamps(
            cols["starts"].alias(start_key),
            column=start_key,
            spec=ISO8601,
            timezone=timezone,
            row_label="event",
        )
    if "org:resource" in texts:
        series[RESOURCE] = texts["org:resource"]
    if cols["lifecycles"].null_count() < cols["lifecycles"].len():
        series[LIFECYCLE] = cols["lifecycles"].alias(LIFECYCLE)
    table = build_table(series, source_format="xes", timestamp_format=spec, notes=notes)
    _report(progress, "reading", 1.0)
    return table


# --------------------------------------------------------------------------------------------
# Parquet


def _parquet(path: Path, read: Callable[[], _T]) -> _T:
    """Run a polars Parquet read; a damaged or foreign file (even one that panics polars) is refused."""
    try:
        return read()
    except (OSError, pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise MiningInputError(
            f"'{path.name}' is not a readable Parquet file ({first}); export the log again as Parquet or CSV."
        ) from None


def read_parquet(
    path: str | Path, mapping: ColumnMapping | None = None, *, progress: Progress | None = None
) -> EventTable:
    """Read a Parquet event log (typed or text timestamps); guess the mapping when none is given."""
    progress = throttled(progress)
    path = Path(path)
    _report(progress, "reading", 0.0)
    schema = _parquet(path, lambda: pl.read_parquet_schema(path))
    columns = list(schema)
    if mapping is None:
        head = _parquet(path, lambda: pl.read_parquet(path, n_rows=50))
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
    head = _parquet(path, lambda: pl.read_parquet(path, n_rows=50))
    sample = [[None if v is None else str(v) for v in row] for row in head.iter_rows()]
    needed += _attribute_candidates(columns, sample, mapping)
    frame = _parquet(path, lambda: pl.read_parquet(path, columns=list(dict.fromkeys(needed))))
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
    max_bytes: int | None = None,
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
        columns = list(_parquet(path, lambda: pl.read_parquet_schema(path)))
        head = _parquet(path, lambda: pl.read_parquet(path, n_rows=n_rows))
        rows = [[None if v is None else str(v) for v in row] for row in head.iter_rows()]
        return Preview(format="parquet", columns=columns, rows=rows, proposal=propose_mapping(columns, rows))
    # Only the head of a CSV is needed: read 1 MiB past the longest allowed line and cut it at the
    # last complete line *before* decoding, so a multi-byte character split by the cut cannot make
    # UTF-8 look like Latin-1.
    limit = MAX_LINE_BYTES + (1 << 20)
    head_bytes = _read_bytes(path, limit=limit)
    encoding: str | None = None
    source_encoding: str | None = None
    if len(head_bytes) >= limit:
        enc = _detect_encoding(head_bytes[:4096])
        if enc is not None and enc.startswith(("utf-16", "utf-32")):
            text = head_bytes.decode(enc, errors="ignore")
            cut = text.rfind("\n")
            head_bytes = text[: cut + 1].lstrip("\ufeff").encode("utf-8")
            encoding, source_encoding = "utf-8", enc
        else:
            cut = head_bytes.rfind(b"\n")
            if len(head_bytes) - cut - 1 > MAX_LINE_BYTES:
                raise _line_too_long(path.name, head_bytes.count(b"\n") + 1, None)
            head_bytes = head_bytes[: cut + 1]
        if cut < 0:
            raise _line_too_long(path.name, 1, None)
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
