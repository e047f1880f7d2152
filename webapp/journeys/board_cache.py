"""The drawn board of a journey, shared in Redis by everyone who has that journey open.

A map is read far more often than it changes: each viewer opens it and polls it, and one edit sends
every open copy to fetch the new board. The board's HTML depends only on the journey's content, which
moves on with every recorded change (the same marker the live poll compares), and on whether the
reader may edit it. So the HTML is kept under a key made of those, and the first reader after a change
draws it for the others. Nothing is ever invalidated: a change makes a new key; old ones expire.

The key also holds what makes one journey's id mean another journey elsewhere (the organisation, the
journey's creation instant, which differ between two databases that reuse ids), the organisation's slug
and the script root (both in the board's links) and a digest of the templates that draw it (a deploy
with new templates never reads the old HTML). Redis being away only costs the drawing: the board is
drawn as if nothing were cached, and Redis is not asked again for a while.
"""

from __future__ import annotations

import hashlib
import time

from flask import current_app
from markupsafe import Markup
from redis.exceptions import RedisError

from webapp import queue

TEMPLATES = ("journeys/_board.html", "journeys/_step.html", "journeys/_emotion_curve.html")
TTL_S = 600
PAUSE_AFTER_FAILURE_S = 15.0
_paused_until = 0.0


def board_html(*, organisation, journey, marker: int, can_edit: bool, script_root: str, draw) -> Markup:
    """The board's HTML from the cache, or `draw()` (which returns it) stored for the next reader."""
    key = _key(organisation, journey, marker, can_edit, script_root)
    redis = _redis() if key else None
    if redis is not None:
        try:
            cached = redis.get(key)
        except RedisError:
            _pause()
            cached = redis = None
        if cached is not None:
            # HTML our templates drew (escaped there); Redis is as trusted as the job queue it also holds.
            return Markup(cached.decode("utf-8"))  # noqa: S704
    html = draw()
    if redis is not None:
        try:
            redis.set(key, html.encode("utf-8"), ex=TTL_S)
        except RedisError:
            _pause()
    return Markup(html)  # noqa: S704 - the template's escaped output


def _key(organisation, journey, marker: int, can_edit: bool, script_root: str) -> str | None:
    digest = _templates_digest()
    if digest is None:
        return None
    created = journey.created_at.timestamp() if journey.created_at else 0
    return (
        f"journeylens:board:{digest}:{organisation.id}:{organisation.slug}:{script_root}:"
        f"{journey.id}:{created:.6f}:{marker}:{'edit' if can_edit else 'read'}"
    )


def _templates_digest() -> str | None:
    """A digest of the board's templates, once per app; None (no caching) while templates reload."""
    app = current_app
    if app.debug or app.config.get("TEMPLATES_AUTO_RELOAD") or not app.config.get("BOARD_CACHE", True):
        return None
    digest = app.extensions.get("journeylens_board_digest")
    if digest is None:
        sources = hashlib.sha256()
        for name in TEMPLATES:
            source, _filename, _uptodate = app.jinja_env.loader.get_source(app.jinja_env, name)
            sources.update(source.encode("utf-8"))
        digest = app.extensions["journeylens_board_digest"] = sources.hexdigest()[:16]
    return digest


def _redis():
    if time.monotonic() < _paused_until:
        return None
    try:
        return queue.redis_connection()
    except queue.RedisNotConfigured:
        return None


def _pause() -> None:
    """Redis failed: draw boards without it for a while rather than wait for it on every page."""
    global _paused_until
    _paused_until = time.monotonic() + PAUSE_AFTER_FAILURE_S
    current_app.logger.warning("board cache: Redis unavailable, drawing boards uncached for a while")
