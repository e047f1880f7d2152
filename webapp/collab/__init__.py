"""Collaboration: comment threads and the inbox under /o/<slug>/, and public read-only share links.

`bp` nests under the organisation blueprint (the organisation and membership are resolved there);
`share_bp` is registered on the app, since a share link's visitor has no account.
"""

from flask import Blueprint

bp = Blueprint("collab", __name__)
share_bp = Blueprint("share", __name__)

from webapp.collab import views  # noqa: E402,F401
