"""PDF/PNG export jobs as the web process sees them: fetch one job of this organisation, read its state
from the job's meta, hand out the stored file. Shared by the journey map and the dashboard exports.

The RQ job's meta is the record (its organisation, format, phase, progress, and the storage key of the
file or why it failed), written by worker/jobs/exports.py. A job is only shown when its function and
organisation (and whatever else the caller checks) match: a foreign, mismatched or missing job all give
the same None, which views turn into the same 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rq.exceptions import DeserializationError, NoSuchJobError
from rq.job import Job

from webapp import queue

FORMATS = {"pdf": ("application/pdf", "PDF"), "png": ("image/png", "PNG")}
EXPORT_TIMEOUT_S = 180
JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
ACTIVE = {"queued", "started", "deferred", "scheduled"}


def fetch(
    job_id: str, func_name: str, organisation_id: int, belongs: Callable[[Job], bool] = lambda job: True
) -> Job | None:
    """The export job `job_id` if it runs `func_name` for this organisation and `belongs`, else None."""
    if not JOB_ID.fullmatch(job_id):
        return None
    try:
        job = Job.fetch(job_id, connection=queue.redis_connection())
        ours = (
            job.func_name == func_name
            and (job.meta or {}).get("organisation_id") == organisation_id
            and belongs(job)
        )
    except (NoSuchJobError, DeserializationError):
        return None
    return job if ours else None


def state(job: Job, default_format: str = "pdf") -> dict:
    """What the widget shows: queued, running, done (with the file) or failed (with the reason)."""
    meta = job.meta or {}
    status = job.get_status(refresh=False)
    status = getattr(status, "value", status)
    fmt = meta.get("format") or default_format
    export = {
        "job_id": job.id,
        "format": fmt,
        "label": FORMATS.get(fmt, ("", fmt.upper()))[1],
        "phase": meta.get("phase") or "waiting",
        "progress": int(meta.get("progress") or 0),
        "error": meta.get("error"),
        "size_bytes": meta.get("size_bytes"),
    }
    if status == "finished" and meta.get("storage_key"):
        export["state"] = "done"
    elif status in ACTIVE and not meta.get("error"):
        export["state"] = "queued" if status != "started" else "running"
    else:
        export["state"] = "failed"
        if not export["error"]:
            export["error"] = (
                "The export stopped before it finished (the worker may have been restarted). Try again."
            )
    return export


def queue_unavailable(fmt: str) -> dict:
    """The widget's state when Redis cannot be reached, so nothing was queued."""
    return {
        "job_id": "",
        "format": fmt,
        "label": FORMATS[fmt][1],
        "state": "failed",
        "error": "The background queue (Redis) cannot be reached, so nothing was exported. "
        "Try again in a minute; if it persists, tell an administrator.",
    }


def stored_file(job: Job, organisation_id: int) -> bytes | None:
    """The bytes of a finished export of this organisation, or None (not done, elsewhere, or gone)."""
    key = (job.meta or {}).get("storage_key") or ""
    if state(job)["state"] != "done" or not key.startswith(f"org-{organisation_id}/exports/"):
        return None
    from webapp.storage import get_storage

    try:
        with get_storage().local_path(key) as path:
            return path.read_bytes()
    except FileNotFoundError:
        return None
