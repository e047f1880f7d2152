"""Case filters applied before discovery: period of the case's start, attribute values, one variant.

Filters select whole cases (as Disco's and Celonis' case filters do), so every figure of the filtered
log is a figure of real, complete cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import polars as pl

from .errors import MiningInputError
from .table import ACTIVITY, ATTRIBUTE_PREFIX, CASE, START_TIMESTAMP, TIMESTAMP, EventTable

_ROW = "__row"


@dataclass(frozen=True)
class Filters:
    """Which cases to keep: started in [start, end] (dates, inclusive), attribute in values, one variant."""

    start: str | None = None
    end: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    variant: list[str] | None = None

    @classmethod
    def from_dict(cls, raw: dict | None) -> Filters | None:
        """Filters from their JSON form; None when nothing filters."""
        if not raw:
            return None
        return cls(raw.get("start"), raw.get("end"), dict(raw.get("attributes") or {}), raw.get("variant"))


def _ordered(table: EventTable) -> pl.DataFrame:
    """Events with their file position, sorted as the miner sorts them (case, time, file order)."""
    frame = table.frame.with_row_index(_ROW)
    keys = [CASE, START_TIMESTAMP, TIMESTAMP, _ROW] if table.has_start else [CASE, TIMESTAMP, _ROW]
    return frame.sort(keys)


def case_attributes(table: EventTable) -> pl.DataFrame:
    """One row per case: each attribute's first non-empty value in the case's event order."""
    columns = [c for c in table.frame.columns if c.startswith(ATTRIBUTE_PREFIX)]
    if not columns:
        return pl.DataFrame({CASE: table.frame[CASE].unique()})
    ordered = _ordered(table)
    return ordered.group_by(CASE, maintain_order=True).agg(
        [pl.col(c).filter(pl.col(c).is_not_null() & (pl.col(c) != "")).first() for c in columns]
    )


def attribute_values(table: EventTable) -> dict[str, dict[str, int]]:
    """Attribute column -> value -> number of cases with it (most frequent first)."""
    per_case = case_attributes(table)
    result: dict[str, dict[str, int]] = {}
    for column in per_case.columns:
        if not column.startswith(ATTRIBUTE_PREFIX):
            continue
        counts = per_case[column].drop_nulls().value_counts(sort=True)
        result[column.removeprefix(ATTRIBUTE_PREFIX)] = {
            str(value): int(count) for value, count in counts.iter_rows()
        }
    return result


def _day(value: str, *, end: bool) -> datetime:
    try:
        day = date.fromisoformat(value)
    except ValueError as error:
        raise MiningInputError(f"{value!r} is not a date (use YYYY-MM-DD).") from error
    moment = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return moment + timedelta(days=1) if end else moment


def apply_filters(table: EventTable, filters: Filters) -> EventTable:
    """The table with only the selected cases' events, in file order; an error when none is left."""
    ordered = _ordered(table)
    cases = ordered.group_by(CASE, maintain_order=True).agg(
        pl.col(TIMESTAMP).min().alias("__first"), pl.col(ACTIVITY).alias("__trace")
    )
    keep = pl.lit(True)
    if filters.start:
        keep = keep & (pl.col("__first") >= _day(filters.start, end=False))
    if filters.end:
        keep = keep & (pl.col("__first") < _day(filters.end, end=True))
    if filters.variant is not None:
        keep = keep & (pl.col("__trace") == pl.lit(list(filters.variant), dtype=pl.List(pl.String)))
    selected = cases.filter(keep).select(CASE)
    if filters.attributes:
        per_case = case_attributes(table)
        condition = pl.lit(True)
        for column, values in filters.attributes.items():
            name = ATTRIBUTE_PREFIX + column
            if name not in per_case.columns:
                raise MiningInputError(f"The log has no attribute column {column!r} to filter on.")
            condition = condition & pl.col(name).is_in(list(values))
        selected = selected.join(per_case.filter(condition).select(CASE), on=CASE, how="semi")
    if selected.height == 0:
        raise MiningInputError("No case matches these filters. Widen the period or choose other values.")
    frame = table.frame.join(selected, on=CASE, how="semi", maintain_order="left")
    notes = [*table.notes, f"Filtered: {selected.height} of {cases.height} cases kept."]
    return EventTable(
        frame=frame,
        source_format=table.source_format,
        timestamp_format=table.timestamp_format,
        dropped_rows=table.dropped_rows,
        notes=notes,
    )
