"""Journey map exports: the map a user sees, rendered on the server by headless Chromium as PDF or PNG.

`render_html` and `_Progress` are shared with the dashboard's export (worker/jobs/dashboard.py).

The job draws the board itself with Flask's render_template (the print view, journeys/print.html, with
the app's CSS read from disk into a <style> tag), so the worker needs neither a login nor an HTTP round
trip. Chromium loads that HTML with set_content, offline and with every request refused, then prints a
PDF (A3 landscape, scaled down to fit a wide map) or takes a full-page PNG screenshot.

The file goes to storage under org-<id>/exports/. The RQ job's meta is what the web widget polls: the
journey and format, the phase and progress, and when done the storage key (or, when failed, why).
"""

from __future__ import annotations

import io
import logging
import os
import shutil
from functools import cache
from pathlib import Path
from typing import Any

from rq import get_current_job

from webapp import tenancy
from webapp.extensions import db
from webapp.storage import get_storage
from worker.jobs import tenant_job

log = logging.getLogger(__name__)

FORMATS = {"pdf": "application/pdf", "png": "image/png"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DEFAULT_CHROMIUM = "/usr/bin/chromium"
STYLESHEETS = ("vendor/pico/pico.min.css", "css/app.css", "css/journey.css")
EXPORT_LIMIT_BYTES = 200 * 1024 * 1024
# Landscape widths less 10 mm margins, in CSS pixels at 96 per inch (A3: 400 mm = 1,512 px).
PRINTABLE_WIDTH_PX = {"A3": 400 / 25.4 * 96, "A4": 277 / 25.4 * 96}
MIN_PDF_SCALE = 0.1  # Chromium's lower bound
VIEWPORT = {"width": 1400, "height": 900}
MAX_PNG_WIDTH_PX = 16_000  # past this Chromium cannot capture in one piece
BROWSER_TIMEOUT_MS = 60_000


class ExportFailed(Exception):
    """An export that cannot succeed as things are; the message says what to do."""


def chromium_path() -> str | None:
    """Chromium's executable (CHROMIUM_PATH, else Debian's), or None when it is not installed."""
    configured = os.environ.get("CHROMIUM_PATH")
    candidates = [configured] if configured else [DEFAULT_CHROMIUM, shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_chromium_message() -> str:
    where = os.environ.get("CHROMIUM_PATH") or DEFAULT_CHROMIUM
    return (
        f"Chromium is not installed on the worker (nothing at {where}), so maps cannot be exported as "
        "PDF or PNG. An administrator should install Debian's chromium on every worker machine "
        "(`make browser`) or set CHROMIUM_PATH, then try again."
    )


class _Progress:
    """The job's meta as the widget reads it (a plain dict when the job runs outside RQ)."""

    def __init__(self, journey_id: int | None, fmt: str, **what: Any) -> None:
        self.job = get_current_job()
        self.meta: dict[str, Any] = self.job.meta if self.job is not None else {}
        # Written here as well as by the web process: the worker's copy of the meta must carry them.
        if journey_id is not None:
            what["journey_id"] = journey_id
        self.meta.update(format=fmt, error=None, **what)

    @property
    def job_id(self) -> str:
        return self.job.id if self.job is not None else "direct"

    def __call__(self, phase: str, percent: int, **extra: Any) -> None:
        self.meta.update(phase=phase, progress=percent, **extra)
        if self.job is not None:
            self.job.save_meta()


@tenant_job
def render_journey(journey_id: int, fmt: str, requested_by: int | None = None) -> str:
    """Render a journey map to PDF or PNG in storage; returns the storage key."""
    progress = _Progress(journey_id, fmt)
    organisation_id = tenancy.current().organisation_id
    try:
        if fmt not in FORMATS:
            raise ExportFailed(f"Unknown export format {fmt!r}; choose PDF or PNG.")
        progress("drawing the map", 5)
        html, title = print_html(journey_id)
        data = render_html(html, fmt, progress)
        progress("saving", 90)
        key = f"org-{organisation_id}/exports/journey-{journey_id}-{progress.job_id}.{fmt}"
        stored = get_storage().save(key, io.BytesIO(data), EXPORT_LIMIT_BYTES)
        progress("done", 100, storage_key=key, size_bytes=stored.size_bytes, title=title)
        log.info("exported journey %s as %s (%s bytes) for user %s", journey_id, fmt, len(data), requested_by)
        return key
    except ExportFailed as error:
        progress("failed", 100, error=str(error))
        raise
    except Exception as error:
        log.exception("export of journey %s as %s failed", journey_id, fmt)
        progress(
            "failed",
            100,
            error=f"The export failed ({type(error).__name__}: {_first_line(error)}). Try again; if it "
            "keeps failing, an administrator will find the details in the worker's log.",
        )
        raise


# --- the print view ------------------------------------------------------------------------------------


@cache
def _stylesheets(static_folder: str, names: tuple[str, ...] = STYLESHEETS) -> str:
    """The app's CSS, read once per process (a file rendered locally by Chromium: no CSP applies)."""
    return "\n".join((Path(static_folder) / name).read_text(encoding="utf-8") for name in names)


def print_html(journey_id: int) -> tuple[str, str]:
    """The print view of a journey (the board a viewer sees, read only) and the journey's title.

    Runs in the job's app context with its tenant; a request context gives url_for and the templates'
    globals what they expect, as if a viewer of the organisation had opened the page.
    """
    from flask import current_app, g, render_template
    from markupsafe import Markup

    from webapp.journeys.views import CHANNELS, NOTE_KINDS
    from webapp.models import Organisation, Role
    from webapp.models.types import utcnow
    from webapp.services import NotFound, journeys

    try:
        board = journeys.board(journey_id)
    except NotFound:
        raise ExportFailed("This journey no longer exists (it was deleted), so there is nothing to export.")
    organisation = db.session.get(Organisation, board.journey.organisation_id)
    base_url = current_app.config.get("PUBLIC_URL") or "http://localhost/"
    with current_app.test_request_context("/", base_url=base_url):
        g.org_slug = organisation.slug
        html = render_template(
            "journeys/print.html",
            board=board,
            since=0,
            channels=CHANNELS,
            note_kinds=NOTE_KINDS,
            current_role=Role.VIEWER,  # read only: no editing tools on paper
            organisation=organisation,
            exported_at=utcnow(),
            styles=Markup(_stylesheets(current_app.static_folder)),  # noqa: S704 (our own files)
        )
    return html, board.journey.title


# --- Chromium ------------------------------------------------------------------------------------------


def render_html(html: str, fmt: str, progress=None, *, paper: str = "A3") -> bytes:
    """PDF (`paper` landscape) or PNG bytes of an HTML document, rendered by headless Chromium with no
    network."""
    progress = progress or (lambda *_args, **_kwargs: None)
    path = chromium_path()
    if path is None:
        raise ExportFailed(missing_chromium_message())
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise ExportFailed(
            "Playwright is not installed on the worker, so maps cannot be exported as PDF or PNG. An "
            "administrator should install it in the worker's environment (pip install playwright)."
        )
    progress("starting the browser", 15)
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=path, headless=True, args=CHROMIUM_ARGS, timeout=BROWSER_TIMEOUT_MS
            )
        except PlaywrightError as error:
            raise ExportFailed(
                f"Chromium at {path} did not start ({_first_line(error)}). An administrator should "
                "reinstall Debian's chromium (`make browser`) or point CHROMIUM_PATH at a working one."
            )
        try:
            return _render(browser, html, fmt, progress, paper)
        finally:
            browser.close()


def _render(browser, html: str, fmt: str, progress, paper: str = "A3") -> bytes:
    context = browser.new_context(
        viewport=VIEWPORT, device_scale_factor=1, java_script_enabled=False, offline=True
    )
    try:
        context.route("**/*", lambda route: route.abort())  # nothing leaves the worker
        page = context.new_page()
        page.set_default_timeout(BROWSER_TIMEOUT_MS)
        progress("laying out the map", 35)
        page.set_content(html, wait_until="load")
        width = _content_width(page)
        if fmt == "pdf":
            progress("printing the PDF", 60)
            scale = max(MIN_PDF_SCALE, min(1.0, PRINTABLE_WIDTH_PX[paper] / width))
            return page.pdf(
                format=paper,
                landscape=True,
                print_background=True,
                scale=round(scale, 3),
                margin={"top": "10mm", "bottom": "10mm", "left": "10mm", "right": "10mm"},
            )
        progress("taking the picture", 60)
        page.set_viewport_size(
            {"width": min(MAX_PNG_WIDTH_PX, max(VIEWPORT["width"], width)), "height": VIEWPORT["height"]}
        )
        return page.screenshot(full_page=True, type="png")
    finally:
        context.close()


def _content_width(page) -> int:
    """How wide the map is laid out (a wide board overflows the viewport)."""
    box = page.locator("body").bounding_box() or {}
    board_locator = page.locator("table.board")
    board = (board_locator.bounding_box() if board_locator.count() else None) or {}  # a page without a map
    widths = [box.get("width", 0), board.get("x", 0) + board.get("width", 0) + 24]
    return max(1, int(max(widths)))


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else type(error).__name__
