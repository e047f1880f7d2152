"""Gunicorn settings for Journeylens (used by infra/Dockerfile and infra/Procfile)."""

import gc
import multiprocessing
import os
import re

from gunicorn.glogging import Logger

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"

# WEB_CONCURRENCY wins when set; otherwise 2 * cores + 1, capped at 8.
workers = int(os.environ.get("WEB_CONCURRENCY") or min(2 * multiprocessing.cpu_count() + 1, 8))
threads = 2
timeout = 60
graceful_timeout = 30

accesslog = "-"
errorlog = "-"


class RedactingLogger(Logger):
    """The access log without the secrets some URLs carry: invitation links (/join/<org>/<secret>) and
    share links (/share/<org>/<token>), in the request line and in the Referer; nor credentials."""

    SECRET_IN_PATH = re.compile(r"(/(?:join|share)/[^/\s?#]+/)[^/\s?#]+")
    SECRET_HEADERS = ("{authorization}i", "{cookie}i", "{x-csrftoken}i", "{set-cookie}o")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "f", "{referer}i"):
            if isinstance(atoms.get(key), str):
                atoms[key] = self.SECRET_IN_PATH.sub(r"\1[redacted]", atoms[key])
        for key in self.SECRET_HEADERS:
            if key in atoms:
                atoms[key] = "[redacted]"
        return atoms


logger_class = RedactingLogger

# Proxies trusted for X-Forwarded-* headers: a comma-separated list of IPs, or "*"
# only when the container is reachable solely through the proxy.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

# Worker heartbeat files on tmpfs: avoids stalls on overlay filesystems in containers.
SHM = "/dev/shm"  # noqa: S108 -- only gunicorn's own heartbeat files go here
if os.path.isdir(SHM):
    worker_tmp_dir = SHM


def post_worker_init(worker):
    """The app is loaded: move its long-lived objects (modules, models, mappers) out of the garbage
    collector's sight, so a full collection no longer walks them in the middle of a request (it was the
    p95 tail of the big journey and dashboard pages, see bench/RESULTS.md)."""
    gc.freeze()
