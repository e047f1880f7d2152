"""Template globals: the organisation in view, the user's other organisations, the source link."""

from __future__ import annotations

from flask import Flask, current_app, g
from flask_login import current_user

from webapp.models import Role


def init_app(app: Flask) -> None:
    """Context available to every template."""

    @app.context_processor
    def _globals():
        membership = g.get("membership")
        return {
            "current_org": g.get("organisation"),
            "current_membership": membership,
            "current_role": membership.role_enum if membership else None,
            "Role": Role,
            "my_memberships": _LazyMemberships(),
            "source_url": current_app.config["SOURCE_URL"],
        }

    @app.template_filter("dt")
    def _format_datetime(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


class _LazyMemberships:
    """The user's organisations for the switcher in the page's top bar, queried only when a template
    uses them: an htmx fragment (a board poll, a status widget) has no top bar and skips the query."""

    def _load(self) -> list:
        return _my_memberships()

    def __iter__(self):
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __bool__(self) -> bool:
        return bool(self._load())


def _my_memberships():
    if not current_user.is_authenticated:
        return []
    cached = g.get("my_memberships")
    if cached is None:
        from webapp.services.accounts import memberships_of

        cached = g.my_memberships = memberships_of(current_user)
    return cached
