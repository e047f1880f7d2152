"""The journey exchange format: strict validation of export JSON and of edited fields, and CSV export.

Pure code (no database): the importer, the API, templates and single-field edits share these rules, so a
value refused in one place is refused everywhere, with a message that says where and what to fix.

The export JSON:
    {"title", "kind", "state", "status", "persona": {"name", "role", "goals", "frustrations", "quote"} | null,
     "scenario", "tags": [str],
     "lanes": [{"name"}],
     "stages": [{"name", "steps": [{"name", "lane", "channel", "emotion", "moment_of_truth",
                                    "expected_duration_s", "description", "touchpoint", "owner_team",
                                    "notes": [{"kind", "text"}]}]}]}
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

from webapp.models.journeys import (
    CHANNELS,
    EMOTION_MAX,
    EMOTION_MIN,
    JOURNEY_KINDS,
    JOURNEY_STATES,
    JOURNEY_STATUSES,
    NOTE_KINDS,
)
from webapp.services import ServiceError

MAX_TITLE = 200
MAX_NAME = 200
MAX_TEXT = 5_000
MAX_TAG = 50
MAX_TAGS = 20
# Bounds on size keep one request from building a map nobody could read (and the database busy).
MAX_LANES = 20
MAX_STAGES = 100
MAX_STEPS = 2_000
MAX_NOTES_PER_STEP = 100
MAX_DURATION_S = 10 * 366 * 24 * 3600  # ten years: anything longer is a typo

JOURNEY_KEYS = ("title", "kind", "state", "status", "persona", "scenario", "tags", "lanes", "stages")
PERSONA_KEYS = ("name", "role", "goals", "frustrations", "quote")
STEP_KEYS = (
    "name",
    "lane",
    "channel",
    "emotion",
    "moment_of_truth",
    "expected_duration_s",
    "description",
    "touchpoint",
    "owner_team",
    "notes",
)
# Fields a user edits on a step (its place is changed by moving it, its notes one by one).
STEP_FIELDS = (
    "name",
    "description",
    "channel",
    "touchpoint",
    "owner_team",
    "emotion",
    "moment_of_truth",
    "expected_duration_s",
)
JOURNEY_FIELDS = ("title", "kind", "state", "status", "scenario", "tags")


def _fail(where: str, problem: str, field: str) -> ServiceError:
    return ServiceError(f"{where}: {problem}" if where else problem[0].upper() + problem[1:], field)


def _label(where: str, name: str) -> str:
    return f"{where} “{name}”" if name else where


def text(
    value: Any, where: str, field: str, limit: int, *, required: bool = False, what: str = "the text"
) -> str:
    """A stripped string of at most `limit` characters (None counts as empty)."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise _fail(where, f"{what} must be text, not {type(value).__name__}.", field)
    value = value.strip()
    if required and not value:
        raise _fail(where, f"{what} is missing.", field)
    if len(value) > limit:
        raise _fail(where, f"{what} is {len(value):,} characters long; keep it to {limit:,}.", field)
    return value


def choice(value: Any, where: str, field: str, choices: tuple[str, ...], what: str) -> str:
    """One of `choices`, with the allowed values named when it is not."""
    if not isinstance(value, str) or value not in choices:
        raise _fail(where, f"{what} {value!r} is unknown; use one of {', '.join(choices)}.", field)
    return value


def emotion(value: Any, where: str, field: str = "emotion") -> int:
    """A whole number from -3 (very unhappy) to +3 (delighted)."""
    if isinstance(value, bool) or not isinstance(value, int) or not EMOTION_MIN <= value <= EMOTION_MAX:
        raise _fail(
            where,
            f"the emotion must be a whole number from {EMOTION_MIN} to +{EMOTION_MAX}, not {value!r}.",
            field,
        )
    return value


def duration_s(value: Any, where: str, field: str = "expected_duration_s") -> int | None:
    """Seconds (a whole number from 0 to ten years), or None when unknown."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DURATION_S:
        raise _fail(
            where,
            f"the expected duration must be a whole number of seconds from 0 to {MAX_DURATION_S:,}, "
            f"or null; not {value!r}.",
            field,
        )
    return value


def flag(value: Any, where: str, field: str, what: str) -> bool:
    """true or false (JSON booleans only: "yes" or 1 are refused, not guessed)."""
    if not isinstance(value, bool):
        raise _fail(where, f"{what} must be true or false, not {value!r}.", field)
    return value


def tags(value: Any, where: str = "", field: str = "tags") -> list[str]:
    """Distinct, stripped tags (at most MAX_TAGS of at most MAX_TAG characters)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, "the tags must be a list of words.", field)
    if len(value) > MAX_TAGS:
        raise _fail(where, f"{len(value)} tags is too many; keep it to {MAX_TAGS}.", field)
    cleaned: list[str] = []
    seen: set[str] = set()
    for raw in value:
        tag = text(raw, where, field, MAX_TAG, what="a tag")
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            cleaned.append(tag)
    return cleaned


def _object(value: Any, where: str, field: str, allowed: tuple[str, ...], what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"{what} must be a JSON object.", field)
    unknown = [k for k in value if k not in allowed]
    if unknown:
        raise _fail(
            where,
            f"unknown field {unknown[0]!r} in {what}; the fields are {', '.join(allowed)}.",
            f"{field}.{unknown[0]}" if field else str(unknown[0]),
        )
    return value


def _list(value: Any, where: str, field: str, what: str, limit: int) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(where, f"the {what} must be a list.", field)
    if len(value) > limit:
        raise _fail(where, f"{len(value):,} {what} is too many; keep it to {limit:,}.", field)
    return value


def journey_fields(raw: Mapping[str, Any], *, partial: bool, where: str = "") -> dict[str, Any]:
    """The journey's own fields, cleaned; `partial` accepts a subset (an edit), else fills defaults."""
    unknown = [k for k in raw if k not in JOURNEY_FIELDS]
    if unknown:
        raise _fail(where, f"{unknown[0]!r} is not a field of a journey.", str(unknown[0]))
    if not partial:
        raw = {"kind": "customer", "state": "current", "status": "draft", **raw}
        if "title" not in raw:
            raise _fail(where, "the title is missing.", "title")
    cleaned: dict[str, Any] = {}
    if "title" in raw:
        cleaned["title"] = text(raw["title"], where, "title", MAX_TITLE, required=True, what="the title")
    if "kind" in raw:
        cleaned["kind"] = choice(raw["kind"], where, "kind", JOURNEY_KINDS, "kind")
    if "state" in raw:
        cleaned["state"] = choice(raw["state"], where, "state", JOURNEY_STATES, "state")
    if "status" in raw:
        cleaned["status"] = choice(raw["status"], where, "status", JOURNEY_STATUSES, "status")
    if "scenario" in raw or not partial:
        cleaned["scenario"] = text(raw.get("scenario"), where, "scenario", MAX_TEXT, what="the scenario")
    if "tags" in raw or not partial:
        cleaned["tags"] = tags(raw.get("tags"), where)
    return cleaned


def step_fields(raw: Mapping[str, Any], *, partial: bool, where: str = "") -> dict[str, Any]:
    """A step's editable fields, cleaned; `partial` accepts a subset (an edit), else fills defaults."""
    unknown = [k for k in raw if k not in STEP_FIELDS]
    if unknown:
        raise _fail(where, f"{unknown[0]!r} is not a field of a step.", str(unknown[0]))
    if not partial:
        raw = {
            "description": "",
            "channel": "other",
            "touchpoint": "",
            "owner_team": "",
            "emotion": 0,
            "moment_of_truth": False,
            "expected_duration_s": None,
            **raw,
        }
        if "name" not in raw:
            raise _fail(where, "the step's name is missing.", "name")
    cleaned: dict[str, Any] = {}
    for key in STEP_FIELDS:
        if key not in raw:
            continue
        value = raw[key]
        if key == "name":
            cleaned[key] = text(value, where, key, MAX_NAME, required=True, what="the step's name")
        elif key == "description":
            cleaned[key] = text(value, where, key, MAX_TEXT, what="the description")
        elif key in ("touchpoint", "owner_team"):
            cleaned[key] = text(value, where, key, MAX_NAME, what=f"the {key.replace('_', ' ')}")
        elif key == "channel":
            cleaned[key] = choice(value, where, key, CHANNELS, "channel")
        elif key == "emotion":
            cleaned[key] = emotion(value, where)
        elif key == "moment_of_truth":
            cleaned[key] = flag(value, where, key, "moment_of_truth")
        else:
            cleaned[key] = duration_s(value, where)
    return cleaned


def persona_fields(raw: Any, *, partial: bool, where: str = "persona") -> dict[str, Any]:
    """A persona's fields, cleaned (name required unless `partial`)."""
    raw = _object(raw, where, "persona", PERSONA_KEYS, "the persona")
    if not partial and "name" not in raw:
        raise _fail(where, "the persona's name is missing.", "name")
    cleaned: dict[str, Any] = {}
    for key in PERSONA_KEYS:
        if key in raw or not partial:
            limit = MAX_NAME if key in ("name", "role") else MAX_TEXT
            cleaned[key] = text(raw.get(key), where, key, limit, required=key == "name", what=f"the {key}")
    return cleaned


def note(raw: Any, where: str, field: str = "note") -> dict[str, str]:
    """A note: its kind and a non-empty text."""
    raw = _object(raw, where, field, ("kind", "text"), "a note")
    kind = choice(raw.get("kind"), where, f"{field}.kind", NOTE_KINDS, "note kind")
    body = text(raw.get("text"), where, f"{field}.text", MAX_TEXT, what="the note's text")
    if not body:
        raise _fail(where, "the note's text is empty.", f"{field}.text")
    return {"kind": kind, "text": body}


def lane_name(value: Any, where: str, field: str = "name") -> str:
    """A lane's name (required, at most MAX_NAME characters)."""
    return text(value, where, field, MAX_NAME, required=True, what="the lane's name")


def stage_name(value: Any, where: str, field: str = "name") -> str:
    """A stage's name (required, at most MAX_NAME characters)."""
    return text(value, where, field, MAX_NAME, required=True, what="the stage's name")


def validate(data: Any) -> dict[str, Any]:
    """The export JSON, checked strictly and normalised (defaults filled); ServiceError says what to fix."""
    top = _object(data, "", "", JOURNEY_KEYS, "a journey")
    cleaned = journey_fields({k: v for k, v in top.items() if k in JOURNEY_FIELDS}, partial=False)
    persona = top.get("persona")
    cleaned["persona"] = None if persona is None else persona_fields(persona, partial=False)

    lanes: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    for index, raw_lane in enumerate(_list(top.get("lanes"), "", "lanes", "lanes", MAX_LANES)):
        where = f"lane {index + 1}"
        raw_lane = _object(raw_lane, where, f"lanes[{index}]", ("name",), "a lane")
        name = lane_name(raw_lane.get("name"), where, f"lanes[{index}].name")
        if name.lower() in seen:
            raise _fail(
                _label(where, name),
                f"a lane named “{seen[name.lower()]}” exists already.",
                f"lanes[{index}].name",
            )
        seen[name.lower()] = name
        lanes.append({"name": name})
    cleaned["lanes"] = lanes

    stages: list[dict[str, Any]] = []
    step_count = 0
    for s_index, raw_stage in enumerate(_list(top.get("stages"), "", "stages", "stages", MAX_STAGES)):
        where = f"stage {s_index + 1}"
        path = f"stages[{s_index}]"
        raw_stage = _object(raw_stage, where, path, ("name", "steps"), "a stage")
        name = stage_name(raw_stage.get("name"), where, f"{path}.name")
        where = _label(where, name)
        steps = []
        raw_steps = _list(raw_stage.get("steps"), where, f"{path}.steps", "steps", MAX_STEPS)
        step_count += len(raw_steps)
        if step_count > MAX_STEPS:
            raise _fail("", f"the journey has more than {MAX_STEPS:,} steps; split it.", "stages")
        for t_index, raw_step in enumerate(raw_steps):
            step_where = f"{where}, step {t_index + 1}"
            step_path = f"{path}.steps[{t_index}]"
            raw_step = _object(raw_step, step_where, step_path, STEP_KEYS, "a step")
            if isinstance(raw_step.get("name"), str) and raw_step["name"].strip():
                step_where = _label(step_where, raw_step["name"].strip())
            fields = step_fields(
                {k: v for k, v in raw_step.items() if k in STEP_FIELDS}, partial=False, where=step_where
            )
            lane = raw_step.get("lane")
            if not isinstance(lane, str) or lane.strip() not in {entry["name"] for entry in lanes}:
                names = ", ".join(f"“{entry['name']}”" for entry in lanes) or "none (add lanes first)"
                raise _fail(
                    step_where,
                    f"there is no lane named {lane!r}; the lanes are {names}.",
                    f"{step_path}.lane",
                )
            notes = [
                note(raw_note, f"{step_where}, note {n_index + 1}", f"{step_path}.notes[{n_index}]")
                for n_index, raw_note in enumerate(
                    _list(
                        raw_step.get("notes"), step_where, f"{step_path}.notes", "notes", MAX_NOTES_PER_STEP
                    )
                )
            ]
            steps.append({"name": fields.pop("name"), "lane": lane.strip(), **fields, "notes": notes})
        stages.append({"name": name, "steps": steps})
    cleaned["stages"] = stages
    return cleaned


# --- CSV ------------------------------------------------------------------------------------------

CSV_COLUMNS = (
    "stage_no",
    "stage",
    "step_no",
    "step",
    "lane",
    "channel",
    "touchpoint",
    "owner_team",
    "emotion",
    "moment_of_truth",
    "expected_duration_s",
    "description",
    "pain_points",
    "opportunities",
    "ideas",
    "questions",
)
NOTE_COLUMNS = {
    "pain_point": "pain_points",
    "opportunity": "opportunities",
    "idea": "ideas",
    "question": "questions",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Text a spreadsheet would run as a formula gets a leading quote (CSV injection); numbers stay."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(export: Mapping[str, Any]) -> str:
    """One row per step of an export JSON, every user-written cell guarded against formula injection."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for stage_no, stage in enumerate(export["stages"], start=1):
        for step_no, step in enumerate(stage["steps"], start=1):
            notes: dict[str, list[str]] = {column: [] for column in NOTE_COLUMNS.values()}
            for entry in step["notes"]:
                notes[NOTE_COLUMNS[entry["kind"]]].append(entry["text"])
            row = {
                "stage_no": stage_no,
                "stage": stage["name"],
                "step_no": step_no,
                "step": step["name"],
                "lane": step["lane"],
                "channel": step["channel"],
                "touchpoint": step["touchpoint"],
                "owner_team": step["owner_team"],
                "emotion": step["emotion"],  # an int: "-2" is a number, not a formula
                "moment_of_truth": "yes" if step["moment_of_truth"] else "no",
                "expected_duration_s": ""
                if step["expected_duration_s"] is None
                else step["expected_duration_s"],
                "description": step["description"],
                **{column: "\n".join(texts) for column, texts in notes.items()},
            }
            writer.writerow([safe_cell(row[column]) for column in CSV_COLUMNS])
    return out.getvalue()
