"""The WSGI entry point for gunicorn: `webapp.wsgi:app`."""

import os

from webapp import create_app

app = create_app(env=os.environ.get("JOURNEYLENS_ENV"))
