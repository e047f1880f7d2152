"""Collaboration through the real forms: comment threads and replies on journeys and steps, @mentions
that notify members (inbox, unread count in the top bar, mark read), resolve and reopen, viewers who
comment but do not edit, escaping, mention mails through the queue, and read-only share links that
expire, can be revoked, and open one journey map and nothing else."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.support import csrf_token, login, new_journey


def _post(client, url, data, page_url, *, htmx=False):
    token = csrf_token(client.get(page_url).get_data(as_text=True))
    headers = {"HX-Request": "true", "X-CSRFToken": token} if htmx else {}
    return client.post(url, data={**data, "csrf_token": token}, headers=headers)


def _comment(client, journey_url, body, *, step_id=None, htmx=False):
    data = {"body": body, "step_id": "" if step_id is None else str(step_id)}
    return _post(client, f"{journey_url}/comments", data, f"{journey_url}/comments", htmx=htmx)


def _comment_ids(html) -> list[int]:
    return [int(i) for i in re.findall(r'id="comment-(\d+)"', html)]


def _first_step_id(html) -> int:
    return int(re.search(r'data-step-id="(\d+)"', html).group(1))


def _unread_badge(html) -> str | None:
    match = re.search(r'id="inbox-link"[^>]*>Inbox(?: <span class="badge badge-warn">(\d+))?', html)
    assert match, "no inbox link in the top bar"
    return match.group(1)


def _share_url(html) -> str:
    return re.search(r'id="new-share-link" type="text" readonly value="([^"]+)"', html).group(1)


def _set_display_name(app, email, name):
    from webapp.extensions import db
    from webapp.models import User

    with app.app_context():
        db.session.scalar(sa.select(User).where(User.email == email)).display_name = name
        db.session.commit()
        db.session.remove()


# --- threads ------------------------------------------------------------------------------------------


def test_threads_on_the_journey_and_on_a_step_with_replies(app, tenant_a, make_client):
    editor, admin = make_client(), make_client()
    login(editor, "editor@a.example")
    login(admin, "admin@a.example")
    url = new_journey(editor, tenant_a.slug)
    step_id = _first_step_id(editor.get(url).get_data(as_text=True))

    first = _comment(editor, url, "Is the VPN step really owned by the desk?")
    assert first.status_code == 302 and "#comment-" in first.headers["Location"]
    on_step = _comment(editor, url, "This step takes two days in reality.", step_id=step_id, htmx=True)
    assert on_step.status_code == 200
    body = on_step.get_data(as_text=True)
    assert "On the whole journey" in body and "On step" in body and f"#step-{step_id}" in body
    thread_id = _comment_ids(body)[1]

    replied = _post(
        admin,
        f"{url}/comments/{thread_id}/replies",
        {"body": "The event log says 41 hours median."},
        f"{url}/comments",
        htmx=True,
    )
    assert replied.status_code == 200
    page = admin.get(f"{url}/comments").get_data(as_text=True)
    thread = page[page.index(f'id="thread-{thread_id}"') :]
    thread = thread[: thread.index("</article>")]
    assert "This step takes two days" in thread and "41 hours median" in thread
    assert "2 open" in page

    # A reply to a reply joins the same thread.
    reply_id = _comment_ids(thread)[1]
    _post(editor, f"{url}/comments/{reply_id}/replies", {"body": "Then we fix it."}, f"{url}/comments")
    page = editor.get(f"{url}/comments").get_data(as_text=True)
    thread = page[page.index(f'id="thread-{thread_id}"') :]
    assert "Then we fix it." in thread[: thread.index("</article>")]
    assert "2 open" in page


def test_the_journey_page_loads_comments_and_share_links_below_the_map(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = new_journey(editor, tenant_a.slug)
    html = editor.get(url).get_data(as_text=True)
    assert html.index('id="board"') < html.index('id="comments"')
    assert f'hx-get="{url}/comments"' in html and f'hx-get="{url}/share"' in html
    viewer_html = viewer.get(url).get_data(as_text=True)
    assert f'hx-get="{url}/comments"' in viewer_html and f'hx-get="{url}/share"' not in viewer_html
    # The map's poll answers a fragment, as before.
    poll = editor.get(f"{url}/board", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and 'id="board"' in poll.get_data(as_text=True)


def test_an_empty_or_too_long_comment_is_refused_and_the_text_kept(app, tenant_a, client):
    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    empty = _comment(client, url, "   ", htmx=True)
    assert empty.status_code == 422 and "the comment is empty" in empty.get_data(as_text=True)
    long_text = "x" * 5001
    refused = _comment(client, url, long_text, htmx=True)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "under 5,000 characters" in body and long_text in body
    assert _comment(client, url, "y" * 5000).status_code == 302
    # A step of another journey is not a step of this one.
    other = new_journey(client, tenant_a.slug, "Other")
    foreign_step = _first_step_id(client.get(other).get_data(as_text=True))
    assert _comment(client, url, "Which step?", step_id=foreign_step).status_code == 404


def test_comments_are_escaped_and_mentions_marked(app, tenant_a, client):
    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    _comment(client, url, "<script>alert(1)</script> & <b>bold</b>\nsecond line @admin@a.example")
    html = client.get(f"{url}/comments").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;<br>" in html
    assert '<mark class="mention">@admin@a.example</mark>' in html


# --- mentions and the inbox ---------------------------------------------------------------------------


def test_a_mention_notifies_the_member_and_the_top_bar_counts_it(app, tenant_a, make_client):
    _set_display_name(app, "admin@a.example", "Ada Admin")
    editor, viewer, admin = make_client(), make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    login(admin, "admin@a.example")
    url = new_journey(editor, tenant_a.slug)
    overview = f"/o/{tenant_a.slug}/"
    assert _unread_badge(viewer.get(overview).get_data(as_text=True)) is None

    _comment(editor, url, "@viewer@a.example and @ada admin: is this right? (not @nobody@a.example)")
    assert _unread_badge(viewer.get(overview).get_data(as_text=True)) == "1"
    assert _unread_badge(admin.get(overview).get_data(as_text=True)) == "1"
    assert _unread_badge(editor.get(overview).get_data(as_text=True)) is None  # not for the author

    inbox = viewer.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    assert "editor@a.example</strong> mentioned you on <em>VPN incident</em>" in inbox
    assert "is this right?" in inbox
    notification_id = int(re.search(r'id="notification-(\d+)"', inbox).group(1))

    # Mark read through htmx: the list and the top bar's count (out of band) change together.
    marked = _post(
        viewer, f"/o/{tenant_a.slug}/inbox/{notification_id}/read", {}, f"/o/{tenant_a.slug}/inbox", htmx=True
    )
    body = marked.get_data(as_text=True)
    assert marked.status_code == 200 and 'id="inbox-link" href=' in body and 'hx-swap-oob="true"' in body
    assert "Unread (0)" in body
    assert _unread_badge(viewer.get(overview).get_data(as_text=True)) is None

    # Open goes to the comment; mark all read clears the rest.
    admin_inbox = admin.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    admin_notification = int(re.search(r'id="notification-(\d+)"', admin_inbox).group(1))
    opened = _post(
        admin,
        f"/o/{tenant_a.slug}/inbox/{admin_notification}/read",
        {"open": "1"},
        f"/o/{tenant_a.slug}/inbox",
    )
    assert opened.status_code == 302 and re.search(r"/comments#comment-\d+$", opened.headers["Location"])
    assert _unread_badge(admin.get(overview).get_data(as_text=True)) is None


def test_replies_notify_the_thread_and_resolving_tells_its_author(app, tenant_a, make_client):
    editor, viewer, admin = make_client(), make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    login(admin, "admin@a.example")
    url = new_journey(editor, tenant_a.slug)
    _comment(viewer, url, "Why is there no self-service step?")
    thread_id = _comment_ids(viewer.get(f"{url}/comments").get_data(as_text=True))[0]
    _post(editor, f"{url}/comments/{thread_id}/replies", {"body": "Good point."}, f"{url}/comments")
    _post(admin, f"{url}/comments/{thread_id}/replies", {"body": "Agreed, @editor@a.example."}, url)

    viewer_inbox = viewer.get(f"/o/{tenant_a.slug}/inbox?unread=1").get_data(as_text=True)
    assert viewer_inbox.count("replied in a thread you are part of") == 2
    editor_inbox = editor.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    # The editor is mentioned in the second reply: one notification, the mention, not a second "reply".
    assert editor_inbox.count("mentioned you") == 1 and "replied in a thread" not in editor_inbox

    resolved = _post(editor, f"{url}/comments/{thread_id}/resolve", {}, f"{url}/comments", htmx=True)
    body = resolved.get_data(as_text=True)
    assert resolved.status_code == 200 and "0 open · 1 resolved" in body and "Reopen" in body
    assert "resolved your thread" in viewer.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    # The author may reopen their own thread, even as a viewer.
    reopened = _post(viewer, f"{url}/comments/{thread_id}/reopen", {}, f"{url}/comments", htmx=True)
    assert reopened.status_code == 200 and "1 open" in reopened.get_data(as_text=True)


def test_viewers_comment_but_do_not_edit_share_or_resolve_others_threads(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = new_journey(editor, tenant_a.slug)
    _comment(editor, url, "Editor's thread")
    editor_thread = _comment_ids(editor.get(f"{url}/comments").get_data(as_text=True))[0]

    assert _comment(viewer, url, "A viewer's question").status_code == 302
    html = viewer.get(f"{url}/comments").get_data(as_text=True)
    assert "A viewer&#39;s question" in html and 'name="body"' in html
    viewer_thread = _comment_ids(html)[-1]
    # Resolve is offered on their own thread only.
    assert f"/comments/{viewer_thread}/resolve" in html and f"/comments/{editor_thread}/resolve" not in html
    assert _post(viewer, f"{url}/comments/{editor_thread}/resolve", {}, url).status_code == 403
    assert _post(viewer, f"{url}/comments/{viewer_thread}/resolve", {}, url).status_code == 302

    page = viewer.get(url).get_data(as_text=True)
    step_id = _first_step_id(page)
    assert (
        _post(viewer, f"{url}/steps/{step_id}", {"expected_version": "1", "name": "x"}, url).status_code
        == 403
    )
    assert _post(viewer, f"{url}/share", {"days": "7"}, url).status_code == 403
    share_page = viewer.get(f"{url}/share").get_data(as_text=True)
    assert "Create link" not in share_page


# --- live --------------------------------------------------------------------------------------------

HX = {"HX-Request": "true"}


def _poll_url(html, element_id) -> str:
    return unescape(re.search(rf'id="{element_id}"[^>]*? hx-get="([^"]+)"', html).group(1))


def test_the_comment_panel_polls_204_until_someone_comments_resolves_or_edits(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = new_journey(editor, tenant_a.slug)
    panel = viewer.get(f"{url}/comments", headers=HX).get_data(as_text=True)
    poll = _poll_url(panel, "comment-threads")
    assert 'hx-trigger="every 1500ms"' in panel and "?since=" in poll
    assert viewer.get(poll, headers=HX).status_code == 204  # nothing new: no body, no rendering

    def changed(since_url):
        answer = viewer.get(since_url, headers=HX)
        assert answer.status_code == 200, since_url
        body = answer.get_data(as_text=True)
        assert body.lstrip().startswith('<div id="comment-threads"')
        assert 'class="new-thread"' not in body  # the form being typed in is never redrawn by a poll
        again = _poll_url(body, "comment-threads")
        assert viewer.get(again, headers=HX).status_code == 204
        return body, again

    _comment(editor, url, "Seen live on the journey?")
    body, poll = changed(poll)
    assert "Seen live on the journey?" in body and "On the whole journey" in body
    step_id = _first_step_id(editor.get(url).get_data(as_text=True))
    _comment(editor, url, "Seen live on a step?", step_id=step_id)
    body, poll = changed(poll)
    assert "Seen live on a step?" in body and "On step" in body
    thread_id = _comment_ids(body)[0]
    _post(editor, f"{url}/comments/{thread_id}/resolve", {}, f"{url}/comments")
    body, poll = changed(poll)
    assert "1 open · 1 resolved" in body
    _post(editor, f"{url}/comments/{thread_id}/reopen", {}, f"{url}/comments")
    body, poll = changed(poll)
    assert "2 open" in body
    # Editing a step nobody discusses changes nothing the panel shows: still 204.
    page = editor.get(url).get_data(as_text=True)
    other_id, other_version = next(
        (int(i), v)
        for i, v in re.findall(r'data-step-id="(\d+)" data-version="(\d+)"', page)
        if int(i) != step_id
    )
    _post(editor, f"{url}/steps/{other_id}", {"expected_version": other_version, "name": "Quiet edit"}, url)
    assert viewer.get(poll, headers=HX).status_code == 204
    # Renaming the step a thread is about redraws it.
    page = editor.get(url).get_data(as_text=True)
    version = re.search(rf'data-step-id="{step_id}" data-version="(\d+)"', page).group(1)
    _post(editor, f"{url}/steps/{step_id}", {"expected_version": version, "name": "Renamed live"}, url)
    body, poll = changed(poll)
    assert "Renamed live" in body
    # So does deleting it, and undoing that.
    version = int(version) + 1
    _post(editor, f"{url}/steps/{step_id}/delete", {"expected_version": version}, url)
    body, poll = changed(poll)
    assert "since deleted" in body
    _post(editor, f"{url}/undo", {}, url)
    body, poll = changed(poll)
    assert "since deleted" not in body and "Renamed live" in body
    # Without htmx the same address is the comments page.
    full = viewer.get(poll)
    assert full.status_code == 200 and full.get_data(as_text=True).lower().startswith("<!doctype html>")


def test_the_inbox_count_polls_204_until_it_changes(app, tenant_a, make_client):
    editor, viewer = make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    url = new_journey(editor, tenant_a.slug)
    overview = f"/o/{tenant_a.slug}/"
    poll = _poll_url(viewer.get(overview).get_data(as_text=True), "inbox-link")
    assert poll == f"/o/{tenant_a.slug}/inbox/unread?since=0"
    assert viewer.get(poll, headers=HX).status_code == 204
    _comment(editor, url, "Have a look, @viewer@a.example")
    answer = viewer.get(poll, headers=HX)
    assert answer.status_code == 200
    link = answer.get_data(as_text=True)
    assert _unread_badge(link) == "1" and "aria-current" not in link
    poll = _poll_url(link, "inbox-link")
    assert poll.endswith("since=1") and viewer.get(poll, headers=HX).status_code == 204
    # On the inbox page itself the redrawn link still says where you are.
    on_inbox = {**HX, "HX-Current-URL": f"http://localhost/o/{tenant_a.slug}/inbox"}
    _post(viewer, f"/o/{tenant_a.slug}/inbox/read-all", {}, f"/o/{tenant_a.slug}/inbox")
    link = viewer.get(poll, headers=on_inbox).get_data(as_text=True)
    assert _unread_badge(link) is None and 'aria-current="page"' in link
    # The count is the member's own: the editor, who wrote the mention, has nothing unread.
    assert editor.get(f"/o/{tenant_a.slug}/inbox/unread?since=0", headers=HX).status_code == 204


# --- isolation ----------------------------------------------------------------------------------------


def test_nobody_reaches_another_members_or_another_organisations_collaboration(
    app, tenant_a, tenant_b, make_client
):
    editor, viewer, b_owner = make_client(), make_client(), make_client()
    login(editor, "editor@a.example")
    login(viewer, "viewer@a.example")
    login(b_owner, "owner@b.example")
    url = new_journey(editor, tenant_a.slug)
    journey_id = int(url.rsplit("/", 1)[1])
    _comment(editor, url, "Alpha internal: @viewer@a.example")
    comment_id = _comment_ids(editor.get(f"{url}/comments").get_data(as_text=True))[0]
    inbox = viewer.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)
    notification_id = int(re.search(r'id="notification-(\d+)"', inbox).group(1))

    # Another member of A cannot mark the viewer's notification, nor see it.
    assert _post(editor, f"/o/{tenant_a.slug}/inbox/{notification_id}/read", {}, url).status_code == 404
    assert "Alpha internal" not in editor.get(f"/o/{tenant_a.slug}/inbox").get_data(as_text=True)

    # B, with B's own slug and A's ids, gets 404s and no text of A.
    b = f"/o/{tenant_b.slug}"
    home = f"{b}/"
    for method, path in (
        ("GET", f"{b}/journeys/{journey_id}/comments"),
        ("POST", f"{b}/journeys/{journey_id}/comments"),
        ("POST", f"{b}/journeys/{journey_id}/comments/{comment_id}/replies"),
        ("POST", f"{b}/journeys/{journey_id}/comments/{comment_id}/resolve"),
        ("GET", f"{b}/journeys/{journey_id}/share"),
        ("POST", f"{b}/journeys/{journey_id}/share"),
        ("POST", f"{b}/inbox/{notification_id}/read"),
    ):
        if method == "GET":
            response = b_owner.get(path)
        else:
            response = _post(b_owner, path, {"body": "B was here", "days": "3"}, home)
        assert response.status_code == 404, f"{method} {path}"
        assert "Alpha internal" not in response.get_data(as_text=True)
    assert "Alpha internal" not in b_owner.get(f"{b}/inbox").get_data(as_text=True)


# --- share links --------------------------------------------------------------------------------------


def test_a_share_link_shows_the_map_read_only_and_nothing_else(app, tenant_a, make_client):
    editor, stranger = make_client(), make_client()
    login(editor, "editor@a.example")
    url = new_journey(editor, tenant_a.slug, "Laptop onboarding")
    _comment(editor, url, "Internal only: budget is tight")
    created = _post(editor, f"{url}/share", {"days": "14", "label": "Steering committee"}, url, htmx=True)
    body = created.get_data(as_text=True)
    assert created.status_code == 200 and "shown only once" in body
    assert created.headers["Cache-Control"] == "no-store"
    link = _share_url(body)
    assert re.fullmatch(rf"http://localhost/share/{tenant_a.slug}/[A-Za-z0-9_-]{{43}}", link)
    path = link.removeprefix("http://localhost")

    shared = stranger.get(path)
    html = shared.get_data(as_text=True)
    assert shared.status_code == 200
    assert "<h1>Laptop onboarding</h1>" in html and "Shared read-only by Alpha Services" in html
    assert html.count('class="step') >= 6 and 'class="emotion-curve"' in html
    # Read-only: no forms of the editor, no polling of organisation URLs, no comments, no members.
    for absent in ("hx-post", "hx-get", "/o/", "Internal only", "editor@a.example", "Steering committee"):
        assert absent not in html, absent
    assert shared.headers["X-Robots-Tag"].startswith("noindex")
    assert shared.headers["Referrer-Policy"] == "no-referrer"
    assert shared.headers["Cache-Control"] == "no-store"

    # The editor sees the link listed (never the secret again) with when it was last opened.
    listing = editor.get(f"{url}/share").get_data(as_text=True)
    assert "Steering committee" in listing and path.rsplit("/", 1)[1] not in listing
    assert "never" not in listing


def test_revoked_expired_and_wrong_links_answer_404_with_a_clear_page(app, tenant_a, tenant_b, make_client):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import ShareLink
    from webapp.models.types import utcnow

    editor, stranger = make_client(), make_client()
    login(editor, "editor@a.example")
    url = new_journey(editor, tenant_a.slug)
    first = _share_url(_post(editor, f"{url}/share", {"days": "30"}, url).get_data(as_text=True))
    second = _share_url(_post(editor, f"{url}/share", {"days": "1"}, url).get_data(as_text=True))
    first_path, second_path = (u.removeprefix("http://localhost") for u in (first, second))
    assert stranger.get(first_path).status_code == stranger.get(second_path).status_code == 200

    listing = editor.get(f"{url}/share").get_data(as_text=True)
    link_ids = sorted({int(i) for i in re.findall(r"/share/(\d+)/revoke", listing)})
    assert len(link_ids) == 2
    revoked = _post(editor, f"{url}/share/{max(link_ids)}/revoke", {}, f"{url}/share")
    assert revoked.status_code == 302
    gone = stranger.get(second_path)
    assert gone.status_code == 404 and "withdrawn" in gone.get_data(as_text=True)
    assert (
        gone.headers["X-Robots-Tag"].startswith("noindex")
        and gone.headers["Referrer-Policy"] == "no-referrer"
    )

    with app.app_context():
        tenancy.activate(tenant_a.organisation_id)
        link = db.session.get(ShareLink, min(link_ids))
        link.expires_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
        db.session.remove()
    expired = stranger.get(first_path)
    assert expired.status_code == 404 and "expired on" in expired.get_data(as_text=True)

    secret = first_path.rsplit("/", 1)[1]
    for path in (
        f"/share/{tenant_a.slug}/not-a-real-secret",
        f"/share/{tenant_b.slug}/{secret}",  # A's secret under B's slug finds nothing
        f"/share/no-such-organisation/{secret}",
    ):
        response = stranger.get(path)
        assert response.status_code == 404 and "not valid" in response.get_data(as_text=True), path


def test_share_link_lifetime_is_1_to_90_days(app, tenant_a, client):
    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    for days in ("0", "91", "many"):
        refused = _post(client, f"{url}/share", {"days": days}, url, htmx=True)
        assert refused.status_code == 422 and "1 to 90" in refused.get_data(as_text=True), days
    made = _post(client, f"{url}/share", {"days": "90"}, url).get_data(as_text=True)
    assert "shown only once" in made


def test_a_journey_deleted_takes_its_comments_links_and_notifications(app, tenant_a, make_client):
    from webapp import tenancy
    from webapp.extensions import db
    from webapp.models import Comment, Notification, ShareLink
    from webapp.services import Actor, journeys

    editor = make_client()
    login(editor, "editor@a.example")
    url = new_journey(editor, tenant_a.slug)
    _comment(editor, url, "@viewer@a.example look")
    _post(editor, f"{url}/share", {"days": "5"}, url)
    with app.test_request_context():
        tenancy.activate(tenant_a.organisation_id)
        journeys.delete_journey(int(url.rsplit("/", 1)[1]), Actor(None))
        for model in (Comment, Notification, ShareLink):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == 0, model
        db.session.remove()


# --- mail -------------------------------------------------------------------------------------------


def test_a_mention_is_mailed_through_the_worker_when_smtp_is_set(
    app, tenant_a, client, redis_url, monkeypatch
):
    from redis import Redis
    from rq import Queue

    app.config["SMTP_URL"] = "smtp://mail.invalid:25"
    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    _comment(client, url, "Please look, @viewer@a.example.")
    jobs = Queue("default", connection=Redis.from_url(redis_url)).jobs
    assert [job.func_name for job in jobs] == ["worker.jobs.notifications.send_mention_mail"]
    notification_id, link = jobs[0].args
    assert re.fullmatch(rf"http://localhost{url}/comments#comment-\d+", link)

    sent = []
    from webapp import mail
    from worker.jobs.notifications import send_mention_mail

    monkeypatch.setattr(mail, "send", lambda *args: sent.append(args))
    with app.app_context():
        result = send_mention_mail(notification_id, link, organisation_id=tenant_a.organisation_id)
    assert result == "sent to viewer@a.example"
    (_, _, recipient, subject, body) = sent[0]
    assert recipient == "viewer@a.example" and subject == "editor@a.example mentioned you on Journeylens"
    assert "Please look, @viewer@a.example." in body and link in body and "Alpha Services" in body


# --- mention parsing ----------------------------------------------------------------------------------


def _person(user_id, email, display_name=""):
    return SimpleNamespace(id=user_id, email=email, display_name=display_name)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("@ann@a.example please", [(1, "@ann@a.example")]),
        ("Thanks @ANN@A.EXAMPLE.", [(1, "@ANN@A.EXAMPLE")]),
        ("@Ann Smith and @Ann", [(2, "@Ann Smith"), (3, "@Ann")]),
        ("@Annabel is not a member", []),
        ("write to bob@ann@a.example", []),
        ("@ann@a.example.org is someone else", []),
        ("@ann@a.example twice @ann@a.example", [(1, "@ann@a.example")]),
        ("(@ann), fine", [(3, "@ann")]),
        ("@ann@b.example is not ann", []),
    ],
)
def test_find_mentions(body, expected):
    from webapp.services.comments import find_mentions

    people = [
        _person(1, "ann@a.example"),
        _person(2, "smith@a.example", "Ann Smith"),
        _person(3, "x@a", "Ann"),
    ]
    assert [(m["user_id"], m["text"]) for m in find_mentions(body, people)] == expected


# --- the second wall ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_rls_alone_keeps_comments_notifications_and_share_links_apart(app, tenant_a, tenant_b, make_client):
    from webapp import tenancy
    from webapp.extensions import db

    editor = make_client()
    login(editor, "editor@a.example")
    url = new_journey(editor, tenant_a.slug)
    _comment(editor, url, "@viewer@a.example see this")
    _post(editor, f"{url}/share", {"days": "5"}, url)
    app.config["TENANT_ORM_SCOPING"] = False
    with app.app_context():
        tenancy.activate(tenant_b.organisation_id)
        for table in ("comments", "notifications", "share_links"):
            # Core SQL that forgets every filter still sees nothing of A.
            assert db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 0, table
        db.session.rollback()
        tenancy.activate(tenant_a.organisation_id)
        for table in ("comments", "notifications", "share_links"):
            assert db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar() == 1, table
        db.session.rollback()


def test_a_deleted_steps_threads_stay_and_come_back_with_undo(app, tenant_a, client):
    login(client, "editor@a.example")
    url = new_journey(client, tenant_a.slug)
    page = client.get(url).get_data(as_text=True)
    step = re.search(r'data-step-id="(\d+)" data-version="(\d+)"', page)
    step_id, version = int(step.group(1)), step.group(2)
    _comment(client, url, "Why do we need this step?", step_id=step_id)
    _post(client, f"{url}/steps/{step_id}/delete", {"expected_version": version}, url)
    html = client.get(f"{url}/comments").get_data(as_text=True)
    assert "since deleted" in html and "Why do we need this step?" in html
    _post(client, f"{url}/undo", {}, url)
    html = client.get(f"{url}/comments").get_data(as_text=True)
    assert "since deleted" not in html and f"#step-{step_id}" in html
