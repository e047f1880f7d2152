"""Guessing passwords: at most 100 wrong passwords evaluated per account per hour (from any number of
addresses), 429 per address beyond its limit, the right password working again once the window has
passed, every evaluated failure audited, and no password or token in any log: the app's, gunicorn's
(its access log on, as in production) and the worker's.

The limits live in Redis (flask-limiter, fixed windows). A window passing is simulated by deleting that
window's counters, which is what their expiry does.
"""

from __future__ import annotations

import logging
import time

import pytest
import requests
import sqlalchemy as sa
from redis import Redis

from tests.integration.test_worker import smtp_recorder  # noqa: F401  (fixture)
from tests.servers import rq_worker, stack_env, web_server
from tests.support import PASSWORD, csrf_token, login
from tests.web.test_isolation_matrix import world  # noqa: F401  (fixture)


@pytest.fixture
def limited(app, app_config):
    """A client of an app with the production rate limits on, and the Redis that holds the counters."""
    from webapp import create_app

    limited_app = create_app({**app_config, "RATELIMIT_ENABLED": True}, env="test")
    return limited_app.test_client(), Redis.from_url(app_config["REDIS_URL"])


def _window_passes(redis: Redis, period: str) -> None:
    """What the expiry of the limiter's counters for `period` (minute, hour) does."""
    keys = [k for k in redis.scan_iter("LIMITS:*") if k.decode().endswith(f"/1/{period}")]
    assert keys, f"no {period} counters: is the limit still in Redis?"
    redis.delete(*keys)


def _attempt(client, email: str, password: str, ip: str):
    environ = {"REMOTE_ADDR": ip}
    page = client.get("/login", environ_base=environ)
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(page.get_data(as_text=True))},
        environ_base=environ,
    )


def _audited_failures(app_config, organisation_id: int) -> list[tuple]:
    engine = sa.create_engine(app_config["DATABASE_MIGRATION_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT target, ip_address, CAST(details AS TEXT) FROM audit_events "
                "WHERE action = 'login.failed' AND organisation_id = :org"
            ),
            {"org": organisation_id},
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_at_most_100_wrong_passwords_per_account_per_hour(limited, tenant_a, app_config, make_client):
    client, redis = limited
    email = tenant_a.emails["editor"]
    evaluated = 0
    first_minute = []
    for minute in range(30):  # 30 minutes of 6 guesses each, every guess from another address
        for guess in range(6):
            response = _attempt(client, email, f"wrong guess {minute}-{guess}", f"10.0.{minute}.{guess}")
            assert response.status_code in (401, 429), response.status_code
            evaluated += response.status_code == 401
            if minute == 0:
                first_minute.append(response.status_code)
        _window_passes(redis, "minute")
    assert first_minute == [401] * 5 + [429]  # 5 a minute
    assert evaluated == 100  # and 100 an hour
    # For the rest of the hour the account is closed to everyone, the right password included.
    closed = _attempt(client, email, PASSWORD, "10.9.9.9")
    assert closed.status_code == 429 and "Too many attempts" in closed.get_data(as_text=True)
    assert int(closed.headers["Retry-After"]) > 0
    # Each evaluated failure is in the audit log of the account's organisation, without the password.
    audited = _audited_failures(app_config, tenant_a.organisation_id)
    assert len(audited) == 100
    assert {target for target, _, _ in audited} == {email}
    assert {ip for _, ip, _ in audited} >= {"10.0.0.0", "10.0.19.4"}
    assert not any("wrong guess" in details for _, _, details in audited)
    admin = make_client()
    login(admin, tenant_a.emails["admin"])
    audit_page = admin.get(f"/o/{tenant_a.slug}/audit?action=login.failed").get_data(as_text=True)
    assert "login.failed" in audit_page and "10.0.19.4" in audit_page
    # Once the hour has passed, the right password works.
    _window_passes(redis, "hour")
    assert _attempt(client, email, PASSWORD, "10.9.9.9").status_code == 302


def test_an_address_gets_429_beyond_its_limit(limited, tenant_a):
    client, redis = limited
    statuses = [
        _attempt(client, f"guess{n}@nowhere.example", "wrong 123", "10.1.1.1").status_code for n in range(20)
    ]
    assert statuses == [401] * 20
    blocked = _attempt(client, tenant_a.emails["admin"], PASSWORD, "10.1.1.1")
    assert blocked.status_code == 429 and "Too many attempts" in blocked.get_data(as_text=True)
    # The limit is the address's: the same account from another address is not blocked...
    assert _attempt(client, tenant_a.emails["admin"], PASSWORD, "10.1.1.2").status_code == 302
    # ...and the address may try again once the minute has passed.
    _window_passes(redis, "minute")
    assert _attempt(make_fresh(client), tenant_a.emails["admin"], PASSWORD, "10.1.1.1").status_code == 302


def make_fresh(client):
    """A new browser on the same app (the previous one is signed in now)."""
    return client.application.test_client()


def _secrets(world) -> dict[str, str]:  # noqa: F811
    ids = world["ids"]
    return {
        "password": PASSWORD,
        "wrong password": "Wr0ng-but-close-password!",
        "password typed as email": "Hunter2-typed-in-the-email-field",
        "A's API token": world["a_token"],
        "B's API token": world["b_token"],
        "invitation secret": ids["secret"],
        "share link token": ids["token"],
    }


def _use_every_secret(get, post, world, base: str = "") -> None:  # noqa: F811
    """Log in wrongly and rightly, type a password into the email field, call the API with tokens,
    open a share link and an invitation link."""
    secrets = _secrets(world)
    slug = world["a"].slug
    for email, password in (
        ("owner@a.example", secrets["wrong password"]),
        (secrets["password typed as email"], secrets["wrong password"]),
        ("owner@a.example", secrets["password"]),
    ):
        token = csrf_token(get(base + "/login").text)
        post(base + "/login", data={"email": email, "password": password, "csrf_token": token})
    for token in (secrets["A's API token"], secrets["B's API token"], "jl_1_not-a-real-token"):
        get(base + "/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    get(f"{base}/share/{slug}/{secrets['share link token']}")
    get(f"{base}/join/{slug}/{secrets['invitation secret']}")


class _Answer:
    def __init__(self, response) -> None:
        self.text = response.get_data(as_text=True)
        self.status_code = response.status_code


def test_no_password_or_token_in_the_app_log(app, world, make_client, caplog):  # noqa: F811
    caplog.set_level(logging.DEBUG)
    client = make_client()
    _use_every_secret(
        lambda url, **kw: _Answer(client.get(url, **kw)),
        lambda url, **kw: _Answer(client.post(url, **kw)),
        world,
    )
    assert "login failed" in caplog.text  # the log was captured
    for name, secret in _secrets(world).items():
        assert secret not in caplog.text, f"the {name} is in the app's log"


@pytest.mark.postgres
def test_no_password_or_token_in_gunicorn_or_worker_output(
    app_config,
    world,  # noqa: F811
    smtp_recorder,  # noqa: F811
    tmp_path,
):
    recorder, smtp_url = smtp_recorder
    env = stack_env(app_config, SMTP_URL=smtp_url, PUBLIC_URL="https://journeylens.example")
    web_log, worker_log = tmp_path / "web.log", tmp_path / "worker.log"
    with web_server(env, workers=1, log_path=web_log) as base, rq_worker(env, log_path=worker_log):
        browser = requests.Session()
        _use_every_secret(browser.get, browser.post, world, base)
        session_cookie = browser.cookies.get("session")
        members = browser.get(f"{base}/o/{world['a'].slug}/members").text
        invited = browser.post(
            f"{base}/o/{world['a'].slug}/invitations",
            data={"email": "invited@a.example", "role": "viewer", "csrf_token": csrf_token(members)},
        )
        assert invited.status_code == 201
        deadline = time.monotonic() + 30
        while not recorder.messages and time.monotonic() < deadline:
            time.sleep(0.2)
        assert recorder.messages, "the worker sent no invitation"
        mailed_secret = (
            recorder.messages[0].content.decode().split(f"/join/{world['a'].slug}/", 1)[1].split()[0]
        )
        browser.get(f"{base}/join/{world['a'].slug}/{mailed_secret}")
        time.sleep(1)  # the last access log lines
    secrets = {**_secrets(world), "mailed invitation secret": mailed_secret, "session cookie": session_cookie}
    output = {"gunicorn": web_log.read_text(), "worker": worker_log.read_text()}
    assert "POST /login" in output["gunicorn"]  # the access log was on
    assert f"GET /join/{world['a'].slug}/[redacted]" in output["gunicorn"]
    assert f"GET /share/{world['a'].slug}/[redacted]" in output["gunicorn"]
    assert "invitation mail" in output["worker"]  # the worker logged the job
    for where, text in output.items():
        for name, secret in secrets.items():
            assert secret not in text, f"the {name} is in {where}'s output"
