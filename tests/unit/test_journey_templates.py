"""The built-in templates and the exchange format's rules, as pure code (no app, no database)."""

from __future__ import annotations

import copy

import pytest

from webapp.services import ServiceError
from webapp.services import journey_format as fmt
from webapp.services.journey_templates import BLUEPRINT_LANES, BUILTIN

REQUIRED = {"it-incident", "employee-onboarding", "customer-support-ticket", "hardware-request"}


def test_the_four_required_templates_exist():
    assert set(BUILTIN) >= REQUIRED
    assert BUILTIN["it-incident"][0] == "IT incident (employee)"


@pytest.mark.parametrize("key", sorted(BUILTIN))
def test_every_template_passes_the_importers_rules_unchanged(key):
    name, description, data = BUILTIN[key]
    assert name == data["title"] and description
    # Valid as written: validation fills no default and drops nothing.
    assert fmt.validate(copy.deepcopy(data)) == data


@pytest.mark.parametrize("key", sorted(BUILTIN))
def test_every_template_is_a_full_service_blueprint(key):
    _, _, data = BUILTIN[key]
    steps = [step for stage in data["stages"] for step in stage["steps"]]
    assert data["lanes"] == BLUEPRINT_LANES
    assert {step["lane"] for step in steps} == {lane["name"] for lane in BLUEPRINT_LANES}
    assert len(data["stages"]) >= 4 and all(stage["steps"] for stage in data["stages"])
    assert len({step["channel"] for step in steps}) >= 3
    assert min(step["emotion"] for step in steps) <= -2 and max(step["emotion"] for step in steps) >= 2
    assert any(step["moment_of_truth"] for step in steps)
    assert sum(step["expected_duration_s"] is not None for step in steps) >= len(steps) - 1
    assert {note["kind"] for step in steps for note in step["notes"]} >= {"pain_point", "opportunity"}
    assert data["persona"]["name"] and data["persona"]["quote"]


def test_templates_are_not_shared_mutable_state():
    # Lanes are one list in the module; each template must validate on its own copy.
    first = fmt.validate(BUILTIN["it-incident"][2])
    first["lanes"].append({"name": "Extra"})
    assert BUILTIN["hardware-request"][2]["lanes"] == BLUEPRINT_LANES


def test_validation_fills_defaults_and_strips_text():
    cleaned = fmt.validate(
        {
            "title": "  Minimal ",
            "lanes": [{"name": " Actions "}],
            "stages": [{"name": "Only", "steps": [{"name": " Do it ", "lane": "Actions"}]}],
        }
    )
    assert cleaned == {
        "title": "Minimal",
        "kind": "customer",
        "state": "current",
        "status": "draft",
        "scenario": "",
        "tags": [],
        "persona": None,
        "lanes": [{"name": "Actions"}],
        "stages": [
            {
                "name": "Only",
                "steps": [
                    {
                        "name": "Do it",
                        "lane": "Actions",
                        "description": "",
                        "channel": "other",
                        "touchpoint": "",
                        "owner_team": "",
                        "emotion": 0,
                        "moment_of_truth": False,
                        "expected_duration_s": None,
                        "notes": [],
                    }
                ],
            }
        ],
    }


@pytest.mark.parametrize(
    ("data", "message", "field"),
    [
        ("a string", "A journey must be a JSON object", ""),
        ({"title": "t", "tags": ["x" * 51]}, "A tag is 51 characters long; keep it to 50", "tags"),
        ({"title": "t", "tags": [str(i) for i in range(21)]}, "21 tags is too many", "tags"),
        ({"title": "t", "lanes": [{"name": str(i)} for i in range(21)]}, "21 lanes is too many", "lanes"),
        ({"title": "t", "persona": {"role": "x"}}, "the persona's name is missing", "name"),
        (
            {"title": "t", "stages": [{"name": "s", "steps": [{"lane": "x"}]}]},
            "step's name is missing",
            "name",
        ),
        (
            {
                "title": "t",
                "lanes": [{"name": "A"}],
                "stages": [
                    {
                        "name": "s",
                        "steps": [{"name": "n", "lane": "A", "notes": [{"kind": "idea", "text": " "}]}],
                    }
                ],
            },
            "the note's text is empty",
            "stages[0].steps[0].notes[0].text",
        ),
    ],
)
def test_validation_messages_name_the_place_and_the_field(data, message, field):
    with pytest.raises(ServiceError, match=message) as caught:
        fmt.validate(data)
    assert caught.value.field == field


def test_safe_cell_quotes_what_a_spreadsheet_would_evaluate():
    for dangerous in ("=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"):
        assert fmt.safe_cell(dangerous) == "'" + dangerous
    for harmless in ("Plain", "1-2", "a=b", "", -2, 300, None):
        assert fmt.safe_cell(harmless) == harmless
