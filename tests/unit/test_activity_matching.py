"""Activity <-> step name matching: normalisation, similarity, earlier choices, one step per activity."""

from __future__ import annotations

import time

from webapp.services.activity_matching import normalise, propose, similarity

STEPS = [
    (1, "Log ticket"),
    (2, "Work in progress"),
    (3, "Resolved"),
    (4, "Close ticket"),
    (5, "Triage"),
]


def test_normalise() -> None:
    assert normalise("  Re-Open_Ticket!! ") == "re open ticket"
    assert normalise("Café  RÉSUMÉ") == "cafe resume"
    assert normalise("W_Nabellen offertes") == "w nabellen offertes"
    assert normalise("---") == ""


def test_similarity() -> None:
    assert similarity("work_in_progress", "Work in Progress") == 1.0
    assert similarity("Resolve", "Resolved") >= 0.9
    assert similarity("Ticket closed", "Close ticket") == 1.0  # same words, other order and form
    assert similarity("Resolve", "Triage") < 0.6
    assert similarity("", "Triage") == 0.0
    assert similarity("Logged", "Log ticket") >= 0.6  # "logg" begins with "log"


def test_propose_by_name() -> None:
    proposal = propose(["work_in_progress", "Resolve", "Ticket closed", "Logged", "Escalate"], STEPS)
    assert proposal == {"work_in_progress": 2, "Resolve": 3, "Ticket closed": 4, "Logged": 1}


def test_several_activities_may_share_a_step_but_each_gets_one() -> None:
    proposal = propose(["Resolve", "Resolved", "RESOLVED"], STEPS)
    assert proposal == {"Resolve": 3, "Resolved": 3, "RESOLVED": 3}
    assert all(isinstance(v, int) for v in proposal.values())


def test_threshold() -> None:
    assert "Logged" in propose(["Logged"], STEPS, threshold=0.6)
    assert "Logged" not in propose(["Logged"], STEPS, threshold=0.95)
    assert propose(["Logged"], STEPS, threshold=0.0) == {"Logged": 1}


def test_previous_choices_win_when_the_step_exists() -> None:
    previous = {"Status 7": "Triage", "Resolve": "Close ticket", "Gone": "Deleted step", "Logged": "triage "}
    proposal = propose(["Status 7", "Resolve", "Gone", "Logged"], STEPS, previous)
    assert proposal["Status 7"] == 5  # would never match by name
    assert proposal["Resolve"] == 4  # the organisation's choice beats the best name match
    assert "Gone" not in proposal  # no step of that name: falls back to name matching (none)
    assert proposal["Logged"] == 5  # the step name matches after normalising


def test_ties_go_to_the_earlier_step_and_duplicates_are_fine() -> None:
    steps = [(7, "Review"), (8, "Review"), (9, "review")]
    assert propose(["Review", "review", "REVIEW"], steps) == {"Review": 7, "review": 7, "REVIEW": 7}
    assert propose(["Revie"], [(1, "Review A"), (2, "Review B")]) == {"Revie": 1}


def test_empty_inputs() -> None:
    assert propose([], STEPS) == {}
    assert propose(["Logged"], []) == {}
    assert propose(["", "   "], STEPS) == {}


def test_a_large_log_against_a_large_journey_stays_interactive() -> None:
    # 100 activities x 200 steps of look-alike names (the worst case for difflib's early exits).
    activities = [f"Activity number {i} of the service process" for i in range(100)]
    steps = [(i, f"Step {i}: handle the request part {i}") for i in range(200)]
    started = time.perf_counter()
    propose(activities, steps)
    assert time.perf_counter() - started < 10.0
