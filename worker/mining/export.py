"""The API's JSON shapes of a mining result (shared by `journeylens mine` and the tests that compare
the CLI with the API)."""

from __future__ import annotations

from typing import Any

from .discovery import MiningResult


def api_shapes(result: MiningResult) -> dict[str, Any]:
    """{"summary", "dfg", "variants", "activities"} exactly as /api/v1/event-logs/<id>/... answer them."""
    s = result.summary
    return {
        "summary": {
            "cases": s.n_cases,
            "events": s.n_events,
            "activities": s.n_activities,
            "variants": s.n_variants,
            "start": s.first_timestamp,
            "end": s.last_timestamp,
            "case_duration_s": {
                "mean": s.case_duration_mean_s,
                "median": s.case_duration_median_s,
                "p90": s.case_duration_p90_s,
            },
        },
        "dfg": {
            "edges": [
                {
                    "source": e.source,
                    "target": e.target,
                    "frequency": e.count,
                    "mean_s": e.mean_s,
                    "median_s": e.median_s,
                    "p90_s": e.p90_s,
                }
                for e in result.dfg
            ],
            "start_activities": dict(result.start_activities),
            "end_activities": dict(result.end_activities),
        },
        "variants": [
            {
                "activities": list(v.activities),
                "cases": v.count,
                "share": v.share,
                "median_duration_s": v.median_duration_s,
            }
            for v in result.variants
        ],
        "activities": [{"name": a.activity, "events": a.events, "cases": a.cases} for a in result.activities],
    }
