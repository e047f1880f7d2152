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
    from webapp.extensions import login_manager
    from webapp.services.accounts import my_membership_by_slug

    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    slug = g.org_slug or ""
    # This runs before every page and every poll. A guess at the organisation (the id this slug had
    # before in this process) lets PostgreSQL learn user and organisation in one round trip; the guess
    # only widens what the next query may see to that organisation's rows, and that query is the
    # user's own membership by slug, which decides: no membership, 404.
    guess = _organisation_ids.get(slug)
    if guess is not None:
        tenancy.activate(guess, current_user.id)
    # One query for both the organisation and the user's role there.
    membership = my_membership_by_slug(slug, current_user.id)
    if membership is None:
        abort(404)
    if len(_organisation_ids) >= 10_000:
        _organisation_ids.clear()
    _organisation_ids[slug] = membership.organisation_id
    tenancy.activate(membership.organisation_id, current_user.id)  # nothing more to send if guessed right
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
