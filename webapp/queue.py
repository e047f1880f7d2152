"""The Redis connection and the named queues, built in one place; jobs are enqueued by dotted path
so the web process never imports worker code (nor pm4py)."""

from __future__ import annotations

from typing import Any

from flask import current_app
from redis import Redis
from rq import Queue, Retry

QUEUE_NAMES = ("mining", "default")  # in priority order for a worker: heavy mining first, then light jobs
DEFAULT_TIMEOUT_S = 600
GAVE_WAY_TTL_S = 600  # the governor refreshes it every second while it pauses a horse


def gave_way_key(job_id: str) -> str:
    """The Redis hash where a worker's governor tells how long a mining job has given way to the site
    (paused_s, elapsed_s, paused: worker/governor.py)."""
    return f"journeylens:gave-way:{job_id}"


class RedisNotConfigured(RuntimeError):
    """No REDIS_URL: background work cannot be queued."""


def redis_connection(url: str | None = None) -> Redis:
    """A Redis client for REDIS_URL (one per app, cached on the app)."""
    if url is None:
        cached = current_app.extensions.get("journeylens_redis")
        if cached is not None:
            return cached
        url = current_app.config.get("REDIS_URL")
        if not url:
            raise RedisNotConfigured("REDIS_URL is not set; start Redis or use `make run`, which embeds one.")
        connection = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)
        current_app.extensions["journeylens_redis"] = connection
        return connection
    return Redis.from_url(url, socket_connect_timeout=2, socket_timeout=10)


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """The named queue."""
    if name not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=connection or redis_connection())


def enqueue(
    queue_name: str,
    dotted_path: str,
    *args: Any,
    organisation_id: int | None,
    description: str = "",
    job_timeout: int = DEFAULT_TIMEOUT_S,
    retries: int = 2,
    job_id: str | None = None,
):
    """Put a job on a queue with explicit timeouts, retry policy and the tenant in its meta."""
    return get_queue(queue_name).enqueue(
        dotted_path,
        *args,
        job_id=job_id,
        description=description or dotted_path,
        job_timeout=job_timeout,
        result_ttl=24 * 3600,
        failure_ttl=7 * 24 * 3600,
        retry=Retry(max=retries, interval=[5, 30]) if retries else None,
        meta={"organisation_id": organisation_id},
    )
