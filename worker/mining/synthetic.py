"""Seeded generator of realistic ITSM incident logs, with independently known answers.

The process: Logged -> (Triage) -> Assign -> Work in progress -> [Escalate -> Assign -> Work in
progress]* -> [Awaiting user info -> Work in progress] -> Resolve -> [Reopen -> Work in progress ->
Resolve]* -> (Close). Escalation odds depend on priority; waits are log-normal per activity; each
case has a channel and priority; resources come from the pool that owns each activity.

The known answers (counts of cases, events, activities, variants, directly-follows pairs, start /
end activities, case durations) are tallied from the generated paths while generating, never by
sorting or grouping the output, so comparing them with the miner's figures is a real check. Within
a case timestamps strictly increase (every wait >= 1 s), so the true order is unambiguous.
"""

from __future__ import annotations

import gzip
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np
import polars as pl

from .table import ACTIVITY, CASE, RESOURCE, TIMESTAMP, EventTable, build_table

ACTIVITIES = (
    "Logged",
    "Triage",
    "Assign",
    "Work in progress",
    "Escalate",
    "Awaiting user info",
    "Resolve",
    "Reopen",
    "Close",
)
_CODE = {name: i for i, name in enumerate(ACTIVITIES)}
# Median wait before each activity (seconds) and log-normal spread.
_WAIT_MEDIAN_S = np.array(
    [0, 15 * 60, 45 * 60, 2 * 3600, 3 * 3600, 4 * 3600, 6 * 3600, 2 * 86400, 3 * 86400], dtype=float
)
_WAIT_SIGMA = np.array([0, 0.8, 0.9, 1.0, 0.9, 1.1, 1.0, 0.7, 0.3])
_ESCALATE_P = {1: 0.35, 2: 0.25, 3: 0.15, 4: 0.08}
_PRIORITY_WEIGHTS = (0.05, 0.2, 0.5, 0.25)
_CHANNELS = ("Email", "Phone", "Self-service portal", "Chat")
_CHANNEL_WEIGHTS = (0.35, 0.3, 0.25, 0.1)
_SERVICE_DESK = [f"SD Agent {i:02d}" for i in range(1, 13)]
_RESOLVERS = [f"{team} {i}" for team in ("Network", "Apps", "Workplace", "Database") for i in range(1, 7)]
_SECOND_LINE = [f"L2 Engineer {i:02d}" for i in range(1, 9)]
# Which pool performs each activity (index into _POOLS).
_POOLS = (_SERVICE_DESK, _RESOLVERS, _SECOND_LINE, ["System"], ["Caller"])
_ACTIVITY_POOL = np.array([0, 0, 0, 1, 2, 4, 1, 4, 3])

CSV_COLUMNS = {
    CASE: "Number",
    ACTIVITY: "Status",
    TIMESTAMP: "sys_updated_on",
    RESOURCE: "Assigned to",
}


@dataclass
class KnownAnswers:
    """What a correct miner must report for the generated log."""

    n_cases: int
    n_events: int
    activity_counts: dict[str, int]
    variant_counts: dict[tuple[str, ...], int]
    dfg_counts: dict[tuple[str, str], int]
    start_activities: dict[str, int]
    end_activities: dict[str, int]
    case_durations_s: list[float] = field(repr=False)

    @property
    def n_variants(self) -> int:
        """Number of distinct variants."""
        return len(self.variant_counts)

    @property
    def n_activities(self) -> int:
        """Number of distinct activities that occur."""
        return len(self.activity_counts)


@dataclass
class SyntheticLog:
    """Generated events (in export order: by time across cases) and their known answers."""

    events: pl.DataFrame
    truth: KnownAnswers

    def to_table(self) -> EventTable:
        """The events as an EventTable (no file round trip)."""
        f = self.events
        return build_table(
            {
                CASE: f[CSV_COLUMNS[CASE]],
                ACTIVITY: f[CSV_COLUMNS[ACTIVITY]],
                TIMESTAMP: f[CSV_COLUMNS[TIMESTAMP]],
                RESOURCE: f[CSV_COLUMNS[RESOURCE]],
            },
            source_format="memory",
        )


def _path(rng: random.Random, priority: int) -> list[int]:
    """One case's activity sequence (codes)."""
    c = _CODE
    path = [c["Logged"]]
    if rng.random() < 0.85:  # the rest are auto-routed by a category rule
        path.append(c["Triage"])
    path += [c["Assign"], c["Work in progress"]]
    escalations = 0
    while escalations < 3 and rng.random() < _ESCALATE_P[priority]:
        path += [c["Escalate"], c["Assign"], c["Work in progress"]]
        escalations += 1
    if rng.random() < 0.18:
        path += [c["Awaiting user info"], c["Work in progress"]]
    path.append(c["Resolve"])
    reopens = 0
    while reopens < 2 and rng.random() < 0.07:
        path += [c["Reopen"], c["Work in progress"], c["Resolve"]]
        reopens += 1
    if rng.random() < 0.96:  # the others were still awaiting auto-close at export time
        path.append(c["Close"])
    return path


def generate_incident_log(
    n_cases: int,
    *,
    seed: int = 0,
    start: str = "2024-01-01 00:00:00",
    span_days: int = 365,
) -> SyntheticLog:
    """Generate ``n_cases`` incidents (about 8 events each) with their known answers."""
    if n_cases < 1:
        raise ValueError("n_cases must be at least 1")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    priorities = rng.choices((1, 2, 3, 4), weights=_PRIORITY_WEIGHTS, k=n_cases)
    channels = rng.choices(range(len(_CHANNELS)), weights=_CHANNEL_WEIGHTS, k=n_cases)
    paths = [_path(rng, p) for p in priorities]

    lengths = np.fromiter((len(p) for p in paths), dtype=np.int64, count=n_cases)
    n_events = int(lengths.sum())
    acts = np.fromiter((a for p in paths for a in p), dtype=np.int64, count=n_events)
    case_of = np.repeat(np.arange(n_cases), lengths)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))

    # Waits: log-normal around the activity's median, at least 1 s (strictly increasing times).
    z = nrng.standard_normal(n_events)
    waits = np.maximum(1, np.round(_WAIT_MEDIAN_S[acts] * np.exp(_WAIT_SIGMA[acts] * z))).astype(np.int64)
    waits[first] = 0
    cum = np.cumsum(waits)
    offsets = cum - np.repeat(cum[first], lengths)
    t0 = int(np.datetime64(start.replace(" ", "T"), "s").astype(np.int64))
    arrivals = t0 + np.sort(nrng.integers(0, span_days * 86400, n_cases))
    ts_s = arrivals[case_of] + offsets

    pool_idx = _ACTIVITY_POOL[acts]
    pick = nrng.random(n_events)
    resource = np.empty(n_events, dtype=object)
    for p, pool in enumerate(_POOLS):
        sel = pool_idx == p
        resource[sel] = np.asarray(pool, dtype=object)[(pick[sel] * len(pool)).astype(np.int64)]

    numbers = [f"INC{i + 1:07d}" for i in range(n_cases)]
    names = np.asarray(ACTIVITIES, dtype=object)

    # Known answers, tallied from the paths themselves.
    variant_counts = Counter(tuple(ACTIVITIES[a] for a in p) for p in paths)
    dfg_counts: Counter[tuple[str, str]] = Counter()
    for variant, count in variant_counts.items():
        for a, b in zip(variant, variant[1:], strict=False):
            dfg_counts[(a, b)] += count
    activity_counts: Counter[str] = Counter()
    for variant, count in variant_counts.items():
        for a in variant:
            activity_counts[a] += count
    last = first + lengths - 1
    truth = KnownAnswers(
        n_cases=n_cases,
        n_events=n_events,
        activity_counts=dict(activity_counts),
        variant_counts=dict(variant_counts),
        dfg_counts=dict(dfg_counts),
        start_activities=dict(Counter(ACTIVITIES[p[0]] for p in paths)),
        end_activities=dict(Counter(ACTIVITIES[p[-1]] for p in paths)),
        case_durations_s=(offsets[last]).astype(float).tolist(),
    )

    frame = pl.DataFrame(
        {
            "Number": pl.Series(np.asarray(numbers, dtype=object)[case_of], dtype=pl.String),
            "Status": pl.Series(names[acts], dtype=pl.String),
            "sys_updated_on": pl.Series(ts_s * 1_000_000_000, dtype=pl.Int64)
            .cast(pl.Datetime("ns"))
            .dt.replace_time_zone("UTC"),
            "Assigned to": pl.Series(resource, dtype=pl.String),
            "Channel": pl.Series(
                np.asarray(_CHANNELS, dtype=object)[np.asarray(channels)[case_of]], dtype=pl.String
            ),
            "Priority": pl.Series(np.asarray(priorities)[case_of], dtype=pl.Int64),
        }
    )
    # Export order: an ITSM audit export lists updates by time across tickets, not per ticket.
    frame = frame.sort("sys_updated_on", maintain_order=True)
    return SyntheticLog(events=frame, truth=truth)


def write_csv(log: SyntheticLog, path: str | Path) -> Path:
    """Write the events as a ServiceNow-style CSV (gzip when the name ends with .gz)."""
    path = Path(path)
    out = log.events.with_columns(pl.col("sys_updated_on").dt.strftime("%Y-%m-%d %H:%M:%S"))
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(out.write_csv().encode("utf-8"), compresslevel=5))
    else:
        out.write_csv(path)
    return path


def write_xes(log: SyntheticLog, path: str | Path) -> Path:
    """Write the events as XES 1.0 (one trace per incident, gzip when the name ends with .gz)."""
    path = Path(path)
    frame = log.events.with_row_index("_row").sort(["Number", "sys_updated_on", "_row"])
    frame = frame.with_columns(pl.col("sys_updated_on").dt.strftime("%Y-%m-%dT%H:%M:%S.000+00:00"))
    opener = gzip.open if path.suffix == ".gz" else open
    cols = [
        frame[c].to_list()
        for c in ("Number", "Status", "sys_updated_on", "Assigned to", "Channel", "Priority")
    ]
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        fh.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        fh.write(
            '<log xes.version="1.0" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">\n'
        )
        fh.write(
            '  <extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>\n'
        )
        fh.write('  <extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>\n')
        fh.write(
            '  <extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>\n'
        )
        current = None
        buf: list[str] = []
        for number, status, ts, who, channel, prio in zip(*cols, strict=True):
            if number != current:
                if current is not None:
                    buf.append("  </trace>\n")
                buf.append(
                    f'  <trace>\n    <string key="concept:name" value={quoteattr(number)}/>\n'
                    f'    <string key="channel" value={quoteattr(channel)}/>\n'
                    f'    <int key="priority" value="{prio}"/>\n'
                )
                current = number
            buf.append(
                f'    <event>\n      <string key="concept:name" value={quoteattr(status)}/>\n'
                f'      <string key="org:resource" value={quoteattr(who)}/>\n'
                f'      <date key="time:timestamp" value="{ts}"/>\n'
                '      <string key="lifecycle:transition" value="complete"/>\n    </event>\n'
            )
            if len(buf) > 10000:
                fh.write("".join(buf))
                buf.clear()
        if current is not None:
            buf.append("  </trace>\n")
        buf.append("</log>\n")
        fh.write("".join(buf))
    return path
