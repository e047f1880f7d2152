"""The journey editor through its real forms: create from a template, edit inline, conflicts shown with
both values, moves, notes, undo, live-update polling, history and versions, viewers read only."""

from __future__ import annotations

import re

from tests.support import csrf_token, login


def _new_from_template(client, slug, template="it-incident", title="VPN incident"):
    page = client.get(f"/o/{slug}/journeys").get_data(as_text=True)
    response = client.post(
        f"/o/{slug}/journeys", data={"csrf_token": csrf_token(page), "template": template, "title": title}
    )
    assert response.status_code == 302
    return response.headers["Location"]


def _hx(client, url, data, page_html):
    return client.post(url, data=data, headers={"HX-Request": "true", "X-CSRFToken": csrf_token(page_html)})


def _first_step(html):
    match = re.search(r'data-step-id="(\d+)" data-version="(\d+)" data-position="(\d+)"', html)
    return int(match.group(1)), int(match.group(2))


def test_template_journey_is_drawn_as_a_map(app, tenant_a, client):
    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug)
    html = client.get(url).get_data(as_text=True)
    assert "<h1>VPN incident</h1>" in html
    for lane in ("Actions", "Frontstage", "Backstage", "Support processes"):
        assert lane in html
    assert 'class="emotion-curve"' in html and "<polyline" in html
    assert html.count('class="step') >= 6


def test_inline_edit_and_a_stale_edit_shows_both_values(app, tenant_a, make_client):
    anna, ben = make_client(), make_client()
    login(anna, "editor@a.example")
    login(ben, "admin@a.example")
    url = _new_from_template(anna, tenant_a.slug)
    page = anna.get(url).get_data(as_text=True)
    step_id, version = _first_step(page)
    ben_page = ben.get(url).get_data(as_text=True)
    saved = _hx(
        anna,
        f"{url}/steps/{step_id}",
        {"expected_version": version, "name": "Reports VPN outage", "emotion": "-2"},
        page,
    )
    assert saved.status_code == 200 and "Reports VPN outage" in saved.get_data(as_text=True)
    stale = _hx(
        ben, f"{url}/steps/{step_id}", {"expected_version": version, "name": "Calls the desk"}, ben_page
    )
    assert stale.status_code == 409
    body = stale.get_data(as_text=True)
    assert "Changed by someone else" in body and "Reports VPN outage" in body and "Calls the desk" in body
    assert "Keep mine" in body and "Take theirs" in body
    assert stale.headers["HX-Retarget"] == "#editor-messages"
    # Keep mine: the conflict form carries the stored version, so it now saves.
    stored_version = re.search(r'name="expected_version" value="(\d+)"', body).group(1)
    kept = _hx(
        ben,
        f"{url}/steps/{step_id}",
        {"expected_version": stored_version, "name": "Calls the desk"},
        ben_page,
    )
    assert kept.status_code == 200 and "Calls the desk" in kept.get_data(as_text=True)


def test_bad_input_gets_a_clear_refusal(app, tenant_a, client):
    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug)
    page = client.get(url).get_data(as_text=True)
    step_id, version = _first_step(page)
    refused = _hx(client, f"{url}/steps/{step_id}", {"expected_version": version, "emotion": "7"}, page)
    assert refused.status_code == 422 and "-3" in refused.get_data(as_text=True)
    too_long = _hx(client, f"{url}/steps/{step_id}", {"expected_version": version, "name": "x" * 201}, page)
    assert too_long.status_code == 422
    script = _hx(
        client,
        f"{url}/steps/{step_id}",
        {"expected_version": version, "name": "<script>alert(1)</script>"},
        page,
    )
    assert "<script>alert(1)</script>" not in script.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script.get_data(as_text=True)


def test_move_note_delete_undo_and_live_polling(app, tenant_a, client):
    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug)
    page = client.get(url).get_data(as_text=True)
    since = re.search(r'data-since="(\d+)"', page).group(1)
    assert client.get(f"{url}/board?since={since}").status_code == 204  # nothing new
    step_id, version = _first_step(page)
    stages = re.findall(r'class="stage" data-stage-id="(\d+)"', page)
    lanes = re.findall(r'class="lane" data-lane-id="(\d+)"', page)
    moved = _hx(
        client,
        f"{url}/steps/{step_id}/move",
        {"expected_version": version, "stage_id": stages[-1], "lane_id": lanes[-1], "position": "0"},
        page,
    )
    assert moved.status_code == 200
    board = client.get(f"{url}/board?since={since}")
    assert board.status_code == 200  # something changed: the new board
    html = board.get_data(as_text=True)
    assert f'data-stage-id="{stages[-1]}" data-lane-id="{lanes[-1]}"' in html
    noted = _hx(
        client, f"{url}/steps/{step_id}/notes", {"kind": "pain_point", "text": "Nobody answers"}, page
    )
    assert "Nobody answers" in noted.get_data(as_text=True)
    step_version = re.search(
        rf'data-step-id="{step_id}" data-version="(\d+)"', noted.get_data(as_text=True)
    ).group(1)
    deleted = _hx(client, f"{url}/steps/{step_id}/delete", {"expected_version": step_version}, page)
    assert f'data-step-id="{step_id}"' not in deleted.get_data(as_text=True)
    undone = _hx(client, f"{url}/undo", {}, page)
    assert f'data-step-id="{step_id}"' in undone.get_data(as_text=True)


def test_history_and_named_versions(app, tenant_a, client):
    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug)
    page = client.get(url).get_data(as_text=True)
    history = client.get(f"{url}/history")
    client.post(
        f"{url}/versions",
        data={"csrf_token": csrf_token(history.get_data(as_text=True)), "name": "Workshop 3 March"},
    )
    step_id, version = _first_step(page)
    _hx(
        client,
        f"{url}/steps/{step_id}",
        {"expected_version": version, "name": "Changed after workshop"},
        page,
    )
    timeline = client.get(f"{url}/history").get_data(as_text=True)
    assert "Workshop 3 March" in timeline and "Changed after workshop" in timeline
    version_id = re.search(r"/versions/(\d+)/restore", timeline).group(1)
    restored = client.post(
        f"{url}/versions/{version_id}/restore",
        data={"csrf_token": csrf_token(timeline)},
        follow_redirects=True,
    )
    assert "Changed after workshop" not in restored.get_data(as_text=True).split('<table class="board"')[1]


def test_viewers_read_and_get_403_on_writes_and_no_edit_controls(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = _new_from_template(editor, tenant_a.slug)
    html = viewer.get(url).get_data(as_text=True)
    assert "VPN incident" in html
    assert "step-edit" not in html and "add-step" not in html and "Undo last delete" not in html
    step_id, version = _first_step(html)
    refused = viewer.post(
        f"{url}/steps/{step_id}",
        data={"expected_version": version, "name": "x", "csrf_token": csrf_token(html)},
    )
    assert refused.status_code == 403


def test_list_search_and_json_round_trip(app, tenant_a, client):
    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug, "it-incident", "Laptop broken")
    _new_from_template(client, tenant_a.slug, "onboarding", "First day")
    listing = client.get(f"/o/{tenant_a.slug}/journeys?q=laptop", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "Laptop broken" in listing and "First day" not in listing
    exported = client.get(f"{url}/export.json")
    assert exported.mimetype == "application/json"
    page = client.get(f"/o/{tenant_a.slug}/journeys").get_data(as_text=True)
    imported = client.post(
        f"/o/{tenant_a.slug}/journeys/import",
        data={
            "csrf_token": csrf_token(page),
            "file": (__import__("io").BytesIO(exported.data), "journey.json"),
        },
        content_type="multipart/form-data",
    )
    assert imported.status_code == 302
    again = client.get(imported.headers["Location"] + "/export.json")
    assert again.get_json() == exported.get_json()
    csv_text = client.get(f"{url}/export.csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].lower().startswith(("stage", "journey", "position", "name"))


def test_details_persona_owner_and_save_as_template(app, tenant_a, client):
    login(client, "editor@a.example")
    personas = client.get(f"/o/{tenant_a.slug}/journeys/personas").get_data(as_text=True)
    client.post(
        f"/o/{tenant_a.slug}/journeys/personas",
        data={
            "csrf_token": csrf_token(personas),
            "name": "Priya",
            "role": "Nurse",
            "quote": "I need it to just work",
        },
    )
    assert "Priya" in client.get(f"/o/{tenant_a.slug}/journeys/personas").get_data(as_text=True)
    url = _new_from_template(client, tenant_a.slug, "hardware-request", "New phone")
    page = client.get(url).get_data(as_text=True)
    persona_id = re.search(r'<option value="(\d+)"[^>]*>Priya', page).group(1)
    version = re.search(r'name="expected_version" value="(\d+)">\s*<label for="j-title"', page).group(1)
    _hx(
        client,
        url,
        {
            "expected_version": version,
            "title": "New phone for ward staff",
            "status": "in_review",
            "persona_id": persona_id,
            "tags": "hardware, mobile",
        },
        page,
    )
    html = client.get(url).get_data(as_text=True)
    assert "<h1>New phone for ward staff</h1>" in html and "in review" in html and "persona Priya" in html
    client.post(f"{url}/template", data={"csrf_token": csrf_token(html), "name": "Ward hardware"})
    listing = client.get(f"/o/{tenant_a.slug}/journeys").get_data(as_text=True)
    assert "Ward hardware" in listing and "your template" in listing


def test_a_step_edit_answers_its_card_in_few_queries_whatever_the_map(app, tenant_a, client):
    import sqlalchemy as sa

    from webapp.extensions import db

    login(client, "editor@a.example")
    url = _new_from_template(client, tenant_a.slug)
    page = client.get(url).get_data(as_text=True)
    step_id, version = _first_step(page)
    cell = {
        "stage_id": re.search(r'class="stage" data-stage-id="(\d+)"', page).group(1),
        "lane_id": re.search(r'class="lane" data-lane-id="(\d+)"', page).group(1),
    }
    for number in range(30):  # a bigger map must not cost more queries
        _hx(client, f"{url}/steps", {**cell, "name": f"Extra {number}"}, page)
    statements = []
    with app.app_context():
        engine = db.engine

    def count(*_args):
        statements.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        saved = _hx(client, f"{url}/steps/{step_id}", {"expected_version": version, "emotion": "-3"}, page)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200
    assert body.count('<li class="step') == 1 and f'id="step-{step_id}"' in body  # that step, not the board
    assert 'id="emotion-curve"' in body and 'hx-swap-oob="true"' in body and "<polyline" in body
    assert 'id="board"' not in body
    assert len(statements) <= 20, len(statements)


def test_edits_of_elements_deleted_meanwhile_say_who_and_foreign_ids_are_404(app, tenant_a, make_client):
    anna, ben = make_client(), make_client()
    login(anna, "editor@a.example")
    login(ben, "admin@a.example")
    url = _new_from_template(anna, tenant_a.slug)
    other = _new_from_template(anna, tenant_a.slug, title="Another map")
    page = anna.get(url).get_data(as_text=True)
    ben_page = ben.get(url).get_data(as_text=True)
    step_id, version = _first_step(page)
    deleted = _hx(anna, f"{url}/steps/{step_id}/delete", {"expected_version": version}, page)
    assert deleted.status_code == 200
    stale = _hx(ben, f"{url}/steps/{step_id}", {"expected_version": version, "name": "Too late"}, ben_page)
    assert stale.status_code == 422 and stale.headers["HX-Retarget"] == "#editor-messages"
    assert "deleted by editor@a.example" in stale.get_data(as_text=True)
    # A step of another journey of the same organisation is not this journey's: 404, as for a stranger.
    other_step, other_version = _first_step(anna.get(other).get_data(as_text=True))
    for path in ("", "/move", "/delete", "/notes"):
        answer = _hx(anna, f"{url}/steps/{other_step}{path}", {"expected_version": other_version}, page)
        assert answer.status_code == 404, path
    other_stage = re.search(r'class="stage" data-stage-id="(\d+)"', anna.get(other).get_data(as_text=True))
    moved = _hx(
        anna,
        f"{url}/stages/{other_stage.group(1)}",
        {"expected_version": "1", "action": "move", "position": "0"},
        page,
    )
    assert moved.status_code == 404


def test_history_offers_every_change_as_a_point_to_restore(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = _new_from_template(editor, tenant_a.slug)
    page = editor.get(url).get_data(as_text=True)
    step_id, version = _first_step(page)
    for number, name in enumerate(("Renamed once", "Renamed twice")):
        _hx(editor, f"{url}/steps/{step_id}", {"expected_version": version + number, "name": name}, page)
    timeline = editor.get(f"{url}/history").get_data(as_text=True)
    change_ids = re.findall(r'<li id="change-(\d+)"', timeline)
    assert len(change_ids) == 3  # created from the template, two renames; newest first
    buttons = re.findall(r"/history/(\d+)/restore", timeline)
    assert buttons == change_ids[1:]  # every change but the newest, which is the map as it is now
    assert timeline.count("Restore the journey as it was after this change") == 2
    assert "Restore the journey as it was after this change" not in viewer.get(f"{url}/history").get_data(
        as_text=True
    )

    at_first_rename = change_ids[1]
    restored = editor.post(
        f"{url}/history/{at_first_rename}/restore",
        data={"csrf_token": csrf_token(timeline)},
        follow_redirects=True,
    )
    board = restored.get_data(as_text=True)
    assert f"Restored as it was after change #{at_first_rename}" in board
    assert "Renamed once" in board and "Renamed twice" not in board
    timeline = editor.get(f"{url}/history").get_data(as_text=True)
    assert f"Restored the journey as it was after change #{at_first_rename}" in timeline
    # Restoring the change before the restore undoes it.
    undo_point = re.findall(r'<li id="change-(\d+)"', timeline)[1]
    editor.post(f"{url}/history/{undo_point}/restore", data={"csrf_token": csrf_token(timeline)})
    assert "Renamed twice" in editor.get(url).get_data(as_text=True)
    # The newest change is the map as it is: nothing to restore, nothing recorded.
    newest = re.findall(r'<li id="change-(\d+)"', editor.get(f"{url}/history").get_data(as_text=True))[0]
    again = editor.post(
        f"{url}/history/{newest}/restore", data={"csrf_token": csrf_token(timeline)}, follow_redirects=True
    )
    assert "Nothing to restore" in again.get_data(as_text=True)


def test_dragging_a_stage_posts_the_move_and_a_stale_drag_gets_the_conflict_view(app, tenant_a, make_client):
    anna, ben = make_client(), make_client()
    login(anna, "editor@a.example")
    login(ben, "admin@a.example")
    url = _new_from_template(anna, tenant_a.slug)
    page = anna.get(url).get_data(as_text=True)
    ben_page = ben.get(url).get_data(as_text=True)
    # What SortableJS needs on each header: where to post, and the version it was drawn with.
    headers = re.findall(
        r'class="stage" data-stage-id="(\d+)" data-version="(\d+)" data-edit-url="([^"]+)"', page
    )
    assert len(headers) >= 3 and 'class="stage-grip"' in page
    first_id, first_version, edit_url = headers[0]
    assert edit_url == f"{url}/stages/{first_id}"
    moved = _hx(anna, edit_url, {"expected_version": first_version, "action": "move", "position": "2"}, page)
    assert moved.status_code == 200
    order = re.findall(r'class="stage" data-stage-id="(\d+)"', moved.get_data(as_text=True))
    assert order.index(first_id) == 2
    stale = _hx(
        ben, edit_url, {"expected_version": first_version, "action": "move", "position": "1"}, ben_page
    )
    assert stale.status_code == 409 and stale.headers["HX-Retarget"] == "#editor-messages"
    body = stale.get_data(as_text=True)
    assert "Changed by someone else" in body and "so it was not moved" in body and "Take theirs" in body
    viewer = make_client()
    login(viewer, "viewer@a.example")
    assert "stage-grip" not in viewer.get(url).get_data(as_text=True)  # nothing to drag for a viewer
