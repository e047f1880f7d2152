"""Journeylens process mining: read an event log, compute pm4py-equivalent figures, fast.

A pure library (no Flask, SQLAlchemy, ``webapp`` or ``worker.jobs`` imports): data in, plain
dataclasses out. Typical use from a job::

    from worker.mining import mine
    result = mine(path, mapping=None, progress=lambda phase, f: ...)
    payload = result.to_dict()      # JSON-serialisable
"""

from __future__ import annotations

from pathlib import Path

from .calendar import BusinessCalendar
from .discovery import (
    ActivityStats,
    Bottleneck,
    Edge,
    Histogram,
    HistogramBin,
    MiningResult,
    Summary,
    Variant,
    discover,
)
from .drafting import draft_journey
from .errors import MiningInputError
from .filters import Filters, apply_filters, attribute_values
from .overlay import (
    Conformance,
    Departure,
    JourneyMeasurement,
    JourneyPath,
    MapStep,
    StepMeasure,
    TimelineEvent,
    TransitionMeasure,
    UnmappedActivity,
    measure_journey,
)
from .readers import (
    ColumnMapping,
    MappingProposal,
    Preview,
    Progress,
    preview,
    propose_mapping,
    read_csv,
    read_log,
    read_parquet,
    read_xes,
)
from .table import EventTable, build_table, table_from_records
from .timestamps import DetectedFormat, detect_format, parse_timestamps

__all__ = [
    "ActivityStats",
    "Bottleneck",
    "BusinessCalendar",
    "ColumnMapping",
    "Conformance",
    "Departure",
    "DetectedFormat",
    "Edge",
    "EventTable",
    "Filters",
    "Histogram",
    "HistogramBin",
    "JourneyMeasurement",
    "JourneyPath",
    "MapStep",
    "MappingProposal",
    "MiningInputError",
    "MiningResult",
    "Preview",
    "Progress",
    "StepMeasure",
    "Summary",
    "TimelineEvent",
    "TransitionMeasure",
    "UnmappedActivity",
    "Variant",
    "build_table",
    "detect_format",
    "discover",
    "draft_journey",
    "measure_journey",
    "mine",
    "parse_timestamps",
    "preview",
    "propose_mapping",
    "read_csv",
    "read_log",
    "read_parquet",
    "read_xes",
    "table_from_records",
]


def mine(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    *,
    progress: Progress | None = None,
    max_variants: int = 1000,
    filters: Filters | None = None,
) -> MiningResult:
    """Read a log file and discover everything: phases 'reading', 'sorting', 'discovering'.

    With `filters`, only the selected cases are mined; `result.attributes` always describes the
    whole log (the options a filter form offers).
    """
    table = read_log(path, mapping, progress=progress)
    attributes = attribute_values(table)
    if filters is not None:
        table = apply_filters(table, filters)
    result = discover(table, progress=progress, max_variants=max_variants)
    result.attributes = attributes
    return result
