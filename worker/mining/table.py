"""The columnar event table every reader produces and every miner consumes.

Representation: one ``polars.DataFrame`` in *file order* with fixed column names:

==================  ======================  =========================================
column              dtype                   meaning
==================  ======================  =========================================
``case``            String                  case id (text even when the source is numeric)
``activity``        String                  activity label
``timestamp``       Datetime(ns, UTC)       completion time (the event's time)
``start_timestamp`` Datetime(ns, UTC)       optional: start time of the activity
``resource``        String                  optional: who performed it
``lifecycle``       String                  optional: XES ``lifecycle:transition`` (kept, not filtered)
==================  ======================  =========================================

Why polars rather than pandas/pyarrow/numpy: its CSV reader is multi-threaded Rust and reads
strings without pandas' object overhead; its ``str.to_datetime`` parses mixed UTC offsets
vectorised; ``to_numpy()`` of numeric / enum-code columns is zero-copy, so the mining kernels can
run in numpy; and it reads Parquet natively. pyarrow stays optional (polars needs it only for
interchange we do not use) and pandas is not needed at all at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

CASE = "case"
ACTIVITY = "activity"
TIMESTAMP = "timestamp"
START_TIMESTAMP = "start_timestamp"
RESOURCE = "resource"
LIFECYCLE = "lifecycle"

UTC_DTYPE = pl.Datetime("ns", "UTC")
# Other source columns kept for filtering are named "attr:<source column>" (strings).
ATTRIBUTE_PREFIX = "attr:"


@dataclass
class EventTable:
    """Events in file order plus what the reader learned about the file."""

    frame: pl.DataFrame
    source_format: str
    timestamp_format: str | None = None
    dropped_rows: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        """Number of events kept."""
        return self.frame.height

    @property
    def has_start(self) -> bool:
        """True when a start timestamp column was mapped."""
        return START_TIMESTAMP in self.frame.columns

    @property
    def has_resource(self) -> bool:
        """True when a resource column was mapped."""
        return RESOURCE in self.frame.columns


def build_table(
    columns: dict[str, pl.Series],
    *,
    source_format: str,
    timestamp_format: str | None = None,
    notes: list[str] | None = None,
) -> EventTable:
    """Assemble an EventTable from named series, dropping events without case, activity or time.

    Dropping (rather than failing) mirrors pm4py's ``format_dataframe``, which removes rows with an
    empty case id, activity or timestamp; the count is reported so the UI can say so.
    """
    order = [CASE, ACTIVITY, TIMESTAMP, START_TIMESTAMP, RESOURCE, LIFECYCLE]
    data: dict[str, pl.Series] = {}
    for name in order:
        if name in columns and columns[name] is not None:
            series = columns[name]
            if name in (TIMESTAMP, START_TIMESTAMP):
                series = series.cast(UTC_DTYPE)
            else:
                series = series.cast(pl.String)
            data[name] = series.alias(name)
    for name, series in columns.items():
        if name.startswith(ATTRIBUTE_PREFIX) and series is not None:
            data[name] = series.cast(pl.String).alias(name)
    frame = pl.DataFrame(data)
    before = frame.height
    frame = frame.drop_nulls([CASE, ACTIVITY, TIMESTAMP])
    dropped = before - frame.height
    notes = list(notes or [])
    if START_TIMESTAMP in frame.columns:
        missing_start = frame[START_TIMESTAMP].null_count()
        if missing_start:
            # An event with no start is taken as instantaneous, so it still sorts and measures.
            frame = frame.with_columns(pl.col(START_TIMESTAMP).fill_null(pl.col(TIMESTAMP)))
            notes.append(f"{missing_start} event(s) without a start timestamp were taken as instantaneous.")
    if dropped:
        notes.append(
            f"{dropped} event(s) without a case id, activity or timestamp were left out (as pm4py does)."
        )
    return EventTable(
        frame=frame,
        source_format=source_format,
        timestamp_format=timestamp_format,
        dropped_rows=dropped,
        notes=notes,
    )


def table_from_records(
    cases: list[str],
    activities: list[str],
    timestamps: list[object],
    *,
    starts: list[object] | None = None,
    resources: list[str | None] | None = None,
) -> EventTable:
    """Build an EventTable from Python lists (timezone-aware datetimes or UTC epoch ns ints)."""

    def ts_series(name: str, values: list[object]) -> pl.Series:
        """Datetime(ns, UTC) series from aware datetimes or epoch-ns ints."""
        if values and isinstance(values[0], int):
            return pl.Series(name, values, dtype=pl.Int64).cast(pl.Datetime("ns")).dt.replace_time_zone("UTC")
        return pl.Series(name, values).cast(UTC_DTYPE)

    cols: dict[str, pl.Series] = {
        CASE: pl.Series(CASE, cases, dtype=pl.String),
        ACTIVITY: pl.Series(ACTIVITY, activities, dtype=pl.String),
        TIMESTAMP: ts_series(TIMESTAMP, timestamps),
    }
    if starts is not None:
        cols[START_TIMESTAMP] = ts_series(START_TIMESTAMP, starts)
    if resources is not None:
        cols[RESOURCE] = pl.Series(RESOURCE, resources, dtype=pl.String)
    return build_table(cols, source_format="memory")
