"""API endpoints."""

from __future__ import annotations

from flask import g, request

from webapp.api import bp
from webapp.api.openapi import document


@bp.get("/me")
def me():
    """Who the token speaks for."""
    identity = g.api_identity
    return {
        "user": {"email": identity.user.email},
        "organisation": {"slug": identity.organisation.slug, "name": identity.organisation.name},
        "role": identity.membership.role,
    }


@bp.get("/openapi.json")
def openapi():
    """The OpenAPI document of this API."""
    return document(request.host_url)
