"""Seeded generator of realistic ITSM incident logs, with independently known answers.

The process (each case, in order)::

    Logged                                   always first (portal / e-mail: "System"; phone / chat: an agent)
    [Classify]                               service desk sets category and priority (else auto-routed)
    Assign                                   to a resolver group (the right one, or a wrong guess ...)
    [Reassign]*                              ... which bounces it on: Assign -> Reassign -> Reassign
    Work in progress
    ( Awaiting user info -> Work in progress  the resolver needs something from the caller
    | Escalate -> Assign -> Work in progress  to second line (odds depend on the priority)
    | Reassign -> Work in progress )*         hand-over inside the group
    Resolve
    [Reopen -> Work in progress -> Resolve]*  the caller says it is not fixed
    Close                                    the nightly job auto-closes 5 days after Resolve, or the
                                             caller confirms earlier

Every number behind it is in :class:`IncidentProcess` (``generate_incident_log(..., process=...)``),
so the log's parameters are known, not just its answers.

Time: each event waits after the previous one. Work (everything done by the service desk or a
resolver) happens on *office time*: Monday-Friday 08:00-18:00 in the log's time zone, so a wait of
"3 office hours" that starts Friday 17:00 ends Monday 10:00. The caller's reply to "Awaiting user
info", a reopening and closure run on *calendar time* (nights and weekends too). Waits are a mix of
a log-normal body and, for ``tail_share`` of them, a Pareto tail (a few tickets wait for weeks),
capped at ``max_office_wait_s`` / ``max_calendar_wait_s``; office waits scale with the priority.
Arrivals: phone and chat only in office hours, portal and e-mail partly at night and weekends.

The export is a snapshot at the end of the span: events after it are not in the log, so recent
tickets are still open and end in whatever state they had reached.

The known answers (counts of cases, events, activities, variants, directly-follows pairs, start /
end activities, case durations) are tallied from the generated paths and time arrays while
generating, never by sorting or grouping the output, so comparing them with the miner's figures is a
real check. Within a case timestamps strictly increase (every wait >= 1 s, and DST folds in a
non-UTC ``timezone`` are evened out), so the true order is unambiguous. About 1M events (135,000
cases) take ~1-2 s on one core: paths are drawn in a Python loop per case, times are computed one
path position at a time across all cases with numpy.

Columns: Number, Status, sys_updated_on (UTC; ``write_csv`` writes naive UTC text for a UTC log and
local time with its offset otherwise), Assigned to, Channel, Priority (1-4), Category.
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
from .timestamps import check_timezone

ACTIVITIES = (
    "Logged",
    "Classify",
    "Assign",
    "Reassign",
    "Work in progress",
    "Awaiting user info",
    "Escalate",
    "Resolve",
    "Reopen",
    "Close",
)
(
    LOGGED,
    CLASSIFY,
    ASSIGN,
    REASSIGN,
    WORK,
    AWAITING,
    ESCALATE,
    RESOLVE,
    REOPEN,
    CLOSE,
) = range(len(ACTIVITIES))

CSV_COLUMNS = {
    CASE: "Number",
    ACTIVITY: "Status",
    TIMESTAMP: "sys_updated_on",
    RESOURCE: "Assigned to",
}

DAY_S = 86_400
HOUR_S = 3_600


@dataclass(frozen=True)
class Wait:
    """A wait before an event: log-normal with this median (s) and spread, on one clock.

    ``clock`` is "office" (seconds of office time: a 10-hour working day has 36,000) or
    "calendar" (wall-clock seconds).
    """

    median_s: float
    sigma: float
    clock: str = "office"


@dataclass(frozen=True)
class IncidentProcess:
    """Every parameter of the generated process (the defaults describe a mid-size service desk)."""

    # Office hours in the log's time zone: Monday-Friday, [office_open_h, office_close_h).
    office_open_h: int = 8
    office_close_h: int = 18
    priority_weights: tuple[float, ...] = (0.05, 0.20, 0.50, 0.25)  # P1 critical .. P4 low
    # Office waits are multiplied by this per priority (P1 is worked on 4x faster than P3).
    priority_speed: tuple[float, ...] = (0.25, 0.5, 1.0, 1.5)
    channels: tuple[str, ...] = ("Email", "Phone", "Self-service portal", "Chat")
    channel_weights: tuple[float, ...] = (0.35, 0.30, 0.25, 0.10)
    # Share of portal / e-mail tickets raised outside office hours (phone and chat: none).
    after_hours_share: float = 0.35
    categories: tuple[str, ...] = ("Network", "Applications", "Workplace", "Database")
    category_weights: tuple[float, ...] = (0.25, 0.35, 0.30, 0.10)
    resolvers_per_group: int = 6
    service_desk_agents: int = 12
    second_line_engineers: int = 8
    p_classify: float = 0.85  # the rest are auto-routed by a category rule
    p_misroute: float = 0.22  # first assignment goes to a wrong group (Assign -> Reassign)
    p_misroute_again: float = 0.25  # ... and the next group is wrong too
    max_misroutes: int = 3
    p_awaiting_user: float = 0.18  # per work episode
    max_awaiting_user: int = 3
    p_escalate: tuple[float, ...] = (0.30, 0.20, 0.10, 0.05)  # per work episode, by priority
    max_escalations: int = 2
    p_handover: float = 0.05  # per work episode: Reassign inside the group
    max_handovers: int = 2
    p_reopen: float = 0.07
    max_reopens: int = 2
    p_auto_close: float = 0.70  # else the caller confirms the fix
    auto_close_after_s: int = 5 * DAY_S
    auto_close_hour: int = 2  # the nightly job runs at 02:00 local time
    waits: dict[str, Wait] = field(
        default_factory=lambda: {
            "Classify": Wait(20 * 60, 0.9),
            "Assign": Wait(40 * 60, 0.9),
            "Reassign": Wait(3 * HOUR_S, 1.0),
            "Work in progress": Wait(2 * HOUR_S, 1.0),
            "Awaiting user info": Wait(3 * HOUR_S, 1.0),
            "Escalate": Wait(4 * HOUR_S, 0.9),
            "Resolve": Wait(5 * HOUR_S, 1.1),
            "Reopen": Wait(1.5 * DAY_S, 0.9, "calendar"),
            "Close": Wait(6 * HOUR_S, 1.0, "calendar"),  # when the caller confirms
            "user reply": Wait(20 * HOUR_S, 1.2, "calendar"),  # Awaiting user info -> reply
            "pick up": Wait(45 * 60, 0.8),  # reply -> Work in progress
        }
    )
    tail_share: float = 0.05  # waits drawn from the Pareto tail instead of the log-normal body
    pareto_alpha: float = 1.5
    tail_scale: float = 3.0  # the tail starts at 3x the median
    max_office_wait_s: int = 40 * 36_000  # 40 office days
    max_calendar_wait_s: int = 90 * DAY_S


DEFAULT_PROCESS = IncidentProcess()


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
    process: IncidentProcess = field(default=DEFAULT_PROCESS, repr=False)
    timezone: str = "UTC"

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


# --------------------------------------------------------------------------------------------
# Paths


def _path(rng: random.Random, prio: int, p: IncidentProcess) -> list[int]:
    """One case's activity sequence (codes); ``prio`` is 0-based (0 = P1)."""
    path = [LOGGED]
    if rng.random() < p.p_classify:
        path.append(CLASSIFY)
    path.append(ASSIGN)
    misroutes = 0
    while misroutes < p.max_misroutes and rng.random() < (
        p.p_misroute if not misroutes else p.p_misroute_again
    ):
        path.append(REASSIGN)
        misroutes += 1
    path.append(WORK)
    a = p.p_awaiting_user
    b = a + p.p_escalate[prio]
    c = b + p.p_handover
    awaits = escalations = handovers = 0
    while True:  # work episodes until resolved; hitting a cap ends the work
        r = rng.random()
        if r < a and awaits < p.max_awaiting_user:
            path += [AWAITING, WORK]
            awaits += 1
        elif a <= r < b and escalations < p.max_escalations:
            path += [ESCALATE, ASSIGN, WORK]
            escalations += 1
        elif b <= r < c and handovers < p.max_handovers:
            path += [REASSIGN, WORK]
            handovers += 1
        else:
            break
    path.append(RESOLVE)
    reopens = 0
    while reopens < p.max_reopens and rng.random() < p.p_reopen:
        path += [REOPEN, WORK, RESOLVE]
        reopens += 1
    path.append(CLOSE)
    return path


# --------------------------------------------------------------------------------------------
# Office-time arithmetic on local wall-clock seconds (epoch seconds as if the zone were UTC)


class _OfficeClock:
    """Maps wall-clock seconds to cumulative office seconds and back (Mon-Fri, open..close)."""

    def __init__(self, open_h: int, close_h: int) -> None:
        if not 0 <= open_h < close_h <= 24:
            raise ValueError("office hours must satisfy 0 <= open < close <= 24")
        self.open_s = open_h * HOUR_S
        self.day_s = (close_h - open_h) * HOUR_S
        self.week_s = 5 * self.day_s

    def office(self, t: np.ndarray) -> np.ndarray:
        """Office seconds elapsed since Monday 1969-12-29 00:00 up to wall-clock ``t``."""
        days = t // DAY_S + 3  # 1970-01-01 was a Thursday
        week, wd = np.divmod(days, 7)
        in_day = np.clip(t % DAY_S - self.open_s, 0, self.day_s)
        in_day = np.where(wd < 5, in_day, 0)
        return week * self.week_s + np.minimum(wd, 5) * self.day_s + in_day

    def wall(self, b: np.ndarray) -> np.ndarray:
        """Earliest wall-clock time (from an opening time on) with ``b`` office seconds elapsed."""
        week, rest = np.divmod(b, self.week_s)
        wd, s = np.divmod(rest, self.day_s)
        return (week * 7 + wd - 3) * DAY_S + self.open_s + s

    def add(self, t: np.ndarray, office_s: np.ndarray) -> np.ndarray:
        """``t`` plus ``office_s`` (>= 1) seconds of office time: always later than ``t``."""
        return self.wall(self.office(t) + office_s)


# --------------------------------------------------------------------------------------------
# Generator


def _waits(
    nrng: np.random.Generator, spec: Wait, n: int, p: IncidentProcess, speed: np.ndarray | None = None
) -> np.ndarray:
    """``n`` waits (int seconds >= 1): log-normal body, Pareto tail, capped per clock."""
    body = spec.median_s * np.exp(spec.sigma * nrng.standard_normal(n))
    u = 1.0 - nrng.random(n)  # (0, 1]
    tail = spec.median_s * p.tail_scale * u ** (-1.0 / p.pareto_alpha)
    w = np.where(nrng.random(n) < p.tail_share, tail, body)
    if speed is not None:
        w = w * speed
    cap = p.max_office_wait_s if spec.clock == "office" else p.max_calendar_wait_s
    return np.clip(np.round(w), 1, cap).astype(np.int64)


def _local_to_utc(local_s: np.ndarray, timezone: str) -> np.ndarray:
    """Wall-clock seconds in ``timezone`` to UTC epoch seconds (DST gaps move 1 h on)."""
    if timezone == "UTC":
        return local_s
    naive = pl.Series(local_s * 1_000_000_000, dtype=pl.Int64).cast(pl.Datetime("ns"))
    aware = naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null")
    if aware.null_count():
        shifted = (naive.dt.offset_by("1h")).dt.replace_time_zone(
            timezone, ambiguous="earliest", non_existent="null"
        )
        aware = aware.fill_null(shifted)
    return (
        aware.dt.convert_time_zone("UTC").cast(pl.Datetime("ns", "UTC")).to_physical().to_numpy()
        // 1_000_000_000
    )


def generate_incident_log(
    n_cases: int,
    *,
    seed: int = 0,
    start: str = "2024-01-01 00:00:00",
    span_days: int = 365,
    timezone: str = "UTC",
    process: IncidentProcess | None = None,
) -> SyntheticLog:
    """Generate ``n_cases`` incidents (about 7.5 events each) with their known answers.

    Cases arrive over ``span_days`` from ``start`` (wall-clock in ``timezone``, whose office hours
    apply); the log is the snapshot at the end of the span.
    """
    if n_cases < 1:
        raise ValueError("n_cases must be at least 1")
    if span_days < 1:
        raise ValueError("span_days must be at least 1")
    check_timezone(timezone)
    p = process or DEFAULT_PROCESS
    clock = _OfficeClock(p.office_open_h, p.office_close_h)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)

    # Case attributes.
    prio = nrng.choice(len(p.priority_weights), size=n_cases, p=_norm(p.priority_weights))
    channel = nrng.choice(len(p.channels), size=n_cases, p=_norm(p.channel_weights))
    category = nrng.choice(len(p.categories), size=n_cases, p=_norm(p.category_weights))
    agent = nrng.integers(0, p.service_desk_agents, n_cases)
    auto_close = nrng.random(n_cases) < p.p_auto_close

    # Arrivals (local wall-clock seconds): office-hours only for phone / chat, else partly any time.
    t0 = int(np.datetime64(start.replace(" ", "T"), "s").astype(np.int64))
    t_end = t0 + span_days * DAY_S
    voice = np.isin(channel, [i for i, c in enumerate(p.channels) if c in ("Phone", "Chat")])
    any_time = ~voice & (nrng.random(n_cases) < p.after_hours_share)
    b0, b1 = clock.office(np.array([t0, t_end]))
    office_arrival = clock.wall(nrng.integers(b0, max(b0 + 1, b1), n_cases))
    arrival = np.where(any_time, nrng.integers(t0, t_end, n_cases), office_arrival)
    # Incident numbers follow arrival order.
    order = np.argsort(arrival, kind="stable")
    arrival, prio, channel, category, agent, auto_close, voice = (
        x[order] for x in (arrival, prio, channel, category, agent, auto_close, voice)
    )

    prio_list = prio.tolist()
    paths = [_path(rng, pr, p) for pr in prio_list]
    lengths = np.fromiter((len(x) for x in paths), dtype=np.int64, count=n_cases)
    n_all = int(lengths.sum())
    acts = np.fromiter((a for x in paths for a in x), dtype=np.int64, count=n_all)
    case_of = np.repeat(np.arange(n_cases), lengths)
    first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    pos = np.arange(n_all) - np.repeat(first, lengths)
    prev_act = np.concatenate(([-1], acts[:-1]))
    prev_act[first] = -1
    next_act = np.concatenate((acts[1:], [-1]))
    next_act[first + lengths - 1] = -1

    # Waits before each event: office seconds (``office``) after calendar seconds (``calendar``).
    office = np.zeros(n_all, dtype=np.int64)
    calendar = np.zeros(n_all, dtype=np.int64)
    speed = np.asarray(p.priority_speed, dtype=float)[prio[case_of]]
    after_reply = (acts == WORK) & (prev_act == AWAITING)
    for code, name in enumerate(ACTIVITIES):
        sel = acts == code
        if code == LOGGED:
            continue
        if code == WORK:
            sel &= ~after_reply
        if code == CLOSE:
            sel &= ~auto_close[case_of]
        idx = np.flatnonzero(sel)
        spec = p.waits[name]
        target = office if spec.clock == "office" else calendar
        target[idx] = _waits(nrng, spec, idx.size, p, speed[idx] if spec.clock == "office" else None)
    idx = np.flatnonzero(after_reply)
    calendar[idx] = _waits(nrng, p.waits["user reply"], idx.size, p)
    office[idx] = _waits(nrng, p.waits["pick up"], idx.size, p, speed[idx])
    nightly = (acts == CLOSE) & auto_close[case_of]

    # Times, one position at a time across all cases (each event waits after the previous one).
    local = np.zeros(n_all, dtype=np.int64)
    local[first] = arrival
    by_pos = np.argsort(pos, kind="stable")
    bounds = np.cumsum(np.bincount(pos))
    job = p.auto_close_hour * HOUR_S
    for k in range(1, bounds.shape[0]):
        e = by_pos[bounds[k - 1] : bounds[k]]
        t = local[e - 1] + calendar[e]
        t = np.where(office[e] > 0, clock.add(t, office[e]), t)
        due = local[e - 1] + p.auto_close_after_s
        t = np.where(nightly[e], ((due - job) // DAY_S + 1) * DAY_S + job, t)
        local[e] = t

    ts = _local_to_utc(local, timezone)
    if timezone != "UTC":
        # A DST change can fold two wall-clock times onto one instant: keep each case strictly
        # increasing (max-accumulate of ts - index, offset per case so cases do not mix).
        lift = case_of.astype(np.int64) * (1 << 40) - np.arange(n_all, dtype=np.int64)
        ts = np.maximum.accumulate(ts + lift) - lift
    export_at = int(_local_to_utc(np.array([t_end]), timezone)[0])
    keep = ts <= export_at  # a prefix of every case: times increase within a case
    kept_len = np.bincount(case_of[keep], minlength=n_cases)

    # Resources. A segment starts at each Assign / Reassign; its group is the case's category
    # unless the next event bounces it (a wrong guess), or second line after an escalation.
    n_groups = len(p.categories)
    sd0 = 0
    grp0 = sd0 + p.service_desk_agents
    l2_0 = grp0 + n_groups * p.resolvers_per_group
    system, caller = l2_0 + p.second_line_engineers, l2_0 + p.second_line_engineers + 1
    names = (
        [f"SD Agent {i:02d}" for i in range(1, p.service_desk_agents + 1)]
        + [f"{g} {i}" for g in p.categories for i in range(1, p.resolvers_per_group + 1)]
        + [f"L2 Engineer {i:02d}" for i in range(1, p.second_line_engineers + 1)]
        + ["System", "Caller"]
    )
    cat_ev = category[case_of]
    wrong = (cat_ev + nrng.integers(1, n_groups, n_all)) % n_groups
    group = np.where(next_act == REASSIGN, wrong, cat_ev)
    assignee = np.where(
        prev_act == ESCALATE,
        l2_0 + nrng.integers(0, p.second_line_engineers, n_all),
        grp0 + group * p.resolvers_per_group + nrng.integers(0, p.resolvers_per_group, n_all),
    )
    marker = (acts == ASSIGN) | (acts == REASSIGN)
    seg = np.maximum.accumulate(np.where(marker, np.arange(n_all), 0))
    current = assignee[seg]  # the assignee in charge at each event (valid from the first Assign)
    before = np.concatenate(([0], current[:-1]))  # for Reassign: who had it before
    desk = sd0 + agent[case_of]
    voice_ev = voice[case_of]
    resource = np.select(
        [
            acts == LOGGED,
            (acts == CLASSIFY) | (acts == ASSIGN),
            acts == REASSIGN,
            acts == REOPEN,
            acts == CLOSE,
        ],
        [
            np.where(voice_ev, desk, system),
            desk,
            before,
            caller,
            np.where(auto_close[case_of], system, caller),
        ],
        default=current,
    )

    # Known answers, tallied from the (snapshot-truncated) paths and per-case time arrays.
    kept = [tuple(ACTIVITIES[a] for a in x[:n]) for x, n in zip(paths, kept_len.tolist(), strict=True)]
    variant_counts = Counter(kept)
    dfg_counts: Counter[tuple[str, str]] = Counter()
    activity_counts: Counter[str] = Counter()
    start_activities: Counter[str] = Counter()
    end_activities: Counter[str] = Counter()
    for variant, count in variant_counts.items():
        for a, b in zip(variant, variant[1:], strict=False):
            dfg_counts[(a, b)] += count
        for a in variant:
            activity_counts[a] += count
        start_activities[variant[0]] += count
        end_activities[variant[-1]] += count
    last = first + kept_len - 1
    truth = KnownAnswers(
        n_cases=n_cases,
        n_events=int(kept_len.sum()),
        activity_counts=dict(activity_counts),
        variant_counts=dict(variant_counts),
        dfg_counts=dict(dfg_counts),
        start_activities=dict(start_activities),
        end_activities=dict(end_activities),
        case_durations_s=(ts[last] - ts[first]).astype(float).tolist(),
    )

    k = np.flatnonzero(keep)
    frame = pl.DataFrame(
        {
            "Number": pl.Series(case_of[k] + 1, dtype=pl.Int64),
            "Status": pl.Series(ACTIVITIES, dtype=pl.String).gather(acts[k]),
            "sys_updated_on": pl.Series(ts[k] * 1_000_000_000, dtype=pl.Int64)
            .cast(pl.Datetime("ns"))
            .dt.replace_time_zone("UTC"),
            "Assigned to": pl.Series(names, dtype=pl.String).gather(resource[k]),
            "Channel": pl.Series(p.channels, dtype=pl.String).gather(channel[case_of[k]]),
            "Priority": pl.Series(prio[case_of[k]] + 1, dtype=pl.Int64),
            "Category": pl.Series(p.categories, dtype=pl.String).gather(category[case_of[k]]),
        }
    ).with_columns(pl.format("INC{}", pl.col("Number").cast(pl.String).str.zfill(7)).alias("Number"))
    # Export order: an ITSM audit export lists updates by time across tickets, not per ticket.
    frame = frame.sort("sys_updated_on", maintain_order=True)
    return SyntheticLog(events=frame, truth=truth, process=p, timezone=timezone)


def _norm(weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return w / w.sum()


# --------------------------------------------------------------------------------------------
# Writers


def write_csv(log: SyntheticLog, path: str | Path) -> Path:
    """Write the events as a ServiceNow-style CSV (gzip when the name ends with .gz).

    Times are naive UTC text for a UTC log, else local wall-clock with its offset (+01:00).
    """
    path = Path(path)
    col = pl.col("sys_updated_on")
    if log.timezone == "UTC":
        text = col.dt.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = col.dt.convert_time_zone(log.timezone).dt.strftime("%Y-%m-%d %H:%M:%S%:z")
    out = log.events.with_columns(text)
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
        for c in ("Number", "Status", "sys_updated_on", "Assigned to", "Channel", "Priority", "Category")
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
        for number, status, ts, who, channel, prio, category in zip(*cols, strict=True):
            if number != current:
                if current is not None:
                    buf.append("  </trace>\n")
                buf.append(
                    f'  <trace>\n    <string key="concept:name" value={quoteattr(number)}/>\n'
                    f'    <string key="channel" value={quoteattr(channel)}/>\n'
                    f'    <int key="priority" value="{prio}"/>\n'
                    f'    <string key="category" value={quoteattr(category)}/>\n'
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
