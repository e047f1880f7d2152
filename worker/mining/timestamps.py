"""Timestamp format detection and vectorised parsing to UTC (polars / chrono patterns).

A *format spec* is a string the UI can show and send back:

* ``"ISO8601"`` – ``YYYY-MM-DD`` with an optional ``T``/space separated time, optional fraction and
  optional offset (``Z``, ``+01:00``, ``+0100``); mixed offsets in one column are fine.
* ``"EPOCH_S"`` / ``"EPOCH_MS"`` – seconds / milliseconds since 1970-01-01 UTC.
* a *date-only* pattern such as ``"%d/%m/%Y"`` – a family: that date followed by any common time of
  day (``hh:mm``, ``hh:mm:ss``, ``hh:mm:ss.fff``, 12-hour ``AM/PM``, optional offset) or none.
* any other pattern (containing a time directive) – used exactly, e.g. ``"%d.%m.%Y %H.%M"``.
  Python's ``.%f`` is accepted and mapped to chrono's ``%.f``.

Naive values are interpreted in ``timezone`` (an IANA name, default UTC) and converted to UTC;
values with an explicit offset keep their own offset (the time zone override does not apply).

Text is parsed at microsecond precision (finer digits are dropped; XES and ITSM exports carry
milliseconds at most), because at nanosecond precision polars silently wraps dates past 2262
(9999-12-31 would become a date in 1816). Every timestamp must then lie in the years
``MIN_YEAR``..``MAX_YEAR``; anything outside is *refused* (not flagged), naming the column, row
and value: such dates are placeholders ("never" = 9999-12-31, "unset" = 0001-01-01) or a wrong
epoch unit, and mining them would report centuries-long cases as if they were real.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from .errors import MiningInputError

ISO8601 = "ISO8601"
EPOCH_S = "EPOCH_S"
EPOCH_MS = "EPOCH_MS"

UTC_DTYPE = pl.Datetime("ns", "UTC")
_PARSE_DTYPE = pl.Datetime("us", "UTC")  # text is parsed in us: see the module docstring

# Accepted event years (inclusive). Real event logs are recent; dates outside are placeholders or
# unit mistakes, and nanosecond datetimes cannot even hold years after 2262.
MIN_YEAR = 1900
MAX_YEAR = 2100

# Date parts tried during detection, in order of preference when several fit all samples.
_DATE_PARTS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d.%m.%Y",
    "%d-%b-%Y",
    "%d %b %Y",
    "%Y%m%d",
)
# Pairs that read the same text with day and month swapped: when both fit every sample the choice
# is a guess, so it is flagged as ambiguous (US exports use "/" month-first; "-" and "." are
# day-first in Europe, which is where the first choice in each pair comes from).
_SWAPPED = {"%m/%d/%Y": "%d/%m/%Y", "%d/%m/%Y": "%m/%d/%Y", "%d-%m-%Y": "%m-%d-%Y", "%m-%d-%Y": "%d-%m-%Y"}

# " %H:%M:%S" comes before its optional-fraction twin because polars has a ~5x faster path for it.
_NAIVE_TIMES: tuple[str, ...] = (
    " %H:%M:%S",
    " %H:%M:%S%.f",
    " %H:%M",
    " %I:%M:%S%.f %p",
    " %I:%M %p",
    "",
)
_AWARE_TIMES: tuple[str, ...] = (" %H:%M:%S%.f%#z", " %H:%M%#z")

_LABELS = {
    "%Y-%m-%d": "ISO 8601 (YYYY-MM-DD hh:mm:ss, optional offset)",
    "%Y/%m/%d": "YYYY/MM/DD hh:mm:ss",
    "%m/%d/%Y": "MM/DD/YYYY hh:mm:ss",
    "%d/%m/%Y": "DD/MM/YYYY hh:mm:ss",
    "%d-%m-%Y": "DD-MM-YYYY hh:mm",
    "%m-%d-%Y": "MM-DD-YYYY hh:mm",
    "%d.%m.%Y": "DD.MM.YYYY hh:mm",
    "%d-%b-%Y": "DD-Mon-YYYY hh:mm",
    "%d %b %Y": "DD Mon YYYY hh:mm",
    "%Y%m%d": "YYYYMMDD",
    EPOCH_S: "Unix epoch seconds",
    EPOCH_MS: "Unix epoch milliseconds",
}

_TIME_DIRECTIVE = re.compile(r"%[HIMSpTRrXfz]|%\.f|%#z|%:z")
_NUMERIC = re.compile(r"^[+-]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class DetectedFormat:
    """Result of format detection: ``spec`` to parse with, a human ``label``, and ``ambiguous``."""

    spec: str
    label: str
    ambiguous: bool = False
    alternative: str | None = None


def describe_format(spec: str) -> str:
    """Human label for a format spec."""
    if spec == ISO8601:
        return _LABELS["%Y-%m-%d"]
    return _LABELS.get(spec, spec)


def check_timezone(timezone: str | None) -> str:
    """Validate an IANA time zone name (None means UTC) and return it."""
    if timezone is None or timezone == "":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise MiningInputError(
            f"Unknown time zone '{timezone}'; use an IANA name such as 'Europe/Amsterdam' or 'UTC'."
        ) from None
    return timezone


def _patterns_for(spec: str) -> tuple[list[str], list[str]]:
    """(naive patterns, aware patterns) that together implement a non-epoch format spec."""
    if spec == ISO8601:
        date = "%Y-%m-%d"
        naive = [date + t for t in _NAIVE_TIMES[:3]] + [date + "T" + t[1:] for t in _NAIVE_TIMES[:3]] + [date]
        aware = [date + "T" + t[1:] for t in _AWARE_TIMES] + [date + t for t in _AWARE_TIMES]
        return naive, aware
    spec = spec.replace(".%f", "%.f")
    if _TIME_DIRECTIVE.search(spec):
        # An exact pattern: an offset directive makes it aware.
        if re.search(r"%z|%#z|%:z", spec):
            return [], [spec]
        return [spec], []
    return [spec + t for t in _NAIVE_TIMES], [spec + t for t in _AWARE_TIMES]


def _parse_with(values: pl.Series, naive: Sequence[str], aware: Sequence[str], timezone: str) -> pl.Series:
    """Coalesce several patterns (first match wins) into one UTC datetime series; nulls = no match."""
    exprs: list[pl.Expr] = []
    col = pl.col("v")
    for pat in aware:
        exprs.append(col.str.to_datetime(pat, time_unit="us", strict=False).dt.convert_time_zone("UTC"))
    for pat in naive:
        exprs.append(
            col.str.to_datetime(pat, time_unit="us", strict=False)
            .dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
            .dt.convert_time_zone("UTC")
        )
    if not exprs:
        return pl.Series(values.name, [None] * len(values), dtype=_PARSE_DTYPE)
    frame = pl.DataFrame({"v": values})
    out = frame.select(pl.coalesce(exprs).alias(values.name)).to_series()
    return out.cast(_PARSE_DTYPE)


def _parse_fast(values: pl.Series, naive: Sequence[str], aware: Sequence[str], timezone: str) -> pl.Series:
    """Like :func:`_parse_with`, but runs only the patterns the sample needs over the full column.

    Every pattern costs a full pass, and a family has up to nine; real columns use one or two.
    Rows the sampled patterns miss get the remaining patterns, on those rows only.
    """
    sample = _sample(values, 300)
    # Greedy cover of the sample: a pattern is used only if it parses rows earlier ones missed.
    covered = pl.Series([False] * len(sample))
    used_naive: list[str] = []
    used_aware: list[str] = []
    for pat, is_aware in [(p, True) for p in aware] + [(p, False) for p in naive]:
        if bool(covered.all()):
            break
        hit = _parse_with(sample, [] if is_aware else [pat], [pat] if is_aware else [], "UTC").is_not_null()
        if bool((hit & ~covered).any()):
            (used_aware if is_aware else used_naive).append(pat)
            covered = covered | hit
    if not used_naive and not used_aware:
        return _parse_with(values, naive, aware, timezone)
    parsed = _parse_with(values, used_naive, used_aware, timezone)
    rest_naive = [p for p in naive if p not in used_naive]
    rest_aware = [p for p in aware if p not in used_aware]
    missing = values.is_not_null() & parsed.is_null()
    if (rest_naive or rest_aware) and missing.any():
        idx = missing.arg_true()
        retry = _parse_with(values.gather(idx), rest_naive, rest_aware, timezone)
        parsed = parsed.scatter(idx, retry)
    return parsed


def _parse_epoch(values: pl.Series, spec: str) -> pl.Series:
    """Epoch seconds / milliseconds (integer or decimal text) to UTC datetimes; nulls = not numeric."""
    nums = values.str.strip_chars().cast(pl.Float64, strict=False)
    scale = 1e6 if spec == EPOCH_S else 1e3
    us = (nums * scale).round(0).cast(pl.Int64, strict=False)
    return us.cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias(values.name)


def _check_range(
    parsed: pl.Series, shown: pl.Series, *, column: str, row_label: str, row_offset: int
) -> None:
    """Refuse datetimes outside MIN_YEAR..MAX_YEAR, naming the first one (``shown`` = source value)."""
    years = parsed.dt.year()
    low, high = years.min(), years.max()
    if low is None or (low >= MIN_YEAR and high <= MAX_YEAR):  # type: ignore[operator]
        return
    out = ((years < MIN_YEAR) | (years > MAX_YEAR)).fill_null(False)
    idx = int(out.arg_true()[0])
    n_out = int(out.sum())
    more = f" ({n_out - 1} more rows are out of range too)" if n_out > 1 else ""
    raise _out_of_range(f"Column '{column}' {row_label} {idx + row_offset}", shown[idx], more)


def _out_of_range(where: str, value: object, more: str) -> MiningInputError:
    return MiningInputError(
        f"{where}: '{value}' is outside the supported range {MIN_YEAR}-01-01 to {MAX_YEAR}-12-31{more}. "
        "Dates like 9999-12-31 or 0001-01-01 are usually placeholders for 'no date'; fix or remove those "
        "rows (or choose the right timestamp format) and upload the log again."
    )


# A year of five or more digits (50000-01-01, 01/01/50000): no pattern parses it, but the reason is
# the range, not the format, so it gets the range message.
_HUGE_YEAR = re.compile(r"^[+-]?\d{5,}[-/.]\d|\d[-/.]\d{5,}(?:[ T]|$)")


def _sample(values: pl.Series, limit: int = 500) -> pl.Series:
    """The first non-empty values plus an even spread over the rest (detection looks at these)."""
    if len(values) > 4 * limit:
        # Pick candidates first (head + even spread), so a million-row column is not stripped
        # and filtered as a whole just to look at a few hundred values.
        step = max(1, len(values) // (limit // 2))
        values = pl.concat([values.head(2 * limit), values.gather_every(step)])
    nonnull = values.drop_nulls()
    nonnull = nonnull.filter(nonnull.str.strip_chars() != "")
    if len(nonnull) <= limit:
        return nonnull
    head = nonnull.head(limit // 2)
    step = max(1, len(nonnull) // (limit // 2))
    return pl.concat([head, nonnull.gather_every(step)])


def detect_format(samples: Sequence[str | None] | pl.Series) -> DetectedFormat | None:
    """Guess the format spec of timestamp text from samples; None if nothing fits well."""
    series = samples if isinstance(samples, pl.Series) else pl.Series("v", list(samples), dtype=pl.String)
    series = _sample(series.cast(pl.String).str.strip_chars())
    if len(series) == 0:
        return None
    if all(_NUMERIC.match(v) for v in series.to_list()):
        median = series.cast(pl.Float64).median()
        magnitude = abs(float(median)) if isinstance(median, int | float) else 0.0
        if 1e8 <= magnitude < 1e11:
            return DetectedFormat(EPOCH_S, _LABELS[EPOCH_S])
        if 1e11 <= magnitude < 1e14:
            return DetectedFormat(EPOCH_MS, _LABELS[EPOCH_MS])
        if not (19000101 <= magnitude <= 21001231):
            return None
    scores: dict[str, float] = {}
    for date in _DATE_PARTS:
        spec = ISO8601 if date == "%Y-%m-%d" else date
        naive, aware = _patterns_for(spec)
        parsed = _parse_with(series, naive, aware, "UTC")
        scores[spec] = 1.0 - parsed.null_count() / len(series)
    full = [s for s, v in scores.items() if v == 1.0]
    if full:
        best = full[0]
        other = _SWAPPED.get(best)
        ambiguous = other is not None and other in full
        return DetectedFormat(best, describe_format(best), ambiguous, other if ambiguous else None)
    best, score = max(scores.items(), key=lambda kv: kv[1])
    # Mostly right: keep it so the parser can name the first row that does not fit.
    if score >= 0.5:
        return DetectedFormat(best, describe_format(best))
    return None


def parse_timestamps(
    values: pl.Series,
    *,
    column: str,
    spec: str | None = None,
    timezone: str | None = None,
    row_label: str = "row",
    row_offset: int = 1,
) -> tuple[pl.Series, str]:
    """Parse a column to Datetime(ns, UTC) and return (series, spec used); empty text becomes null.

    Raises MiningInputError naming the first non-empty value that is not a date in the format.
    """
    tz = check_timezone(timezone)
    dtype = values.dtype
    where = {"column": column, "row_label": row_label, "row_offset": row_offset}
    if isinstance(dtype, pl.Datetime | pl.Date):
        # Parquet / typed sources: check the range in the source unit (casting a year-9999 value
        # to ns fails), then naive datetimes are wall-clock in `timezone`.
        _check_range(values, values, **where)  # type: ignore[arg-type]
        if isinstance(dtype, pl.Date) or dtype.time_zone is None:
            out = values.cast(pl.Datetime("ns")).dt.replace_time_zone(
                tz, ambiguous="earliest", non_existent="null"
            )
        else:
            out = values.cast(pl.Datetime("ns", dtype.time_zone))
        kind = "date" if isinstance(dtype, pl.Date) else "datetime"
        return out.dt.convert_time_zone("UTC").cast(UTC_DTYPE), kind
    if dtype.is_numeric():
        values = values.cast(pl.String)
        spec = spec or None
    raw = values.cast(pl.String).str.strip_chars()
    text = pl.select(pl.when(raw == "").then(None).otherwise(raw).alias(values.name)).to_series()
    if spec is None:
        detected = detect_format(text)
        if detected is None:
            examples = ", ".join(repr(v) for v in text.drop_nulls().head(3).to_list()) or "(no values)"
            raise MiningInputError(
                f"Column '{column}': could not recognise a date/time format in values such as {examples}; "
                "choose the timestamp column and its format explicitly."
            )
        spec = detected.spec
    if spec in (EPOCH_S, EPOCH_MS):
        parsed = _parse_epoch(text, spec)
    else:
        naive, aware = _patterns_for(spec)
        parsed = _parse_fast(text, naive, aware, tz)
    bad = text.is_not_null() & parsed.is_null()
    if bad.any():
        idx = int(bad.arg_true()[0])
        value = text[idx]
        n_bad = int(bad.sum())
        more = f" ({n_bad - 1} more rows fail too)" if n_bad > 1 else ""
        if spec not in (EPOCH_S, EPOCH_MS) and _HUGE_YEAR.search(value):
            raise _out_of_range(f"Column '{column}' {row_label} {idx + row_offset}", value, more)
        # A wall-clock time skipped by a DST change parses but cannot be placed in the zone.
        zone = f" (or does not exist in time zone {tz})" if tz != "UTC" else ""
        raise MiningInputError(
            f"Column '{column}' {row_label} {idx + row_offset}: '{value}' is not a date in the format "
            f"{describe_format(spec)}{zone}{more}; choose the timestamp format explicitly."
        )
    _check_range(parsed, text, **where)  # type: ignore[arg-type]
    return parsed.cast(UTC_DTYPE).alias(values.name), spec
