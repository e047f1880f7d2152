"""Draft a journey map from an event log: a starting point the team edits, not an answer.

Teams with a log but no map should not face a blank canvas. :func:`draft_journey` proposes one in
the app's journey export format (``webapp/services/journey_format.py``; the step names are the
activity names, so the activity-to-step mapping proposes itself afterwards).

Heuristics, chosen to be explainable in one sentence each:

* **Steps** - the ``max_steps`` activities that occur in the most cases (not events: an activity
  repeated in a few cases should not crowd out one every case passes once).
* **Order** - by the median position (0 = the case's first event) of each activity's first
  occurrence in the cases that contain it. First occurrence, because rework would otherwise drag an
  early activity towards the end. Absolute rather than relative position (offset / case length):
  on the shared logs relative positions put activities of long cases too early (in BPIC 2012 a
  pre-acceptance, third event of long cases, before the partial submission, second event of every
  case, because short declined cases make "second" mean "half-way"). Ties: more cases, then name.
* **Stages** - 4 to 7 stages (one per step below 5 steps), about four steps each, cut at the
  *natural breaks* of the median positions (Jenks: the split that minimises the squared spread of
  positions inside the stages, by dynamic programming), with no stage more than 1.5 times the
  average size so one dense cluster does not become a catch-all stage. A stage is named after its
  first step; the team renames it.
* **Lanes** - the service blueprint: Actions, Frontstage, Backstage, Support processes. The start
  activity (most frequent first activity) is the customer's *action*. With a resource column (or
  an ``attr:`` column named like an assignment group / team / agent), each other activity goes by
  who performs most of its events: customer-like names (caller, customer, requester, ...) ->
  Actions; system-like names (system, batch, job, bot, ...) -> Support processes; people who also
  open cases (the resources of cases' first events: the desk the customer talks to) -> Frontstage;
  everybody else -> Backstage. Without resources every other step is Frontstage.
* Expected durations unknown (null), emotion 0, channel "other": the log does not know them.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

from .discovery import _codes, _group_bounds, _sort_order
from .errors import MiningInputError
from .table import ACTIVITY, ATTRIBUTE_PREFIX, CASE, RESOURCE, TIMESTAMP, EventTable

LANE_ACTIONS = "Actions"
LANE_FRONTSTAGE = "Frontstage"
LANE_BACKSTAGE = "Backstage"
LANE_SUPPORT = "Support processes"
LANES = (LANE_ACTIONS, LANE_FRONTSTAGE, LANE_BACKSTAGE, LANE_SUPPORT)

MAX_NAME = 200  # journey_format.MAX_NAME (not imported: this library never imports webapp)
MIN_STAGES, MAX_STAGES, STEPS_PER_STAGE = 4, 7, 4

_RESOURCE_LIKE = re.compile(r"assign|group|team|resource|agent|owner|performer|handler|operator", re.I)
_CUSTOMER_LIKE = re.compile(
    r"\b(caller|customer|client|requester|requestor|applicant|end ?user|citizen)\b", re.I
)
_SYSTEM_LIKE = re.compile(
    r"\b(system|batch|job|bot|robot|scheduler|workflow|automat\w*|auto|integration)\b", re.I
)


def _resource_column(frame: pl.DataFrame) -> str | None:
    """The resource column, else the first attribute column whose name says who handles the case."""
    if RESOURCE in frame.columns:
        return RESOURCE
    for name in frame.columns:
        if name.startswith(ATTRIBUTE_PREFIX) and _RESOURCE_LIKE.search(name[len(ATTRIBUTE_PREFIX) :]):
            return name
    return None


def _stage_cuts(positions: list[float], n_stages: int) -> list[int]:
    """Indices (after 0) where a new stage starts: Jenks natural breaks with a stage-size cap.

    ``best[k][j]`` = least total within-stage squared deviation of ``positions[:j]`` in ``k``
    stages; O(n^2 k) for n <= a few dozen steps. Equal costs keep the earlier cut.
    """
    n = len(positions)
    if n_stages <= 1 or n <= 1:
        return []
    n_stages = min(n_stages, n)
    cap = max(1, math.ceil(1.5 * n / n_stages))
    prefix = [0.0]
    prefix_sq = [0.0]
    for x in positions:
        prefix.append(prefix[-1] + x)
        prefix_sq.append(prefix_sq[-1] + x * x)

    def spread(a: int, b: int) -> float:
        """Sum of squared deviations from the mean of positions[a:b]."""
        total = prefix[b] - prefix[a]
        return max(0.0, prefix_sq[b] - prefix_sq[a] - total * total / (b - a))

    inf = math.inf
    best = [[inf] * (n + 1) for _ in range(n_stages + 1)]
    cut_at = [[0] * (n + 1) for _ in range(n_stages + 1)]
    best[0][0] = 0.0
    for k in range(1, n_stages + 1):
        for j in range(k, n + 1):
            for i in range(max(k - 1, j - cap), j):
                if best[k - 1][i] == inf:
                    continue
                cost = best[k - 1][i] + spread(i, j)
                if cost < best[k][j] - 1e-12:
                    best[k][j], cut_at[k][j] = cost, i
    if best[n_stages][n] == inf:  # the cap cannot be met (never for the counts we choose)
        return [round(n * k / n_stages) for k in range(1, n_stages)]
    cuts = []
    j = n
    for k in range(n_stages, 1, -1):
        j = cut_at[k][j]
        cuts.append(j)
    return sorted(cuts)


def _stage_count(n_steps: int) -> int:
    """One stage per step up to 4 steps; else about four steps per stage, from 4 to 7 stages."""
    if n_steps <= MIN_STAGES:
        return n_steps
    return max(MIN_STAGES, min(MAX_STAGES, round(n_steps / STEPS_PER_STAGE)))


def _step_name(activity: str) -> str:
    name = activity.strip()[:MAX_NAME].strip()
    return name or "(unnamed activity)"


def draft_journey(table: EventTable, *, title: str, max_steps: int = 30) -> dict[str, Any]:
    """Propose a journey (export JSON: title, kind, state, status, persona, lanes, stages, ...)."""
    frame = table.frame
    n_events = frame.height
    if n_events == 0:
        raise MiningInputError("The log has no events to draft a journey from.")
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1.")

    act_names_series = frame[ACTIVITY].unique().sort()
    act_names: list[str] = act_names_series.to_list()
    n_act = len(act_names)
    act = _codes(frame[ACTIVITY], act_names_series).astype(np.int64)
    case_names = frame[CASE].unique(maintain_order=True)
    n_cases = case_names.shape[0]
    case = _codes(frame[CASE], case_names).astype(np.int64)
    ts = frame[TIMESTAMP].cast(pl.Datetime("ns", "UTC")).to_physical().to_numpy()
    order = _sort_order(case, ts, None, n_cases)
    rows = np.arange(n_events) if order is None else order
    case, act = case[rows], act[rows]
    brk = np.empty(n_events, dtype=bool)
    brk[0] = True
    np.not_equal(case[1:], case[:-1], out=brk[1:])
    case_start = np.flatnonzero(brk)

    # First occurrence of each activity in each case, and its position (event offset) in the case.
    pair_key, first_row = np.unique(case * n_act + act, return_index=True)
    pair_case, pair_act = np.divmod(pair_key, n_act)
    offset = first_row - case_start[pair_case]
    position = offset.astype(np.float64)
    cases_per_act = np.bincount(pair_act, minlength=n_act)
    events_per_act = np.bincount(act, minlength=n_act)

    chosen = sorted(
        range(n_act), key=lambda a: (-int(cases_per_act[a]), -int(events_per_act[a]), act_names[a])
    )
    chosen = chosen[:max_steps]
    by_act = np.lexsort((position, pair_act))
    firsts, lengths = _group_bounds(pair_act[by_act])
    pos_sorted = position[by_act]
    median_position = {
        int(pair_act[by_act][f]): float((pos_sorted[f + (n - 1) // 2] + pos_sorted[f + n // 2]) / 2)
        for f, n in zip(firsts.tolist(), lengths.tolist(), strict=True)
    }
    chosen.sort(key=lambda a: (median_position[a], -int(cases_per_act[a]), act_names[a]))

    start_counts = np.bincount(act[case_start], minlength=n_act)
    start_activity = int(np.argmax(start_counts))
    lane_of = _lanes(frame, rows, act, case_start, chosen, start_activity)

    positions = [median_position[a] for a in chosen]
    cuts = [0, *_stage_cuts(positions, _stage_count(len(chosen))), len(chosen)]
    stages = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        steps = []
        for code in chosen[a:b]:
            share = cases_per_act[code] / n_cases
            steps.append(
                {
                    "name": _step_name(act_names[code]),
                    "lane": lane_of[code],
                    "channel": "other",
                    "emotion": 0,
                    "moment_of_truth": False,
                    "expected_duration_s": None,
                    "description": (
                        f"Drafted from the log: activity “{act_names[code]}” occurs in "
                        f"{int(cases_per_act[code]):,} of {n_cases:,} cases ({share:.0%}), "
                        f"{int(events_per_act[code]):,} events."
                    ),
                    "touchpoint": "",
                    "owner_team": "",
                    "notes": [],
                }
            )
        stages.append({"name": steps[0]["name"], "steps": steps})

    left_out = n_act - len(chosen)
    scenario = (
        f"Drafted from an event log of {n_cases:,} cases and {n_events:,} events: the "
        f"{len(chosen)} most common activities, in their typical order."
    )
    if left_out:
        scenario += f" {left_out} less common activit{'y was' if left_out == 1 else 'ies were'} left out."
    return {
        "title": (title.strip() or "Drafted journey")[:MAX_NAME],
        "kind": "customer",
        "state": "current",
        "status": "draft",
        "persona": None,
        "scenario": scenario,
        "tags": ["drafted from log"],
        "lanes": [{"name": lane} for lane in LANES],
        "stages": stages,
    }


def _lanes(
    frame: pl.DataFrame,
    rows: np.ndarray,
    act: np.ndarray,
    case_start: np.ndarray,
    chosen: list[int],
    start_activity: int,
) -> dict[int, str]:
    """Blueprint lane of each chosen activity code (see the module docstring for the rule)."""
    column = _resource_column(frame)
    lanes = {code: LANE_FRONTSTAGE for code in chosen}
    if column is not None:
        res_series = frame[column].gather(rows)  # event order, like `act`
        valid = res_series.is_not_null().to_numpy()
        res_names = res_series.drop_nulls().unique().sort()
        if res_names.shape[0]:
            n_res = res_names.shape[0]
            res = np.full(rows.shape[0], -1, dtype=np.int64)
            res[valid] = _codes(res_series.drop_nulls(), res_names).astype(np.int64)
            names = res_names.to_list()
            customer = np.array([bool(_CUSTOMER_LIKE.search(n)) for n in names])
            system = np.array([bool(_SYSTEM_LIKE.search(n)) for n in names])
            openers = np.zeros(n_res, dtype=bool)
            first_res = res[case_start]
            openers[first_res[first_res >= 0]] = True
            front = openers & ~customer & ~system
            has = res >= 0
            per_act = np.bincount(act[has], minlength=int(act.max()) + 1).astype(np.float64)

            def share(kind: np.ndarray) -> np.ndarray:
                hit = has.copy()
                hit[has] = kind[res[has]]
                return np.bincount(act[hit], minlength=per_act.shape[0]) / np.maximum(per_act, 1)

            customer_share, system_share, front_share = share(customer), share(system), share(front)
            for code in chosen:
                if per_act[code] == 0:
                    continue
                if customer_share[code] >= 0.5:
                    lanes[code] = LANE_ACTIONS
                elif system_share[code] >= 0.5:
                    lanes[code] = LANE_SUPPORT
                elif front_share[code] >= 0.5:
                    lanes[code] = LANE_FRONTSTAGE
                else:
                    lanes[code] = LANE_BACKSTAGE
    if start_activity in lanes:
        lanes[start_activity] = LANE_ACTIONS
    return lanes
