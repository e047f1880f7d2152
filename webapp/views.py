"""Helpers shared by the thin views: the actor, role checks, page-or-fragment rendering."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import abort, flash, g, make_response, render_template, request
from flask_login import current_user

from webapp.models import Role
from webapp.services import Actor, ServiceError


def actor() -> Actor:
    """The signed-in user and their address, for services and the audit log."""
    identity = g.get("api_identity")  # an API call acts as its token's user
    if identity is not None:
        return Actor(identity.user.id, request.remote_addr)
    return Actor(current_user.id if current_user.is_authenticated else None, request.remote_addr)


def require_role(role: Role) -> Callable:
    """Refuse (403) members below `role` in the organisation in view."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any):
            membership = g.get("membership")
            if membership is None:
                abort(404)
            if not membership.role_enum.at_least(role):
                abort(403, description=f"This needs the {role.value} role; ask an admin of the organisation.")
            return view(*args, **kwargs)

        return wrapper

    return decorator


def render(template: str, fragment: str | None = None, **context: Any):
    """The full page, or only its fragment when htmx asks (HX-Request), never for a history restore
    (htmx then needs the whole page). Vary tells caches the two answers differ."""
    wants_fragment = request.headers.get("HX-Request") and not request.headers.get(
        "HX-History-Restore-Request"
    )
    body = render_template(fragment if fragment and wants_fragment else template, **context)
    response = make_response(body)
    response.vary.add("HX-Request")
    return response


def form_error(form, error: ServiceError) -> None:
    """Show a service's refusal next to its field, or as a flash message."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        flash(error.message, "error")
