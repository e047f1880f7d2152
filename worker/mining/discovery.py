"""Process discovery over an :class:`EventTable`: summary, activities, DFG, variants, durations.

Semantics (chosen to reproduce pm4py 2.7.23.11 figures exactly):

* every event counts (no lifecycle filtering); the activity is the activity column alone;
* events are ordered per case by timestamp with a *stable* sort, so file order breaks ties (pm4py's
  ``format_dataframe`` sorts by case, timestamp, original index);
* when the table has start timestamps, events are ordered by (start, end) and a directly-follows
  edge a→b waits ``start(b) - end(a)``; that is what ``pm4py.discover_performance_dfg`` does
  when the frame carries a ``start_timestamp`` column. Without them the wait is ``end(b) - end(a)``;
* a variant is the tuple of activities of a case in that order;
* case duration = timestamp of the last event - timestamp of the first event in that order
  (``pm4py.get_all_case_durations``); medians average the two middle values and quantiles
  interpolate linearly, as pandas/numpy do.

The kernels work on integer codes in numpy: activities and cases become ``pl.Enum`` physical
codes, timestamps int64 nanoseconds, one stable sort orders everything, and every figure is a
bincount / reduceat over contiguous groups.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from .errors import MiningInputError
from .progress import Progress, throttled
from .table import ACTIVITY, CASE, RESOURCE, START_TIMESTAMP, TIMESTAMP, EventTable

NS = 1_000_000_000
# Largest dense count matrix (cells) we allocate instead of sorting keys: 8M int64 = 64 MiB.
_DENSE_LIMIT = 8_000_000


@dataclass
class Summary:
    """Log-level figures."""

    n_cases: int
    n_events: int
    n_activities: int
    n_variants: int
    first_timestamp: str | None
    last_timestamp: str | None
    case_duration_mean_s: float | None
    case_duration_median_s: float | None
    case_duration_p90_s: float | None
    case_duration_min_s: float | None
    case_duration_max_s: float | None
    n_resources: int | None
    has_start_timestamps: bool
    cases_with_rework: int
    rework_share: float


@dataclass
class ActivityStats:
    """Per-activity figures; durations only when start timestamps exist."""

    activity: str
    events: int
    cases: int
    start_count: int
    end_count: int
    rework_cases: int
    rework_events: int
    rework_share: float
    duration_mean_s: float | None = None
    duration_median_s: float | None = None
    resources: int | None = None


@dataclass
class Edge:
    """A directly-follows edge with its frequency and waiting-time statistics (seconds)."""

    source: str
    target: str
    count: int
    median_s: float
    mean_s: float
    p90_s: float
    min_s: float
    max_s: float


@dataclass
class Variant:
    """A distinct activity sequence, its frequency and case durations."""

    rank: int
    activities: list[str]
    count: int
    share: float
    median_duration_s: float
    mean_duration_s: float


@dataclass
class HistogramBin:
    """Cases whose duration is in [lower_s, upper_s); upper_s None = open-ended overflow bin."""

    lower_s: float
    upper_s: float | None
    count: int


@dataclass
class Histogram:
    """Case-duration histogram; ``unit`` is the unit the bin edges were rounded in."""

    unit: str
    unit_seconds: int
    bins: list[HistogramBin]


@dataclass
class Bottleneck:
    """An edge ranked by total waiting it causes: median wait x frequency."""

    source: str
    target: str
    count: int
    median_s: float
    impact_s: float
    impact_share: float


@dataclass
class MiningResult:
    """Everything the miner computes, JSON-serialisable through :meth:`to_dict`."""

    summary: Summary
    activities: list[ActivityStats]
    start_activities: dict[str, int]
    end_activities: dict[str, int]
    dfg: list[Edge]
    variants: list[Variant]
    case_duration_histogram: Histogram
    bottlenecks: list[Bottleneck]
    notes: list[str] = field(default_factory=list)
    # Attribute column -> value -> cases, over the whole log (the options of the filter form).
    attributes: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of built-in types (safe for json.dumps / a JSON column)."""
        return asdict(self)

    def edge(self, source: str, target: str) -> Edge | None:
        """Look up one DFG edge."""
        for e in self.dfg:
            if e.source == source and e.target == target:
                return e
        return None


# --------------------------------------------------------------------------------------------
# Kernels


def _report(progress: Progress | None, phase: str, fraction: float) -> None:
    if progress is not None:
        progress(phase, fraction)


def _codes(series: pl.Series, categories: pl.Series) -> np.ndarray:
    """Physical codes of ``series`` in ``categories`` (an Enum cast: hashing in Rust, no Python)."""
    return series.cast(pl.Enum(categories)).to_physical().to_numpy()


def _ns(series: pl.Series) -> np.ndarray:
    """Datetime(ns, UTC) series as int64 nanoseconds since the epoch."""
    return series.cast(pl.Datetime("ns", "UTC")).to_physical().to_numpy()


def _sort_order(
    case: np.ndarray, ts: np.ndarray, start: np.ndarray | None, n_cases: int
) -> np.ndarray | None:
    """Stable order by (case, [start], timestamp); None when the file is already in that order.

    XES files (and many exports) list each case contiguously in time order; detecting that in one
    linear pass skips the O(n log n) sort. Case *order* itself never matters to any figure.
    """
    n = case.shape[0]
    if n < 2:
        return None
    same = case[1:] == case[:-1]
    if start is None:
        in_order = ts[1:] >= ts[:-1]
    else:
        in_order = (start[1:] > start[:-1]) | ((start[1:] == start[:-1]) & (ts[1:] >= ts[:-1]))
    if bool(np.all(in_order | ~same)):
        n_runs = int(n - np.count_nonzero(same))
        if n_runs == n_cases:
            return None
    # np.lexsort is stable: equal keys keep file order, which is pm4py's tie-break.
    keys = (ts, case) if start is None else (ts, start, case)
    return np.lexsort(keys)


def _group_bounds(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first index, length) of each run of equal values in a sorted array."""
    n = sorted_keys.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    brk = np.empty(n, dtype=bool)
    brk[0] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=brk[1:])
    firsts = np.flatnonzero(brk)
    lengths = np.diff(np.append(firsts, n))
    return firsts, lengths


def _sort_grouped(
    keys: np.ndarray, values: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sort by key then value; returns (keys, values, group firsts, group lengths).

    A stable argsort of small integer keys is a radix sort in numpy, and sorting each group's
    contiguous values in place afterwards is ~3x faster than a two-key lexsort.
    """
    if n_keys <= 65536 and keys.shape[0] > 0:
        order = np.argsort(keys.astype(np.uint16), kind="stable")
        keys_s = keys[order]
        values_s = values[order]
        firsts, lengths = _group_bounds(keys_s)
        for a, n in zip(firsts.tolist(), lengths.tolist(), strict=True):
            if n > 1:
                values_s[a : a + n].sort()
        return keys_s, values_s, firsts, lengths
    order = np.lexsort((values, keys))
    keys_s = keys[order]
    firsts, lengths = _group_bounds(keys_s)
    return keys_s, values[order], firsts, lengths


def _grouped_stats(
    values_sorted: np.ndarray, firsts: np.ndarray, lengths: np.ndarray
) -> dict[str, np.ndarray]:
    """median / mean / p90 / min / max (seconds) of int64-ns values sorted within each group."""
    if firsts.shape[0] == 0:
        empty = np.zeros(0)
        return {"median": empty, "mean": empty, "p90": empty, "min": empty, "max": empty}
    lo = values_sorted[firsts + (lengths - 1) // 2]
    hi = values_sorted[firsts + lengths // 2]
    # Average the two middle values like pandas/statistics median (in float: no int64 overflow).
    median = (lo.astype(np.float64) + hi.astype(np.float64)) / 2.0 / NS
    mean = np.add.reduceat(values_sorted.astype(np.float64) / NS, firsts) / lengths
    pos = 0.9 * (lengths - 1)
    base = np.floor(pos).astype(np.int64)
    frac = pos - base
    nxt = np.minimum(base + 1, lengths - 1)
    v0 = values_sorted[firsts + base].astype(np.float64)
    v1 = values_sorted[firsts + nxt].astype(np.float64)
    p90 = (v0 + (v1 - v0) * frac) / NS
    return {
        "median": median,
        "mean": mean,
        "p90": p90,
        "min": values_sorted[firsts].astype(np.float64) / NS,
        "max": values_sorted[firsts + lengths - 1].astype(np.float64) / NS,
    }


def _quantile(sorted_values: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile of an ascending array (numpy's default method)."""
    n = sorted_values.shape[0]
    pos = q * (n - 1)
    base = int(math.floor(pos))
    nxt = min(base + 1, n - 1)
    return float(sorted_values[base] + (sorted_values[nxt] - sorted_values[base]) * (pos - base))


def _iso(ns: int) -> str:
    """UTC ISO-8601 text for epoch nanoseconds (microsecond precision, as pandas prints)."""
    sec, rem = divmod(int(ns), NS)
    return datetime.fromtimestamp(sec, tz=UTC).replace(microsecond=rem // 1000).isoformat()


_UNITS = (("seconds", 1), ("minutes", 60), ("hours", 3600), ("days", 86400), ("weeks", 7 * 86400))


def _histogram(durations_s: np.ndarray, target_bins: int = 20) -> Histogram:
    """Equal-width bins with 'nice' edges in a readable unit, capped at p99 plus an overflow bin.

    Capping at the 99th percentile keeps one stuck ticket from squeezing every other case into the
    first bar; the overflow bin still counts it.
    """
    if durations_s.shape[0] == 0:
        return Histogram(unit="hours", unit_seconds=3600, bins=[])
    srt = np.sort(durations_s)
    lo = min(0.0, float(srt[0]))
    top = _quantile(srt, 0.99)
    ref = max(_quantile(srt, 0.5), top / 4, 1.0)
    unit, unit_s = _UNITS[0]
    for name, secs in _UNITS:
        if ref >= 2 * secs:
            unit, unit_s = name, secs
    span = max(top - lo, 1.0) / unit_s
    raw_step = span / target_bins
    mag = 10 ** math.floor(math.log10(raw_step)) if raw_step > 0 else 1
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw_step)
    step_s = step * unit_s
    start = math.floor(lo / step_s) * step_s
    n_bins = max(1, math.ceil((top - start) / step_s))
    if start + n_bins * step_s <= top:
        n_bins += 1
    edges = start + step_s * np.arange(n_bins + 1)
    inside = srt[srt < edges[-1]]
    counts = np.histogram(inside, bins=edges)[0]
    bins = [HistogramBin(float(edges[i]), float(edges[i + 1]), int(counts[i])) for i in range(n_bins)]
    overflow = int(srt.shape[0] - inside.shape[0])
    if overflow:
        bins.append(HistogramBin(float(edges[-1]), None, overflow))
    return Histogram(unit=unit, unit_seconds=unit_s, bins=bins)


def _occurrences(
    case: np.ndarray, act: np.ndarray, n_cases: int, n_act: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(cases per activity, rework cases per activity, repeat events per activity, cases with rework)."""
    key = case.astype(np.int64) * n_act + act
    if n_cases * n_act <= _DENSE_LIMIT:
        # A dense case x activity count matrix is one bincount: far cheaper than sorting keys.
        grid = np.bincount(key, minlength=n_cases * n_act).reshape(n_cases, n_act)
        repeated = grid > 1
        return (
            np.count_nonzero(grid, axis=0),
            np.count_nonzero(repeated, axis=0),
            np.maximum(grid - 1, 0).sum(axis=0),
            int(np.count_nonzero(repeated.any(axis=1))),
        )
    keys, counts = np.unique(key, return_counts=True)
    acts = keys % n_act
    rep = counts > 1
    return (
        np.bincount(acts, minlength=n_act),
        np.bincount(acts[rep], minlength=n_act),
        np.bincount(acts, weights=counts - 1, minlength=n_act).astype(np.int64),
        int(np.unique(keys[rep] // n_act).shape[0]),
    )


def _resources(frame: pl.DataFrame, act: np.ndarray, n_act: int) -> tuple[np.ndarray, int]:
    """(distinct resources per activity code, distinct resources overall); nulls are not resources.

    ``act`` is in frame order here (codes are computed before sorting and this runs on the frame).
    """
    res_col = frame[RESOURCE]
    valid = res_col.is_not_null().to_numpy()
    names = res_col.drop_nulls().unique()
    n_res = names.shape[0]
    if n_res == 0:
        return np.zeros(n_act, dtype=np.int64), 0
    codes = _codes(res_col.drop_nulls(), names).astype(np.int64)
    pair = act[valid].astype(np.int64) * n_res + codes
    if n_act * n_res <= _DENSE_LIMIT:
        seen = np.bincount(pair, minlength=n_act * n_res).reshape(n_act, n_res)
        return np.count_nonzero(seen, axis=1), int(n_res)
    uniq = np.unique(pair)
    return np.bincount(uniq // n_res, minlength=n_act), int(n_res)


_HASH_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant (golden ratio)


def _variant_ids(act: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(variant id per case in first-seen order, first case of each variant) for contiguous cases.

    Vectorised: a polynomial hash (mod 2**64) of each case's activity codes plus its length
    groups the cases, then every case is compared element by element with its group's first case,
    so a hash collision can never merge two variants (it falls back to exact byte keys).
    """
    n_cases = starts.shape[0]
    n = act.shape[0]
    offsets = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    powers = np.cumprod(np.full(int(lengths.max()), _HASH_MULTIPLIER, dtype=np.uint64))
    terms = (act.astype(np.uint64) + np.uint64(1)) * powers[offsets]
    hashes = np.add.reduceat(terms, starts)
    order = np.lexsort((np.arange(n_cases), lengths, hashes))
    h_sorted, l_sorted = hashes[order], lengths[order]
    brk = np.empty(n_cases, dtype=bool)
    brk[0] = True
    brk[1:] = (h_sorted[1:] != h_sorted[:-1]) | (l_sorted[1:] != l_sorted[:-1])
    group_sorted = np.cumsum(brk) - 1
    first_case = order[brk]  # the lowest case index of each group (ties were sorted by index)
    rank = np.empty(first_case.shape[0], dtype=np.int64)
    rank[np.argsort(first_case)] = np.arange(first_case.shape[0])
    vid = np.empty(n_cases, dtype=np.int64)
    vid[order] = rank[group_sorted]
    rep_case = np.sort(first_case)
    same = np.repeat(starts[rep_case[vid]] - starts, lengths) + np.arange(n, dtype=np.int64)
    if np.array_equal(act[same], act):
        return vid, rep_case
    return _variant_ids_exact(act, starts, lengths)


def _variant_ids_exact(
    act: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Like :func:`_variant_ids` with each case's codes as bytes for a dict key (hash collisions)."""
    code_dtype = np.uint32
    width = np.dtype(code_dtype).itemsize
    buf = act.astype(code_dtype).tobytes()
    bounds = zip((starts * width).tolist(), ((starts + lengths) * width).tolist(), strict=True)
    ids: dict[bytes, int] = {}
    firsts: list[int] = []
    vid = np.empty(starts.shape[0], dtype=np.int64)
    for c, (a, b) in enumerate(bounds):
        key = buf[a:b]
        v = ids.get(key)
        if v is None:
            v = ids[key] = len(ids)
            firsts.append(c)
        vid[c] = v
    return vid, np.asarray(firsts, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# Entry point


def discover(
    table: EventTable,
    *,
    progress: Progress | None = None,
    max_variants: int = 1000,
    max_bottlenecks: int = 20,
) -> MiningResult:
    """Compute every figure from an EventTable (see the module docstring for the semantics)."""
    progress = throttled(progress)
    frame = table.frame
    n = frame.height
    if n == 0:
        raise MiningInputError(
            "The log has no events to analyse (every row lacked a case id, activity or time)."
        )
    _report(progress, "sorting", 0.0)

    act_names = frame[ACTIVITY].unique().sort()
    n_act = act_names.shape[0]
    act = _codes(frame[ACTIVITY], act_names)
    act_in_frame_order = act
    case_names = frame[CASE].unique(maintain_order=True)
    case = _codes(frame[CASE], case_names)
    ts = _ns(frame[TIMESTAMP])
    has_start = START_TIMESTAMP in frame.columns
    st = _ns(frame[START_TIMESTAMP]) if has_start else None
    _report(progress, "sorting", 0.3)

    order = _sort_order(case, ts, st, case_names.shape[0])
    if order is not None:
        case, act, ts = case[order], act[order], ts[order]
        if st is not None:
            st = st[order]
    _report(progress, "sorting", 1.0)
    _report(progress, "discovering", 0.0)

    # Case boundaries: events of a case are now contiguous.
    brk = np.empty(n, dtype=bool)
    brk[0] = True
    np.not_equal(case[1:], case[:-1], out=brk[1:])
    starts = np.flatnonzero(brk)
    ends = np.append(starts[1:], n) - 1
    n_cases = starts.shape[0]
    names = act_names.to_list()

    # Case durations: last - first timestamp in the (start, end) order, as pm4py does.
    dur_ns = ts[ends] - ts[starts]
    dur_s = dur_ns.astype(np.float64) / NS
    dur_sorted = np.sort(dur_s)

    # Activity counts, start/end activities.
    ev_counts = np.bincount(act, minlength=n_act)
    start_counts = np.bincount(act[starts], minlength=n_act)
    end_counts = np.bincount(act[ends], minlength=n_act)
    _report(progress, "discovering", 0.15)

    # Directly-follows pairs inside a case.
    inner = ~brk[1:]
    src = act[:-1][inner].astype(np.int64)
    dst = act[1:][inner].astype(np.int64)
    nxt_time = st[1:] if st is not None else ts[1:]
    wait = nxt_time[inner] - ts[:-1][inner]
    pair = src * n_act + dst
    pair_s, wait_s, firsts, lengths = _sort_grouped(pair, wait, n_act * n_act)
    stats = _grouped_stats(wait_s, firsts, lengths)
    pair_keys = pair_s[firsts]
    dfg: list[Edge] = []
    for i in range(pair_keys.shape[0]):
        s_code, t_code = divmod(int(pair_keys[i]), n_act)
        dfg.append(
            Edge(
                source=names[s_code],
                target=names[t_code],
                count=int(lengths[i]),
                median_s=float(stats["median"][i]),
                mean_s=float(stats["mean"][i]),
                p90_s=float(stats["p90"][i]),
                min_s=float(stats["min"][i]),
                max_s=float(stats["max"][i]),
            )
        )
    dfg.sort(key=lambda e: (-e.count, e.source, e.target))
    _report(progress, "discovering", 0.45)

    # Variants: ids in first-seen case order, and one representative case per variant.
    vid, rep_case = _variant_ids(act, starts, ends - starts + 1)
    n_variants = rep_case.shape[0]
    var_counts = np.bincount(vid, minlength=n_variants)
    vord = np.lexsort((dur_ns, vid))
    v_firsts, v_lengths = _group_bounds(vid[vord])
    v_stats = _grouped_stats(dur_ns[vord], v_firsts, v_lengths)
    # Most frequent first; ties keep first-seen order (stable) so results are deterministic.
    top = np.argsort(-var_counts, kind="stable")[:max_variants]
    variants = [
        Variant(
            rank=r + 1,
            activities=[names[c] for c in act[starts[rep_case[v]] : ends[rep_case[v]] + 1].tolist()],
            count=int(var_counts[v]),
            share=float(var_counts[v] / n_cases),
            median_duration_s=float(v_stats["median"][v]),
            mean_duration_s=float(v_stats["mean"][v]),
        )
        for r, v in enumerate(top.tolist())
    ]
    _report(progress, "discovering", 0.7)

    # Per (case, activity) occurrence counts: cases per activity and rework (repeats in a case).
    cases_per_act, rework_cases, rework_events, cases_with_rework = _occurrences(case, act, n_cases, n_act)
    act_dur: dict[str, np.ndarray] | None = None
    if st is not None:
        d = ts - st
        aord = np.lexsort((d, act))
        a_firsts, a_lengths = _group_bounds(act[aord])
        act_dur = _grouped_stats(d[aord], a_firsts, a_lengths)
        act_dur["codes"] = act[aord][a_firsts]
    resources_per_act: np.ndarray | None = None
    n_resources: int | None = None
    if RESOURCE in frame.columns:
        resources_per_act, n_resources = _resources(frame, act_in_frame_order, n_act)
    _report(progress, "discovering", 0.85)

    activities: list[ActivityStats] = []
    dur_index = {int(c): i for i, c in enumerate(act_dur["codes"].tolist())} if act_dur is not None else {}
    for code, name in enumerate(names):
        stats_row = ActivityStats(
            activity=name,
            events=int(ev_counts[code]),
            cases=int(cases_per_act[code]),
            start_count=int(start_counts[code]),
            end_count=int(end_counts[code]),
            rework_cases=int(rework_cases[code]),
            rework_events=int(rework_events[code]),
            rework_share=float(rework_cases[code] / cases_per_act[code]) if cases_per_act[code] else 0.0,
        )
        if act_dur is not None and code in dur_index:
            j = dur_index[code]
            stats_row.duration_mean_s = float(act_dur["mean"][j])
            stats_row.duration_median_s = float(act_dur["median"][j])
        if resources_per_act is not None:
            stats_row.resources = int(resources_per_act[code])
        activities.append(stats_row)
    activities.sort(key=lambda a: (-a.events, a.activity))

    impacts = [(e, e.median_s * e.count) for e in dfg]
    total_impact = sum(max(0.0, imp) for _, imp in impacts)
    impacts.sort(key=lambda t: (-t[1], t[0].source, t[0].target))
    bottlenecks = [
        Bottleneck(
            source=e.source,
            target=e.target,
            count=e.count,
            median_s=e.median_s,
            impact_s=float(imp),
            impact_share=float(imp / total_impact) if total_impact > 0 else 0.0,
        )
        for e, imp in impacts[:max_bottlenecks]
        if imp > 0
    ]

    summary = Summary(
        n_cases=int(n_cases),
        n_events=int(n),
        n_activities=int(n_act),
        n_variants=int(n_variants),
        first_timestamp=_iso(int(ts.min())),
        last_timestamp=_iso(int(ts.max())),
        case_duration_mean_s=float(dur_s.mean()),
        case_duration_median_s=_quantile(dur_sorted, 0.5),
        case_duration_p90_s=_quantile(dur_sorted, 0.9),
        case_duration_min_s=float(dur_sorted[0]),
        case_duration_max_s=float(dur_sorted[-1]),
        n_resources=n_resources,
        has_start_timestamps=has_start,
        cases_with_rework=cases_with_rework,
        rework_share=float(cases_with_rework / n_cases),
    )
    result = MiningResult(
        summary=summary,
        activities=activities,
        start_activities={names[i]: int(start_counts[i]) for i in np.flatnonzero(start_counts).tolist()},
        end_activities={names[i]: int(end_counts[i]) for i in np.flatnonzero(end_counts).tolist()},
        dfg=dfg,
        variants=variants,
        case_duration_histogram=_histogram(dur_s),
        bottlenecks=bottlenecks,
        notes=list(table.notes),
    )
    _report(progress, "discovering", 1.0)
    return result
