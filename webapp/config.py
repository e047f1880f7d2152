"""Settings from the environment, read once, one class per environment."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = Path(os.environ.get("JOURNEYLENS_INSTANCE", PROJECT_ROOT / "instance"))


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _local_secret_key() -> str:
    """A secret generated once into instance/ so a local run keeps its sessions across restarts."""
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _default_database_url() -> str:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'journeylens.db'}"


class Config:
    """Local run defaults: SQLite under instance/, embedded Redis, insecure cookies allowed on http."""

    ENV_NAME = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY") or None
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or None
    # Migrations run as the table owner; the app may connect as a role that RLS applies to.
    DATABASE_MIGRATION_URL = os.environ.get("DATABASE_MIGRATION_URL") or None
    DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "journeylens_app")
    # No pool_pre_ping: webapp/database.py checks a pooled connection without a round trip.
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    REDIS_URL = os.environ.get("REDIS_URL") or None
    SMTP_URL = os.environ.get("SMTP_URL") or None
    MAIL_FROM = os.environ.get("MAIL_FROM", "Journeylens <no-reply@journeylens.example>")
    PUBLIC_URL = os.environ.get("PUBLIC_URL") or None
    SOURCE_URL = os.environ.get("SOURCE_URL", "https://github.com/journeylens/journeylens")
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", False)
    SESSION_IDLE_TIMEOUT = timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "120")))
    PERMANENT_SESSION_LIFETIME = timedelta(days=14)
    # The cookie is signed and sent again only when the session changes (at most once a minute, when the
    # idle check moves "seen"), not on every answer: the live polls would otherwise re-sign it each time.
    SESSION_REFRESH_EACH_REQUEST = False
    WTF_CSRF_TIME_LIMIT = None  # the session's own expiry bounds the token
    RATELIMIT_ENABLED = _bool("RATELIMIT_ENABLED", True)
    RATELIMIT_LOGIN_PER_IP = os.environ.get("RATELIMIT_LOGIN_PER_IP", "20 per minute")
    # Per account: at most 100 passwords tried an hour, whatever the number of addresses trying.
    RATELIMIT_LOGIN_PER_EMAIL = os.environ.get("RATELIMIT_LOGIN_PER_EMAIL", "5 per minute;100 per hour")
    RATELIMIT_SIGNUP_PER_IP = os.environ.get("RATELIMIT_SIGNUP_PER_IP", "10 per hour")
    RATELIMIT_HEADERS_ENABLED = True
    # While Redis is away the limits are counted in each process's memory (never a 500, never unlimited).
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = True
    # argon2id as OWASP's first recommended option (46 MiB, 1 pass, 1 lane): 64 MiB x 3 passes cost 160 ms
    # of CPU per login, which a 2-core web tier feels under load. Not the 19 MiB x 2 option: glibc keeps a
    # freed block that size in the heap, and every web worker stayed 30 MiB bigger; 46 MiB is mapped and
    # given back. Hashes made with other figures still verify and are upgraded at the next login (README,
    # "Decisions worth knowing").
    ARGON2_TIME_COST = int(os.environ.get("ARGON2_TIME_COST", "1"))
    ARGON2_MEMORY_COST_KIB = int(os.environ.get("ARGON2_MEMORY_COST_KIB", "47104"))
    INVITATION_TTL = timedelta(days=7)
    MAX_CONTENT_LENGTH = int(os.environ.get("MAX_FORM_BYTES", str(2 * 1024 * 1024)))
    # How many reverse proxies in front set X-Forwarded-For/-Proto/-Host (0: trust none of them).
    TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
    STORAGE_URL = os.environ.get("STORAGE_URL") or None  # file:///path or s3://bucket/prefix
    S3_ENDPOINT_URL = os.environ.get("S3_ENDPOINT_URL") or None
    MAX_UPLOAD_BYTES = int(os.environ.get("MAX_UPLOAD_BYTES", str(1024**3)))
    # A run whose heartbeat is older than this is re-driven or failed by the reconciler, which sweeps
    # every RECONCILE_EVERY_S: a killed worker is noticed within stale + sweep (< 60 s by default).
    MINING_HEARTBEAT_STALE_S = int(os.environ.get("MINING_HEARTBEAT_STALE_S", "30"))
    RECONCILE_EVERY_S = int(os.environ.get("RECONCILE_EVERY_S", "10"))
    # How often a worker's scheduler looks for due recurring jobs (weekly digests, the goals' daily sweep).
    SCHEDULE_EVERY_S = int(os.environ.get("SCHEDULE_EVERY_S", "60"))
    # The worker and its jobs run this much nicer (and so does its autogroup, see worker/__main__.py), so
    # on a machine shared with the web processes a mining run takes the CPU the pages leave (web p95
    # otherwise degrades ~6-10x on 2 cores while 1M events are mined; bench/RESULTS.md, Load). 0: as is.
    WORKER_NICE = int(os.environ.get("WORKER_NICE", "10"))
    # And on Linux the SCHED_IDLE policy: a waking web thread preempts a mining one at once (see
    # worker/__main__.py); the worker keeps its autogroup's share, so it is slowed, not starved.
    WORKER_SCHED_IDLE = _bool("WORKER_SCHED_IDLE", True)
    # And a mining horse is paused while other processes use the CPU (worker/governor.py): SCHED_IDLE
    # keeps it off the web's CPUs but not off their caches. It still gets WORKER_YIELD_FLOOR of the
    # time however busy the machine is. Turn it off where the worker has CPUs of its own.
    WORKER_YIELD_CPU = _bool("WORKER_YIELD_CPU", True)
    WORKER_YIELD_FLOOR = float(os.environ.get("WORKER_YIELD_FLOOR", "0.05"))
    TENANT_ORM_SCOPING = True  # the first wall; tests switch it off to prove RLS holds alone

    def __init__(self) -> None:
        if not self.SECRET_KEY:
            self.SECRET_KEY = _local_secret_key()
        if not self.SQLALCHEMY_DATABASE_URI:
            self.SQLALCHEMY_DATABASE_URI = _default_database_url()
        if not self.STORAGE_URL:
            self.STORAGE_URL = f"file://{INSTANCE_DIR / 'uploads'}"
        if not self.DATABASE_MIGRATION_URL:
            self.DATABASE_MIGRATION_URL = self.SQLALCHEMY_DATABASE_URI


class ProductionConfig(Config):
    """Production: secrets and servers must come from the environment; cookies only over HTTPS."""

    ENV_NAME = "production"
    SESSION_COOKIE_SECURE = _bool("SESSION_COOKIE_SECURE", True)

    def __init__(self) -> None:
        if not os.environ.get("SECRET_KEY"):
            raise RuntimeError("SECRET_KEY must be set in production")
        super().__init__()


class TestConfig(Config):
    """Tests: cheap password hashing and no rate limits unless a test turns them on."""

    ENV_NAME = "test"
    TESTING = True
    RATELIMIT_ENABLED = False
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST_KIB = 1024
    WORKER_YIELD_CPU = False  # a test run keeps the machine busy; the governor's own tests turn it on


CONFIGS = {"development": Config, "production": ProductionConfig, "test": TestConfig}


def load_config(name: str | None = None) -> Config:
    """The config object for JOURNEYLENS_ENV (or `name`)."""
    name = name or os.environ.get("JOURNEYLENS_ENV", "development")
    return CONFIGS[name]()
