"""The drawn board shared between the readers of one journey (webapp/journeys/board_cache.py): the next
reader gets it without drawing it again, and no reader ever sees a board that is not theirs to see or
that an edit has made stale: not a viewer an editor's forms, not an archived journey's readers its edit
forms, not anyone the board before a change. Without Redis the board is drawn as before."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import sqlalchemy as sa

from tests.support import csrf_token, login, new_journey


def _first_step(html) -> tuple[int, int]:
    match = re.search(r'data-step-id="(\d+)" data-version="(\d+)"', html)
    return int(match.group(1)), int(match.group(2))


def _since(html) -> int:
    return int(re.search(r'id="board"[^>]*data-since="(\d+)"', html).group(1))


class _StepQueries:
    """Counts the statements that read the steps table while in use."""

    def __init__(self, app):
        with app.app_context():
            self.engine = app.extensions["sqlalchemy"].engine
        self.count = 0

    def _seen(self, _conn, _cursor, statement, *_args) -> None:
        if re.search(r"\bFROM steps\b", statement):
            self.count += 1

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def test_the_next_reader_gets_the_board_without_drawing_it(app, tenant_a, make_client):
    anna, ben = make_client(), make_client()
    login(anna, "editor@a.example")
    login(ben, "admin@a.example")
    url = new_journey(anna, tenant_a.slug)
    with _StepQueries(app) as first:
        anna_page = anna.get(url).get_data(as_text=True)
    with _StepQueries(app) as second:
        ben_page = ben.get(url).get_data(as_text=True)
    assert first.count >= 1 and second.count == 0
    board = re.search(r'<div id="board".*</table>', anna_page, re.S).group(0)
    assert board in ben_page  # the same map, with the same edit forms (both may edit)
    assert "Save step" in ben_page and "<h1>VPN incident</h1>" in ben_page


def test_an_edit_is_never_hidden_by_the_drawn_board(app, tenant_a, make_client):
    anna, ben = make_client(), make_client()
    login(anna, "editor@a.example")
    login(ben, "viewer@a.example")
    url = new_journey(anna, tenant_a.slug)
    anna_page = anna.get(url).get_data(as_text=True)
    ben_page = ben.get(url).get_data(as_text=True)
    step_id, version = _first_step(anna_page)
    saved = anna.post(
        f"{url}/steps/{step_id}",
        data={"expected_version": version, "name": "Reports VPN outage"},
        headers={"HX-Request": "true", "X-CSRFToken": csrf_token(anna_page)},
    )
    assert saved.status_code == 200
    poll = ben.get(f"{url}/board?since={_since(ben_page)}", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and "Reports VPN outage" in poll.get_data(as_text=True)
    assert "Reports VPN outage" in ben.get(url).get_data(as_text=True)
    assert "Reports VPN outage" in anna.get(url).get_data(as_text=True)


def test_readers_see_the_board_of_their_role_whoever_drew_it_first(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = new_journey(editor, tenant_a.slug)
    assert "Save step" in editor.get(url).get_data(as_text=True)
    viewer_page = viewer.get(url).get_data(as_text=True)
    assert "Save step" not in viewer_page and "hx-post" not in _board_of(viewer_page)
    assert "Save step" in editor.get(url).get_data(as_text=True)
    # An archived map is read-only for editors too, with no change to its steps.
    page = editor.get(url).get_data(as_text=True)
    archived = editor.post(f"{url}/archive", data={"csrf_token": csrf_token(page)})
    assert archived.status_code == 302
    archived_page = editor.get(url).get_data(as_text=True)
    assert "archived" in archived_page and "Save step" not in archived_page
    assert "hx-post" not in _board_of(archived_page)


def test_boards_are_drawn_while_redis_is_away(app, tenant_a, client):
    from redis import Redis

    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    app.extensions["journeylens_redis"] = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    try:
        for _ in range(2):  # the first finds Redis away, the second does not ask it again
            page = client.get(url)
            assert page.status_code == 200 and "Save step" in page.get_data(as_text=True)
        step_id, version = _first_step(page.get_data(as_text=True))
        saved = client.post(
            f"{url}/steps/{step_id}",
            data={"expected_version": version, "name": "Calls the desk"},
            headers={"HX-Request": "true", "X-CSRFToken": csrf_token(page.get_data(as_text=True))},
        )
        assert saved.status_code == 200
        assert "Calls the desk" in client.get(url).get_data(as_text=True)
    finally:
        from webapp.journeys import board_cache

        app.extensions.pop("journeylens_redis", None)
        board_cache._paused_until = 0.0


def test_two_databases_that_reuse_ids_never_share_a_board(app):
    from webapp.journeys import board_cache

    organisation = SimpleNamespace(id=1, slug="alpha")
    here = SimpleNamespace(id=7, created_at=datetime(2026, 12, 3, 10, 0, 0, 1, tzinfo=UTC))
    there = SimpleNamespace(id=7, created_at=datetime(2026, 12, 3, 10, 0, 0, 2, tzinfo=UTC))
    with app.app_context():
        keys = {
            board_cache._key(organisation, journey, 5, can_edit, "")
            for journey in (here, there)
            for can_edit in (True, False)
        }
    assert len(keys) == 4 and None not in keys


def _board_of(page: str) -> str:
    return re.search(r'<div id="board".*</table>', page, re.S).group(0)
