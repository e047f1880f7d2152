"""Everything under /o/<org_slug>/: the organisation's pages, members, invitations, tokens, settings, audit.

The organisation is resolved once per request here: a visitor who is not a member gets the same 404 as
for an organisation that does not exist.
"""

from flask import Blueprint, abort, g
from flask_login import current_user

from webapp import tenancy

bp = Blueprint("orgs", __name__, url_prefix="/o/<org_slug>")


@bp.url_value_preprocessor
def _pull_slug(endpoint, values):
    g.org_slug = values.pop("org_slug", None) if values else None


@bp.url_defaults
def _add_slug(endpoint, values):
    if "org_slug" not in values and g.get("org_slug"):
        values["org_slug"] = g.org_slug


@bp.before_request
def _resolve_organisation():
    from webapp import security
    from webapp.extensions import login_manager
    from webapp.services.accounts import my_membership_by_slug

    # This runs before every page and every poll, so it costs one query: the user's own membership
    # by slug, with the user and the organisation. The session's signed claim names the user; the
    # user's session version, loaded with the membership, confirms it (as the user loader would).
    claimed = security.claimed_user()
    if claimed is None:
        return login_manager.unauthorized()
    user_id, version = claimed
    slug = g.org_slug or ""
    # A guess at the organisation (the id this slug had before in this process) lets PostgreSQL learn
    # user and organisation in one round trip; it only widens what the next query may see to that
    # organisation's rows, and that query is the user's own membership, which decides.
    tenancy.activate(_organisation_ids.get(slug), user_id)
    membership = my_membership_by_slug(slug, user_id)
    if membership is None or not security.session_holds(membership.user, version):
        tenancy.activate(None, None)
        if not current_user.is_authenticated:  # the user loader's own verdict (revoked, deleted)
            return login_manager.unauthorized()
        tenancy.activate(None, current_user.id)
        abort(404)
    security.accept_user(membership.user)
    if len(_organisation_ids) >= 10_000:
        _organisation_ids.clear()
    _organisation_ids[slug] = membership.organisation_id
    tenancy.activate(membership.organisation_id, user_id)  # nothing more to send if guessed right
    g.organisation, g.membership = membership.organisation, membership


_organisation_ids: dict[str, int] = {}  # slug -> organisation id, as last seen by this process


from webapp.eventlogs import bp as _eventlogs_bp  # noqa: E402
from webapp.orgs import views  # noqa: E402,F401

bp.register_blueprint(_eventlogs_bp)
from webapp.journeys import bp as _journeys_bp  # noqa: E402

bp.register_blueprint(_journeys_bp)
from webapp.collab import bp as _collab_bp  # noqa: E402

bp.register_blueprint(_collab_bp)
from webapp.overlay import bp as _overlay_bp  # noqa: E402

bp.register_blueprint(_overlay_bp)
from webapp.goals import bp as _goals_bp  # noqa: E402

bp.register_blueprint(_goals_bp)
from webapp.dashboard import bp as _dashboard_bp  # noqa: E402

bp.register_blueprint(_dashboard_bp)
