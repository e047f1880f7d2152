"""Feedback beside the data: survey scores per step, imported from CSV all or nothing.

The file has a header `step, date, metric, value`. `metric` is `nps` (a score −100…100), `csat`
(1…5), `ces` (1…7, lower is better), `nps_answer` (one raw 0…10 answer; answers of a step and day are
turned into one NPS = % promoters (9–10) − % detractors (0–6)), or any other name (a custom figure).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from webapp.extensions import db
from webapp.models import Step
from webapp.models.overlay import SurveyScore
from webapp.services import Actor, ServiceError, audit
from webapp.services import journeys as journey_service

RANGES = {"nps": (-100.0, 100.0), "csat": (1.0, 5.0), "ces": (1.0, 7.0), "nps_answer": (0.0, 10.0)}
MAX_ROWS = 100_000
MAX_BYTES = 10 * 1024 * 1024


class SurveyImportError(ServiceError):
    """The file was refused; `problems` lists (line, message), nothing was saved."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        shown = "; ".join(f"line {line}: {message}" for line, message in problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"Nothing was imported. Fix these rows and upload again — {shown}{more}.")
        self.problems = problems


@dataclass(frozen=True)
class ImportReport:
    rows: int
    scores: int
    steps: int


def import_csv(journey_id: int, data: bytes, filename: str, actor: Actor) -> ImportReport:
    """Check every row first; save all of them or none."""
    journey_service.get_journey(journey_id)
    if not data:
        raise ServiceError("Choose a CSV file with the columns step,date,metric,value.")
    if len(data) > MAX_BYTES:
        raise ServiceError("The survey file is larger than 10 MB; split it and import the parts.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ServiceError("The survey file is not UTF-8 text; save it as CSV UTF-8 and try again.") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    if header[:4] != ["step", "date", "metric", "value"]:
        raise ServiceError("The first line must be the header: step,date,metric,value.")
    steps = list(db.session.scalars(sa.select(Step).where(Step.journey_id == journey_id)))
    by_id = {str(s.id): s.id for s in steps}
    by_name: dict[str, list[int]] = defaultdict(list)
    for s in steps:
        by_name[s.name.strip().casefold()].append(s.id)

    problems: list[tuple[int, str]] = []
    parsed: list[tuple[int, date, str, float]] = []
    for line_no, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(parsed) + len(problems) >= MAX_ROWS:
            problems.append((line_no, f"more than {MAX_ROWS} rows; split the file"))
            break
        if len(row) < 4:
            problems.append((line_no, "needs 4 columns: step, date, metric, value"))
            continue
        step_text, day_text, metric, value_text = (cell.strip() for cell in row[:4])
        metric = metric.lower()
        if step_text in by_id:
            step_id = by_id[step_text]
        else:
            matches = by_name.get(step_text.casefold(), [])
            if not matches:
                problems.append((line_no, f"no step named “{step_text[:60]}” in this journey"))
                continue
            if len(matches) > 1:
                problems.append(
                    (line_no, f"{len(matches)} steps are named “{step_text[:60]}”; use the step id")
                )
                continue
            step_id = matches[0]
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            problems.append((line_no, f"“{day_text[:30]}” is not a date like 2026-03-01"))
            continue
        if not metric or len(metric) > 64 or not metric.replace("_", "").isalnum():
            problems.append((line_no, "the metric must be nps, csat, ces, nps_answer or a short name"))
            continue
        try:
            value = float(value_text)
        except ValueError:
            problems.append((line_no, f"“{value_text[:30]}” is not a number"))
            continue
        if value != value or value in (float("inf"), float("-inf")):
            problems.append((line_no, "the value must be a finite number"))
            continue
        low, high = RANGES.get(metric, (float("-inf"), float("inf")))
        if not low <= value <= high:
            problems.append((line_no, f"{metric} must be between {low:g} and {high:g}, not {value:g}"))
            continue
        parsed.append((step_id, day, metric, value))
    if problems:
        raise SurveyImportError(problems)
    if not parsed:
        raise ServiceError("The file has a header but no rows.")

    answers: dict[tuple[int, date], list[float]] = defaultdict(list)
    scores: dict[tuple[int, date, str], list[float]] = defaultdict(list)
    for step_id, day, metric, value in parsed:
        if metric == "nps_answer":
            answers[(step_id, day)].append(value)
        else:
            scores[(step_id, day, metric)].append(value)
    rows = [
        SurveyScore(
            journey_id=journey_id,
            step_id=s,
            day=d,
            metric=m,
            value=sum(v) / len(v),
            responses=len(v),
            source=filename[:255],
        )
        for (s, d, m), v in scores.items()
    ]
    for (s, d), values in answers.items():
        promoters = sum(1 for v in values if v >= 9)
        detractors = sum(1 for v in values if v <= 6)
        nps = 100.0 * (promoters - detractors) / len(values)
        rows.append(
            SurveyScore(
                journey_id=journey_id,
                step_id=s,
                day=d,
                metric="nps",
                value=nps,
                responses=len(values),
                source=filename[:255],
            )
        )
    db.session.add_all(rows)
    audit.record(
        actor, "journey.surveys_imported", f"journey {journey_id}", rows=len(parsed), file=filename[:255]
    )
    db.session.commit()
    report = ImportReport(rows=len(parsed), scores=len(rows), steps=len({r.step_id for r in rows}))
    from webapp.services import goals  # goals build on the scores: survey KPIs get their measurements

    goals.record_from_surveys(journey_id)
    return report


def latest_by_step(journey_id: int) -> dict[int, dict[str, float]]:
    """Per step, per metric: the response-weighted mean of the latest day with that metric."""
    rows = db.session.scalars(
        sa.select(SurveyScore).where(SurveyScore.journey_id == journey_id).order_by(SurveyScore.day)
    ).all()
    latest: dict[tuple[int, str], tuple[date, float, int]] = {}
    for r in rows:
        key = (r.step_id, r.metric)
        day, total, n = latest.get(key, (r.day, 0.0, 0))
        if r.day > day:
            total, n = 0.0, 0
        latest[key] = (r.day, total + r.value * r.responses, n + r.responses)
    result: dict[int, dict[str, float]] = defaultdict(dict)
    for (step_id, metric), (_, total, n) in latest.items():
        result[step_id][metric] = total / n if n else 0.0
    return dict(result)


def sentiment(scores: dict[str, Any]) -> float | None:
    """Measured sentiment on the emotion scale −3…+3: the mean of the known metrics, each rescaled."""
    scaled = []
    if "csat" in scores:
        scaled.append((scores["csat"] - 3.0) * 1.5)
    if "nps" in scores:
        scaled.append(scores["nps"] / 100.0 * 3.0)
    if "ces" in scores:
        scaled.append(4.0 - scores["ces"])
    return round(sum(scaled) / len(scaled), 2) if scaled else None
