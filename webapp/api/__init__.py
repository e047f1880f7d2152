"""/api/v1/: JSON only, bearer tokens only (no cookies, so no CSRF)."""

from flask import Blueprint, g, request

from webapp.errors import api_error
from webapp.extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

PUBLIC_ENDPOINTS = {"api.openapi"}


@bp.before_request
def _authenticate():
    """Every call but the OpenAPI document needs `Authorization: Bearer <token>`."""
    from webapp.services import tokens

    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    scheme, _, value = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return api_error(401, "Send an API token as 'Authorization: Bearer <token>'.")
    identity = tokens.authenticate(value.strip())
    if identity is None:
        return api_error(401, "This API token is not valid (revoked, or its owner left the organisation).")
    g.api_identity = identity
    g.organisation, g.membership = identity.organisation, identity.membership
    return None


from webapp.api import goals, journeys, overlay, views  # noqa: E402,F401
