"""Journey services: blank and template journeys, editing with versions and conflicts, history before ->
after, undo of deletes, named versions, duplicates, moves, strict import, and the tenant walls."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.support import SMALL_JOURNEY
from webapp.services import Actor, Conflict, NotFound, ServiceError

SMALL = SMALL_JOURNEY


@pytest.fixture
def ctx(app, tenant_a, tenant_b):
    """An app context inside A, with A's owner and editor as actors (and B's id to switch to)."""
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import User

    with app.app_context():

        def user_id(email: str) -> int:
            return db.session.scalar(sa.select(User.id).where(User.email == email))

        owner, editor = user_id("owner@a.example"), user_id("editor@a.example")
        tenancy.activate(tenant_a.organisation_id, owner)
        yield SimpleNamespace(
            owner=Actor(owner),
            editor=Actor(editor),
            a=tenant_a,
            b=tenant_b,
            b_owner=user_id("owner@b.example"),
        )
        db.session.rollback()


def _svc():
    from webapp.services import journeys

    return journeys


def _board(journey_id):
    return _svc().board(journey_id)


def _step(journey_id, name):
    return next(s for s in _board(journey_id).steps if s.name == name)


def _names(items):
    return [i.name for i in items]


# --- creating -----------------------------------------------------------------------------------------


def test_a_blank_journey_has_the_four_blueprint_lanes_and_one_stage(ctx):
    journeys = _svc()
    journey = journeys.create_journey(
        "Laptop swap", ctx.owner, kind="employee", tags=["IT", "it", " devices "]
    )
    board = _board(journey.id)
    assert _names(board.lanes) == ["Actions", "Frontstage", "Backstage", "Support processes"]
    assert [lane.position for lane in board.lanes] == [0, 1, 2, 3]
    assert _names(board.stages) == ["Stage 1"]
    assert journey.status == "draft" and journey.state == "current" and journey.version == 1
    assert journey.tags == ["IT", "devices"]  # duplicates (by case) and blanks dropped
    assert journey.owner_id == ctx.owner.user_id
    [created] = journeys.history(journey.id)
    assert (created.entity, created.action, created.actor_id) == ("journey", "create", ctx.owner.user_id)
    assert created.after["lanes"][0] == {"name": "Actions"}


def test_every_builtin_template_makes_a_rich_draft(ctx):
    journeys = _svc()
    builtin = [t for t in journeys.list_templates() if t.builtin]
    assert {t.name for t in builtin} >= {
        "IT incident (employee)",
        "Employee onboarding",
        "Customer support ticket",
        "Hardware request",
    }
    for info in builtin:
        journey = journeys.create_from_template(info.ref, ctx.editor)
        board = _board(journey.id)
        assert journey.title == info.name and journey.status == "draft"
        assert len(board.stages) >= 4 and len(board.steps) >= 8 and len(board.lanes) == 4
        assert {s.channel for s in board.steps} - {"other"}, info.name
        assert {s.emotion for s in board.steps} & {-2, -3} and {s.emotion for s in board.steps} & {2, 3}
        assert any(s.moment_of_truth for s in board.steps)
        assert all(s.expected_duration_s for s in board.steps[1:]), info.name
        assert sum(len(n) for n in board.notes.values()) >= 3
        assert journey.persona is not None
    with pytest.raises(NotFound, match="it-incident"):
        journeys.create_from_template("no-such-template", ctx.owner)


def test_an_organisation_template_is_saved_reused_and_private(ctx):
    from webapp import tenancy

    journeys = _svc()
    source = journeys.import_json(SMALL, ctx.owner)
    template_id = journeys.save_as_template(source.id, "Our reset flow", ctx.owner).id
    with pytest.raises(ServiceError, match="exists already"):
        journeys.save_as_template(source.id, "our RESET flow", ctx.owner)
    with pytest.raises(ServiceError, match="exists already"):
        journeys.save_as_template(source.id, "Hardware request", ctx.owner)
    assert [t.name for t in journeys.list_templates() if not t.builtin] == ["Our reset flow"]
    made = journeys.create_from_template(template_id, ctx.editor, title="Reset, Q3")
    exported = journeys.export_json(made.id)
    assert (
        exported["title"] == "Reset, Q3" and exported["stages"] == journeys.export_json(source.id)["stages"]
    )
    assert journeys.history(made.id)[0].summary == "Created from template “Our reset flow”"

    tenancy.activate(ctx.b.organisation_id, ctx.b_owner)
    assert [t for t in journeys.list_templates() if not t.builtin] == []
    with pytest.raises(NotFound):
        journeys.create_from_template(template_id, Actor(ctx.b_owner))


# --- the journey's own fields -------------------------------------------------------------------------


def test_updating_a_journey_records_before_and_after_and_checks_the_version(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    pat = journey.persona_id
    persona = journeys.create_persona({"name": "Robin", "role": "Agent"}, ctx.owner)
    journeys.update_journey(
        journey.id,
        {"title": "Password reset v2", "status": "in_review", "tags": ["iam"], "persona_id": persona.id},
        ctx.editor,
        expected_version=1,
    )
    change = journeys.history(journey.id)[0]
    assert change.action == "update" and change.actor_id == ctx.editor.user_id
    assert change.before == {"title": "Password reset", "status": "draft", "tags": [], "persona_id": pat}
    assert change.after == {
        "title": "Password reset v2",
        "status": "in_review",
        "tags": ["iam"],
        "persona_id": persona.id,
    }
    with pytest.raises(Conflict) as caught:
        journeys.update_journey(journey.id, {"title": "Mine"}, ctx.owner, expected_version=1)
    conflict = caught.value
    assert (conflict.expected_version, conflict.stored_version) == (1, 2)
    assert conflict.stored["title"] == "Password reset v2" and conflict.attempted == {"title": "Mine"}
    assert conflict.changed_by == "editor@a.example"
    with pytest.raises(ServiceError, match="owner must be a member"):
        journeys.update_journey(journey.id, {"owner_id": ctx.b_owner}, ctx.owner, expected_version=2)
    with pytest.raises(ServiceError, match="'colour' is not a field"):
        journeys.update_journey(journey.id, {"colour": "red"}, ctx.owner, expected_version=2)
    with pytest.raises(ServiceError, match="Kind 'partner' is unknown"):
        journeys.update_journey(journey.id, {"kind": "partner"}, ctx.owner, expected_version=2)


def test_archived_journeys_are_read_only_until_restored(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    journeys.archive_journey(journey.id, ctx.owner)
    stage = _board(journey.id).stages[0]
    with pytest.raises(ServiceError, match="archived"):
        journeys.rename_stage(stage.id, "Asking", ctx.owner, expected_version=1)
    assert journeys.list_journeys() == [] and [j.id for j in journeys.list_journeys(archived=True)] == [
        journey.id
    ]
    journeys.restore_journey(journey.id, ctx.owner)
    journeys.rename_stage(stage.id, "Asking", ctx.owner, expected_version=1)
    assert [c.summary for c in journeys.history(journey.id)[1:3]] == ["Restored from the archive", "Archived"]


def test_list_filters_by_search_kind_state_status_tag_and_owner(ctx):
    journeys = _svc()
    a = journeys.import_json({**SMALL, "tags": ["IAM"], "scenario": "Monday 100% rush"}, ctx.owner)
    b = journeys.create_journey("Customer returns", ctx.editor, kind="customer", state="future")
    journeys.update_journey(b.id, {"status": "published"}, ctx.editor, expected_version=1)

    def ids(**filters):
        return {j.id for j in journeys.list_journeys(**filters)}

    assert ids() == {a.id, b.id}
    assert ids(search="RESET") == {a.id} and ids(search="100%") == {a.id} and ids(search="%") == {a.id}
    assert (
        ids(kind="customer") == {b.id} and ids(state="future") == {b.id} and ids(status="published") == {b.id}
    )
    assert ids(tag="iam") == {a.id} and ids(owner_id=ctx.editor.user_id) == {b.id}
    with pytest.raises(ServiceError, match="use one of draft, in_review, published"):
        journeys.list_journeys(status="done")


# --- stages and lanes ---------------------------------------------------------------------------------


def test_stages_are_added_renamed_reordered_and_deleted_with_contiguous_positions(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    first = journeys.add_stage(journey.id, "Notice", ctx.owner, position=0)
    journeys.add_stage(journey.id, "Close", ctx.owner)
    assert _names(_board(journey.id).stages) == ["Notice", "Ask", "Reset", "Close"]
    journeys.rename_stage(first.id, "Notice it", ctx.owner, expected_version=1)
    journeys.reorder_stage(first.id, 99, ctx.owner, expected_version=2)  # clamped: last
    stages = _board(journey.id).stages
    assert _names(stages) == ["Ask", "Reset", "Close", "Notice it"] and [s.position for s in stages] == [
        0,
        1,
        2,
        3,
    ]
    assert stages[-1].version == 3
    journeys.delete_stage(stages[0].id, ctx.owner, expected_version=1)
    board = _board(journey.id)
    assert _names(board.stages) == ["Reset", "Close", "Notice it"] and [s.position for s in board.stages] == [
        0,
        1,
        2,
    ]
    assert _names(board.steps) == ["Reset in AD"]  # the stage's steps went with it
    with pytest.raises(ServiceError, match="stage's name is missing"):
        journeys.add_stage(journey.id, "  ", ctx.owner)
    with pytest.raises(ServiceError, match="keep it to 200"):
        journeys.add_stage(journey.id, "x" * 201, ctx.owner)


def test_lanes_are_unique_by_name_and_take_their_steps_when_deleted(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    lanes = _board(journey.id).lanes
    with pytest.raises(ServiceError, match="lane named “Actions” already"):
        journeys.add_lane(journey.id, "actions", ctx.owner)
    with pytest.raises(ServiceError, match="already"):
        journeys.rename_lane(lanes[1].id, "BACKSTAGE", ctx.owner, expected_version=1)
    support = journeys.add_lane(journey.id, "Support", ctx.owner, position=1)
    assert _names(_board(journey.id).lanes) == ["Actions", "Support", "Frontstage", "Backstage"]
    journeys.reorder_lane(support.id, 3, ctx.owner, expected_version=1)
    journeys.delete_lane(lanes[0].id, ctx.owner, expected_version=1)
    board = _board(journey.id)
    assert _names(board.lanes) == ["Frontstage", "Backstage", "Support"]
    assert _names(board.steps) == ["Agent verifies", "Reset in AD"]
    assert [s.position for s in board.steps] == [0, 0]  # the gap in stage "Ask" is closed


# --- steps, versions, conflicts -----------------------------------------------------------------------


def test_step_changes_are_recorded_before_and_after(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    board = _board(journey.id)
    step = journeys.add_step(
        board.stages[1].id,
        board.lanes[2].id,
        {"name": "Mail new password", "channel": "email", "emotion": 1, "expected_duration_s": 60},
        ctx.editor,
        position=0,
    )
    assert [s.name for s in _board(journey.id).steps[3:]] == ["Mail new password", "Reset in AD"]
    journeys.update_step(
        step.id, {"emotion": 2, "moment_of_truth": True, "name": "Mail"}, ctx.owner, expected_version=1
    )
    journeys.update_step(
        step.id, {"emotion": 2}, ctx.owner, expected_version=2
    )  # same value: nothing recorded
    update, create = journeys.history(journey.id)[:2]
    assert (create.entity, create.action, create.entity_id) == ("step", "create", step.id)
    assert create.after["channel"] == "email" and create.after["version"] == 1
    assert (update.action, update.actor_id) == ("update", ctx.owner.user_id)
    assert update.before == {"name": "Mail new password", "emotion": 1, "moment_of_truth": False}
    assert update.after == {"name": "Mail", "emotion": 2, "moment_of_truth": True}
    assert update.at is not None and step.version == 2
    for bad, message in (
        ({"emotion": 4}, "from -3 to \\+3, not 4"),
        ({"emotion": True}, "whole number"),
        ({"channel": "fax"}, "Channel 'fax' is unknown; use one of web, email"),
        ({"expected_duration_s": -1}, "whole number of seconds"),
        ({"description": "x" * 5001}, "5,001 characters long; keep it to 5,000"),
        ({"stage_id": 1}, "not a field of a step"),
    ):
        with pytest.raises(ServiceError, match=message):
            journeys.update_step(step.id, bad, ctx.owner, expected_version=2)


def test_a_stale_edit_is_refused_with_the_stored_and_the_attempted_values(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    step = _step(journey.id, "Calls desk")
    seen = step.version  # both people opened the map at this version
    journeys.update_step(step.id, {"description": "Calls 4444"}, ctx.editor, expected_version=seen)
    with pytest.raises(Conflict) as caught:
        journeys.update_step(step.id, {"description": "Calls 5555"}, ctx.owner, expected_version=seen)
    conflict = caught.value
    assert conflict.entity == "step" and conflict.entity_id == step.id and conflict.action == "update"
    assert conflict.stored["description"] == "Calls 4444" and conflict.attempted == {
        "description": "Calls 5555"
    }
    assert (conflict.expected_version, conflict.stored_version) == (seen, seen + 1)
    assert conflict.changed_by == "editor@a.example" and conflict.changed_at is not None
    assert conflict.to_dict()["stored"]["description"] == "Calls 4444"
    assert _step(journey.id, "Calls desk").description == "Calls 4444"  # nothing of the refused edit stored
    # The user chose theirs: retried with the version they were shown.
    journeys.update_step(
        step.id, {"description": "Calls 5555"}, ctx.owner, expected_version=conflict.stored_version
    )
    assert _step(journey.id, "Calls desk").description == "Calls 5555"


def test_deleting_a_step_someone_just_edited_is_a_conflict(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    step = _step(journey.id, "Calls desk")
    journeys.update_step(step.id, {"emotion": -3}, ctx.editor, expected_version=1)
    with pytest.raises(Conflict, match="not deleted") as caught:
        journeys.delete_step(step.id, ctx.owner, expected_version=1)
    assert caught.value.attempted is None and caught.value.stored["emotion"] == -3
    assert _step(journey.id, "Calls desk")  # still there
    # A note added meanwhile is a change of the step too.
    journeys.add_note(step.id, "idea", "Self-service reset", ctx.editor)
    with pytest.raises(Conflict):
        journeys.delete_step(step.id, ctx.owner, expected_version=2)
    journeys.delete_step(step.id, ctx.owner, expected_version=3)


def test_editing_a_step_someone_deleted_is_not_found_and_says_who(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    step = _step(journey.id, "Calls desk")
    journeys.delete_step(step.id, ctx.editor, expected_version=1)
    with pytest.raises(NotFound, match="deleted by editor@a.example at .* UTC; your change was not saved"):
        journeys.update_step(step.id, {"emotion": 1}, ctx.owner, expected_version=1)
    with pytest.raises(NotFound, match="deleted by editor@a.example"):
        journeys.move_step(step.id, ctx.owner, expected_version=1, position=0)
    with pytest.raises(NotFound, match="deleted by editor@a.example"):
        journeys.delete_step(step.id, ctx.owner, expected_version=1)
    with pytest.raises(NotFound, match="does not exist"):
        journeys.update_step(987654, {"emotion": 1}, ctx.owner, expected_version=1)


@pytest.mark.postgres
def test_two_simultaneous_edits_of_one_version_one_wins_one_conflicts(app, ctx):
    """Real concurrency: the journey lock makes the second writer see the first one's version."""
    from webapp import tenancy

    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    step_id = _step(journey.id, "Calls desk").id
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def edit(actor: Actor, text: str) -> None:
        with app.app_context():
            tenancy.activate(ctx.a.organisation_id, actor.user_id)
            start.wait()
            try:
                _svc().update_step(step_id, {"description": text}, actor, expected_version=1)
                outcomes.append("saved")
            except Conflict:
                outcomes.append("conflict")

    threads = [
        threading.Thread(target=edit, args=(a, t)) for a, t in ((ctx.owner, "one"), (ctx.editor, "two"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["conflict", "saved"]
    assert _step(journey.id, "Calls desk").version == 2


# --- moves --------------------------------------------------------------------------------------------


def test_steps_move_within_a_stage_and_across_stages_and_lanes(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    board = _board(journey.id)
    ask, reset = board.stages
    backstage = board.lanes[2]
    verifies = _step(journey.id, "Agent verifies")

    journeys.move_step(verifies.id, ctx.owner, expected_version=1, position=0)  # within the stage
    assert [s.name for s in journeys.board(journey.id).steps[:3]] == [
        "Agent verifies",
        "Forgets password",
        "Calls desk",
    ]

    journeys.move_step(
        verifies.id, ctx.owner, expected_version=2, stage_id=reset.id, lane_id=backstage.id, position=1
    )
    board = _board(journey.id)
    in_ask = [s for s in board.steps if s.stage_id == ask.id]
    in_reset = [s for s in board.steps if s.stage_id == reset.id]
    assert [(s.name, s.position) for s in in_ask] == [("Forgets password", 0), ("Calls desk", 1)]
    assert [(s.name, s.position) for s in in_reset] == [("Reset in AD", 0), ("Agent verifies", 1)]
    assert _step(journey.id, "Agent verifies").lane_id == backstage.id

    move = journeys.history(journey.id)[0]
    assert move.action == "move"
    assert move.before == {
        "stage_id": ask.id,
        "stage": "Ask",
        "lane_id": board.lanes[1].id,
        "lane": "Frontstage",
        "position": 0,
    }
    assert move.after == {
        "stage_id": reset.id,
        "stage": "Reset",
        "lane_id": backstage.id,
        "lane": "Backstage",
        "position": 1,
    }

    # Only the lane changes: it keeps its place in the stage.
    journeys.move_step(verifies.id, ctx.owner, expected_version=3, lane_id=board.lanes[0].id)
    moved = _step(journey.id, "Agent verifies")
    assert (moved.stage_id, moved.position, moved.lane_id, moved.version) == (
        reset.id,
        1,
        board.lanes[0].id,
        4,
    )
    with pytest.raises(Conflict) as caught:
        journeys.move_step(verifies.id, ctx.editor, expected_version=3, position=0)
    assert caught.value.attempted == {"stage_id": reset.id, "lane_id": board.lanes[0].id, "position": 0}


def test_a_step_cannot_move_into_another_journey_or_organisation(ctx):
    from webapp import tenancy

    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    other = journeys.import_json({**SMALL, "title": "Other"}, ctx.owner)
    step_id = _step(journey.id, "Calls desk").id
    other_board = _board(other.id)
    with pytest.raises(NotFound, match="No such stage in this journey"):
        journeys.move_step(step_id, ctx.owner, expected_version=1, stage_id=other_board.stages[0].id)
    with pytest.raises(NotFound, match="No such lane in this journey"):
        journeys.move_step(step_id, ctx.owner, expected_version=1, lane_id=other_board.lanes[0].id)
    with pytest.raises(NotFound, match="No such lane in this journey"):
        journeys.add_step(_board(journey.id).stages[0].id, other_board.lanes[0].id, {"name": "x"}, ctx.owner)

    tenancy.activate(ctx.b.organisation_id, ctx.b_owner)
    b_actor = Actor(ctx.b_owner)
    b_journey = journeys.import_json({**SMALL, "title": "Beta's"}, b_actor)
    # Ids, not objects: once the scope is A again, B's rows cannot even be refreshed.
    b_journey_id, b_stage_id = b_journey.id, _board(b_journey.id).stages[0].id
    b_step_id = _board(b_journey.id).steps[0].id
    with pytest.raises(NotFound):  # A's step is invisible from B
        journeys.move_step(step_id, b_actor, expected_version=1, stage_id=b_stage_id)
    tenancy.activate(ctx.a.organisation_id, ctx.owner.user_id)
    with pytest.raises(NotFound, match="No such stage in this journey"):  # B's stage is invisible from A
        journeys.move_step(step_id, ctx.owner, expected_version=1, stage_id=b_stage_id)
    for attempt in (
        lambda: journeys.update_step(b_step_id, {"name": "hijacked"}, ctx.owner, expected_version=1),
        lambda: journeys.delete_step(b_step_id, ctx.owner, expected_version=1),
        lambda: journeys.export_json(b_journey_id),
        lambda: journeys.add_stage(b_journey_id, "x", ctx.owner),
    ):
        with pytest.raises(NotFound):
            attempt()
    assert _step(journey.id, "Calls desk").stage_id == _board(journey.id).stages[0].id


# --- notes and undo -----------------------------------------------------------------------------------


def test_undo_brings_back_the_last_thing_you_deleted_with_its_children(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    before = journeys.export_json(journey.id)
    board = _board(journey.id)
    ask = board.stages[0]
    note = journeys.add_note(_step(journey.id, "Calls desk").id, "question", "Why call at all?", ctx.owner)
    journeys.delete_note(note.id, ctx.owner)
    journeys.delete_stage(ask.id, ctx.owner, expected_version=1)
    journeys.delete_step(
        _step(journey.id, "Reset in AD").id, ctx.editor, expected_version=1
    )  # someone else's

    change = journeys.undo_last_delete(journey.id, ctx.owner)  # mine: the stage, with steps and the note
    assert (change.entity, change.entity_id, change.action) == ("stage", ask.id, "restore")
    assert change.summary.startswith("Undid: Deleted stage “Ask” with 3 step(s)")
    board = _board(journey.id)
    assert _names(board.stages) == ["Ask", "Reset"] and board.stages[0].id == ask.id
    assert _names(board.steps) == ["Forgets password", "Calls desk", "Agent verifies"]
    assert board.stages[0].version == 2  # an old view of it is stale now

    change = journeys.undo_last_delete(journey.id, ctx.owner)  # then the note
    assert change.entity == "note" and change.entity_id == note.id
    assert [n.text for n in _board(journey.id).notes[_step(journey.id, "Calls desk").id]] == [
        "Why call at all?"
    ]

    with pytest.raises(ServiceError, match="nothing to undo"):
        journeys.undo_last_delete(journey.id, ctx.owner)
    journeys.undo_last_delete(journey.id, ctx.editor)  # the editor's own step, with its note
    after = journeys.export_json(journey.id)
    calls = after["stages"][0]["steps"][1]
    assert calls["notes"] == [{"kind": "question", "text": "Why call at all?"}]
    calls["notes"] = []
    assert after == before


def test_undo_of_a_lane_restores_its_steps_in_their_stages(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    before = journeys.export_json(journey.id)
    actions = _board(journey.id).lanes[0]
    journeys.delete_lane(actions.id, ctx.owner, expected_version=1)
    assert _names(_board(journey.id).steps) == ["Agent verifies", "Reset in AD"]
    journeys.undo_last_delete(journey.id, ctx.owner)
    assert journeys.export_json(journey.id) == before


def test_undo_refuses_a_step_whose_stage_is_gone(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    journeys.delete_step(_step(journey.id, "Calls desk").id, ctx.owner, expected_version=1)
    journeys.delete_stage(_board(journey.id).stages[0].id, ctx.editor, expected_version=1)
    with pytest.raises(ServiceError, match="its stage was deleted since"):
        journeys.undo_last_delete(journey.id, ctx.owner)
    journeys.undo_last_delete(journey.id, ctx.editor)
    journeys.undo_last_delete(journey.id, ctx.owner)
    assert "Calls desk" in _names(_board(journey.id).steps)


# --- versions, duplicates, import and export ----------------------------------------------------------


def test_a_named_version_can_be_restored_and_the_restore_is_in_the_history(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    original = journeys.export_json(journey.id)
    saved = journeys.save_named_version(journey.id, "Before workshop", ctx.owner)
    assert saved.snapshot == original and saved.created_by_id == ctx.owner.user_id
    journeys.update_journey(journey.id, {"title": "After workshop"}, ctx.owner, expected_version=1)
    journeys.delete_stage(_board(journey.id).stages[0].id, ctx.owner, expected_version=1)
    changed = journeys.export_json(journey.id)
    assert [v.name for v in journeys.list_versions(journey.id)] == ["Before workshop"]

    journeys.restore_version(journey.id, saved.id, ctx.editor)
    assert journeys.export_json(journey.id) == original
    change = journeys.history(journey.id)[0]
    assert (change.entity, change.action, change.actor_id) == ("journey", "restore", ctx.editor.user_id)
    # Both sides in full, with the elements' ids, so the history can be replayed across the restore.
    assert journeys.snapshot_export(change.before) == changed
    assert journeys.snapshot_export(change.after) == original
    assert {lane["id"] for lane in change.after["lanes"]} == {lane.id for lane in _board(journey.id).lanes}
    assert change.summary == "Restored version “Before workshop”"
    with pytest.raises(NotFound):
        journeys.restore_version(journey.id, saved.id + 1000, ctx.owner)


# --- restoring to any change -------------------------------------------------------------------------


def _edit_in_every_way(journeys, journey_id, ctx):
    """Every kind of change the history records, one after another; returns [(change id, the export
    right after that change)] from the import on."""
    points = []

    def point():
        points.append((journeys.history(journey_id, limit=1)[0].id, journeys.export_json(journey_id)))

    def current(name):
        return _step(journey_id, name)

    point()  # the import
    board = _board(journey_id)
    ask, reset = board.stages
    actions, front, back = board.lanes
    changes = {"title": "Password reset, again", "tags": ["it"], "status": "in_review"}
    journeys.update_journey(journey_id, changes, ctx.owner, expected_version=1)
    point()
    journeys.rename_stage(ask.id, "Ask for help", ctx.owner, expected_version=1)
    point()
    confirm = journeys.add_stage(journey_id, "Confirm", ctx.editor)
    point()
    journeys.reorder_stage(confirm.id, 0, ctx.editor, expected_version=1)
    point()
    fields = {"name": "Chats with the bot", "channel": "chat", "emotion": 1}
    chat = journeys.add_step(confirm.id, front.id, fields, ctx.owner)
    point()
    step = current("Calls desk")
    fields = {"name": "Calls the desk", "emotion": -3, "expected_duration_s": 600}
    journeys.update_step(step.id, fields, ctx.owner, expected_version=step.version)
    point()
    step = current("Calls the desk")
    journeys.move_step(
        step.id, ctx.owner, stage_id=reset.id, lane_id=back.id, position=0, expected_version=step.version
    )
    point()
    idea = journeys.add_note(chat.id, "idea", "Offer a self-service reset", ctx.editor)
    point()
    journeys.rename_lane(front.id, "Service desk", ctx.owner, expected_version=1)
    point()
    journeys.rename_lane(back.id, "Frontstage", ctx.owner, expected_version=1)  # the name just freed
    point()
    step = current("Forgets password")
    journeys.delete_step(step.id, ctx.editor, expected_version=step.version)
    point()
    journeys.delete_note(idea.id, ctx.editor)
    point()
    journeys.add_step(reset.id, actions.id, {"name": "Gets a new password", "emotion": 2}, ctx.owner)
    point()
    journeys.delete_lane(actions.id, ctx.owner, expected_version=1)  # with the step just added
    point()
    journeys.undo_last_delete(journey_id, ctx.owner)  # the lane and its step come back
    point()
    journeys.reorder_lane(actions.id, 2, ctx.owner, expected_version=2)
    point()
    ask_version = next(s for s in _board(journey_id).stages if s.id == ask.id).version
    journeys.delete_stage(ask.id, ctx.editor, expected_version=ask_version)  # with "Agent verifies"
    point()
    version = journeys.save_named_version(journey_id, "Mid-way", ctx.owner)
    journeys.update_journey(journey_id, {"scenario": "Monday morning"}, ctx.owner, expected_version=2)
    point()
    journeys.restore_version(journey_id, version.id, ctx.owner)  # the whole content, new ids
    point()
    data = journeys.export_json(journey_id)
    data["stages"].append({"name": "Follow up", "steps": [{"name": "Survey", "lane": "Frontstage"}]})
    journeys.replace_from_json(journey_id, data, ctx.editor)
    point()
    step = current("Survey")
    journeys.update_step(step.id, {"emotion": 3}, ctx.editor, expected_version=step.version)
    point()
    return points


def test_the_journey_can_be_restored_as_it_was_after_any_change(ctx):
    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    points = _edit_in_every_way(journeys, journey.id, ctx)
    assert len({change_id for change_id, _ in points}) == len(points) == 22
    final = journeys.export_json(journey.id)

    # To each point, then back (the restore is a change like any other: restoring to the one before it
    # undoes it). Later rounds replay across the restores of earlier ones.
    for change_id, export in points[:-1]:
        restore = journeys.restore_to_change(journey.id, change_id, ctx.editor)
        assert journeys.export_json(journey.id) == export, f"as after change #{change_id}"
        assert (restore.entity, restore.action) == ("journey", "restore")
        assert restore.actor_id == ctx.editor.user_id
        assert restore.summary.startswith(f"Restored the journey as it was after change #{change_id} (")
        assert journeys.snapshot_export(restore.after) == export
        undo_point = journeys.history(journey.id, limit=2)[1].id
        journeys.restore_to_change(journey.id, undo_point, ctx.owner)
        assert journeys.export_json(journey.id) == final, f"back from change #{change_id}"


def test_restoring_to_a_middle_point_keeps_ids_and_moves_versions_on(ctx):
    from webapp.services import comments

    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    board = _board(journey.id)
    calls = _step(journey.id, "Calls desk")
    thread = comments.start_thread(journey.id, "Why not the portal?", ctx.owner, step_id=calls.id)
    journeys.rename_stage(board.stages[1].id, "Fix", ctx.owner, expected_version=1)
    middle = journeys.history(journey.id, limit=1)[0]
    at_middle = journeys.export_json(journey.id)
    journeys.update_step(calls.id, {"name": "Calls twice"}, ctx.owner, expected_version=1)
    journeys.delete_step(calls.id, ctx.owner, expected_version=2)
    journeys.add_stage(journey.id, "Later", ctx.owner)

    restore = journeys.restore_to_change(journey.id, middle.id, ctx.editor)
    assert journeys.export_json(journey.id) == at_middle
    back = _step(journey.id, "Calls desk")
    assert back.id == calls.id  # the same step: its comment thread is attached again
    assert comments.threads(journey.id)[0].step.id == calls.id and thread.step_id == calls.id
    assert back.version == 3  # above every version it had, so a view of any of them is stale
    with pytest.raises(Conflict):
        journeys.update_step(calls.id, {"name": "Stale"}, ctx.owner, expected_version=2)
    stage = _board(journey.id).stages[1]
    assert stage.version == 2  # untouched by the restore: a view of it stays valid
    journeys.rename_stage(stage.id, "Fix it", ctx.owner, expected_version=2)

    # Undo then finds nothing of the owner's to bring back: the deleted step is back already.
    with pytest.raises(ServiceError, match="nothing to undo"):
        journeys.undo_last_delete(journey.id, ctx.owner)
    # Restoring to where the journey already is records nothing.
    newest = journeys.history(journey.id, limit=1)[0]
    assert journeys.restore_to_change(journey.id, newest.id, ctx.owner) is None
    assert journeys.history(journey.id, limit=1)[0].id == newest.id
    assert restore.id < newest.id


def test_restoring_refuses_unknown_changes_and_history_without_ids(ctx):
    from webapp import tenancy
    from webapp.extensions import db

    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    other = journeys.import_json({**SMALL, "title": "Other"}, ctx.owner)
    created = journeys.history(journey.id)[0]
    with pytest.raises(NotFound):
        journeys.restore_to_change(other.id, created.id, ctx.owner)  # another journey's change
    # A replace recorded before snapshots carried ids cannot be replayed: say so, change nothing.
    journeys.replace_from_json(journey.id, {**SMALL, "title": "Replaced"}, ctx.owner)
    replaced = journeys.history(journey.id, limit=1)[0]
    replaced.before = journeys.snapshot_export(replaced.before)
    db.session.commit()
    with pytest.raises(ServiceError, match=f"past change #{replaced.id} .*without the elements' ids"):
        journeys.restore_to_change(journey.id, created.id, ctx.owner)
    assert journeys.export_json(journey.id)["title"] == "Replaced"
    journey_id, created_id = journey.id, created.id
    tenancy.activate(ctx.b.organisation_id, ctx.b_owner)
    with pytest.raises(NotFound):
        journeys.restore_to_change(journey_id, created_id, Actor(ctx.b_owner))


def test_duplicating_makes_a_draft_future_state(ctx):
    journeys = _svc()
    journey = journeys.import_json({**SMALL, "status": "published"}, ctx.owner)
    future = journeys.duplicate_journey(journey.id, ctx.editor, state="future")
    assert (
        future.title == "Password reset (future state)"
        and future.state == "future"
        and future.status == "draft"
    )
    assert future.owner_id == ctx.editor.user_id and future.persona_id == journey.persona_id
    assert journeys.export_json(future.id)["stages"] == journeys.export_json(journey.id)["stages"]
    assert journeys.duplicate_journey(journey.id, ctx.owner).title == "Password reset (copy)"
    assert "Duplicated from “Password reset”" in journeys.history(future.id)[0].summary


def test_export_import_export_is_identical_and_replace_guards_with_a_digest(ctx):
    journeys = _svc()
    template = journeys.create_from_template("it-incident", ctx.owner)
    exported = journeys.export_json(template.id)
    copy = journeys.import_json(exported, ctx.editor)
    assert journeys.export_json(copy.id) == exported
    assert len(journeys.list_personas()) == 1  # the same persona is reused, not copied

    stale = journeys.digest(journeys.export_json(copy.id))
    journeys.replace_from_json(copy.id, SMALL, ctx.owner, expected_digest=stale)
    replaced = journeys.export_json(copy.id)
    assert replaced["title"] == "Password reset" and len(replaced["stages"]) == 2
    with pytest.raises(Conflict) as caught:
        journeys.replace_from_json(copy.id, exported, ctx.owner, expected_digest=stale)
    assert caught.value.stored == replaced and caught.value.attempted["title"] == "IT incident (employee)"
    assert journeys.history(copy.id)[0].summary == "Replaced from JSON"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["stages"][0]["steps"][0].update(lane="Nowhere"),
            "no lane named 'Nowhere'; the lanes are",
        ),
        (
            lambda d: d["stages"][1]["steps"][0].update(emotion=5),
            "stage 2 “Reset”, step 1 “Reset in AD”: the emotion",
        ),
        (lambda d: d["stages"][0]["steps"][0].update(emotion=-4), "from -3 to \\+3, not -4"),
        (lambda d: d.update(title="t" * 201), "201 characters long; keep it to 200"),
        (lambda d: d["lanes"][0].update(name="n" * 201), "lane 1: the lane's name is 201 characters"),
        (lambda d: d.update(scenario="s" * 5001), "keep it to 5,000"),
        (lambda d: d["stages"][1]["steps"][0]["notes"][0].update(text="x" * 5001), "note 1: the note's text"),
        (lambda d: d.update(kind="partner"), "Kind 'partner' is unknown; use one of customer, employee"),
        (
            lambda d: d["stages"][0]["steps"][1].update(channel="fax"),
            "channel 'fax' is unknown; use one of web",
        ),
        (lambda d: d["stages"][1]["steps"][0]["notes"][0].update(kind="rant"), "note kind 'rant' is unknown"),
        (lambda d: d.update(colour="red"), "Unknown field 'colour' in a journey"),
        (lambda d: d["lanes"].append({"name": "actions"}), "a lane named “Actions” exists already"),
        (lambda d: d["stages"][0]["steps"][0].update(moment_of_truth="yes"), "must be true or false"),
        (lambda d: d["stages"][0]["steps"][0].update(expected_duration_s=1.5), "whole number of seconds"),
        (lambda d: d.pop("title"), "The title is missing"),
        (lambda d: d.update(stages={"name": "x"}), "The stages must be a list"),
    ],
)
def test_import_refuses_bad_json_with_a_message_saying_what_to_fix(ctx, change, message):
    import copy

    journeys = _svc()
    data = copy.deepcopy(SMALL)
    change(data)
    with pytest.raises(ServiceError, match=message):
        journeys.import_json(data, ctx.owner)
    assert journeys.list_journeys() == []  # nothing half-imported


def test_csv_export_has_a_row_per_step_and_defuses_formulas(ctx):
    import csv
    import io

    journeys = _svc()
    data = {
        **SMALL,
        "stages": [
            {
                "name": '=HYPERLINK("http://evil")',
                "steps": [
                    {"name": "+1+1", "lane": "Actions", "emotion": -2, "description": "@SUM(A1)"},
                    {"name": "-cmd", "lane": "Actions", "notes": [{"kind": "idea", "text": "=2+3"}]},
                    {"name": "Plain", "lane": "Backstage", "expected_duration_s": 90},
                ],
            }
        ],
    }
    journey = journeys.import_json(data, ctx.owner)
    rows = list(csv.DictReader(io.StringIO(journeys.export_csv(journey.id))))
    assert len(rows) == 3
    assert rows[0]["stage"] == '\'=HYPERLINK("http://evil")' and rows[0]["step"] == "'+1+1"
    assert rows[0]["description"] == "'@SUM(A1)" and rows[0]["emotion"] == "-2"  # numbers stay numbers
    assert rows[1]["step"] == "'-cmd" and rows[1]["ideas"] == "'=2+3"
    assert (
        rows[2]["step"] == "Plain"
        and rows[2]["expected_duration_s"] == "90"
        and rows[2]["lane"] == "Backstage"
    )


# --- personas and the database's own checks -----------------------------------------------------------


def test_personas_are_listed_created_updated_and_deleted(ctx):
    journeys = _svc()
    persona = journeys.create_persona({"name": "Dana", "goals": "Fast answers"}, ctx.owner)
    journeys.update_persona(persona.id, {"quote": "Just fix it.", "role": "Nurse"}, ctx.owner)
    [listed] = journeys.list_personas()
    assert (listed.name, listed.role, listed.goals, listed.quote) == (
        "Dana",
        "Nurse",
        "Fast answers",
        "Just fix it.",
    )
    with pytest.raises(ServiceError, match="name is missing"):
        journeys.update_persona(persona.id, {"name": ""}, ctx.owner)
    with pytest.raises(ServiceError, match="Unknown field 'age'"):
        journeys.create_persona({"name": "X", "age": 40}, ctx.owner)
    journey = journeys.create_journey("Clinic IT", ctx.owner, persona_id=persona.id)
    journeys.delete_persona(persona.id, ctx.owner)
    assert journeys.get_journey(journey.id).persona_id is None


def test_the_database_refuses_out_of_range_emotions_and_unknown_channels(ctx):
    from sqlalchemy.exc import IntegrityError

    from webapp.extensions import db
    from webapp.models import Step

    journeys = _svc()
    journey = journeys.import_json(SMALL, ctx.owner)
    board = _board(journey.id)
    for values in ({"emotion": 4}, {"channel": "fax"}, {"expected_duration_s": -5}):
        db.session.add(
            Step(
                journey_id=journey.id,
                stage_id=board.stages[0].id,
                lane_id=board.lanes[0].id,
                position=9,
                name="raw",
                **values,
            )
        )
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()


def test_the_measured_layout_read_from_a_loaded_board_equals_the_one_read_from_the_database(ctx):
    """The data-vs-story page decides whether figures are out of date from the board it has loaded; it
    must see the same layout (step order, stage index) as a measurement records from the database."""
    from webapp.services import overlay

    journeys = _svc()
    journey = journeys.create_from_template("it-incident", ctx.owner)
    board = _board(journey.id)
    empty = journeys.add_stage(journey.id, "No steps yet", ctx.owner, position=0)
    journeys.reorder_stage(board.stages[-1].id, 1, ctx.owner, expected_version=board.stages[-1].version)
    lane = board.lanes[-1]
    journeys.reorder_lane(lane.id, 0, ctx.owner, expected_version=lane.version)
    step = board.steps[0]
    journeys.move_step(
        step.id,
        ctx.owner,
        stage_id=board.stages[-1].id,
        lane_id=lane.id,
        position=0,
        expected_version=step.version,
    )
    expected = overlay.layout(journey.id)
    got = overlay.layout_of_board(_board(journey.id))
    assert got == expected
    assert empty.id not in {row["stage_id"] for row in got}  # a stage without steps takes no index
    assert sorted({row["stage_index"] for row in got}) == list(range(len({r["stage_id"] for r in got})))
