"""Sign up, log in, log out, sessions that end, passwords that are refused."""

from __future__ import annotations

from pathlib import Path

from tests.support import PASSWORD, csrf_token, login, post_form


def signup(client, email="ann@example.org", password=PASSWORD, organisation="Ann's Service Desk"):
    page = client.get("/signup")
    return client.post(
        "/signup",
        data={
            "email": email,
            "password": password,
            "organisation": organisation,
            "csrf_token": csrf_token(page.get_data(as_text=True)),
        },
    )


def test_signup_creates_an_organisation_owned_by_the_new_user(client):
    response = signup(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/o/ann-s-service-desk/"
    page = client.get("/o/ann-s-service-desk/")
    html = page.get_data(as_text=True)
    assert "Ann&#39;s Service Desk" in html and "owner" in html


def test_signup_refuses_short_long_and_breached_passwords(client):
    assert "at least 12 characters" in signup(client, password="short").get_data(as_text=True)
    assert "at most 128" in signup(client, password="x" * 129).get_data(as_text=True)
    common = Path(__file__).resolve().parents[2] / "webapp" / "data" / "common-passwords.txt"
    breached = next(p for p in common.read_text().splitlines() if len(p) >= 12)
    response = signup(client, password=breached)
    assert response.status_code == 422
    assert "most common breached passwords" in response.get_data(as_text=True)
    # 128 characters exactly is fine, and all of them count (no truncation at 72 like bcrypt).
    long_password = "a" * 100 + "b" * 28
    assert signup(client, email="long@example.org", password=long_password).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/account").get_data(as_text=True))})
    assert login(client, "long@example.org", "a" * 100 + "b" * 27 + "c").status_code == 401
    assert login(client, "long@example.org", long_password).status_code == 302


def test_signup_refuses_a_taken_email_and_keeps_the_form(client, tenant_a):
    response = signup(client, email="owner@a.example", organisation="Another")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "exists already" in html and 'value="Another"' in html


def test_login_error_does_not_reveal_whether_the_email_exists(client, tenant_a):
    wrong_password = login(client, "owner@a.example", "wrong password 123")
    unknown_email = login(client, "nobody@a.example", "wrong password 123")
    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "Email or password is not right." in wrong_password.get_data(as_text=True)
    assert "Email or password is not right." in unknown_email.get_data(as_text=True)


def test_session_cookie_changes_at_login_and_is_hardened(client, tenant_a):
    client.get("/login")
    before = client.get_cookie("session")
    response = login(client, "owner@a.example")
    after = client.get_cookie("session")
    assert before is not None and after is not None and before.value != after.value
    cookie_header = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie_header and "SameSite=Lax" in cookie_header


def test_logout_ends_the_users_other_sessions(app, tenant_a, make_client):
    laptop, phone = make_client(), make_client()
    login(laptop, "owner@a.example")
    login(phone, "owner@a.example")
    assert phone.get(f"/o/{tenant_a.slug}/").status_code == 200
    post_form(laptop, "/logout")
    response = phone.get(f"/o/{tenant_a.slug}/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_password_change_keeps_this_session_and_ends_others(app, tenant_a, make_client):
    laptop, phone = make_client(), make_client()
    login(laptop, "owner@a.example")
    login(phone, "owner@a.example")
    new_password = "a brand new passphrase 7"
    response = post_form(
        laptop, "/account", {"current_password": PASSWORD, "password": new_password}, page="/account"
    )
    assert response.status_code == 302
    assert laptop.get(f"/o/{tenant_a.slug}/").status_code == 200
    assert phone.get(f"/o/{tenant_a.slug}/").status_code == 302
    assert login(make_client(), "owner@a.example", new_password).status_code == 302


def test_a_password_hashed_with_other_parameters_is_rehashed_at_the_next_login(app, tenant_a, make_client):
    from argon2 import PasswordHasher, extract_parameters

    from webapp.extensions import db
    from webapp.services import accounts

    def stored_hash() -> str:
        with app.app_context():
            return accounts.find_user_by_email("owner@a.example").password_hash

    # A hash from before the parameters changed (here: stronger than the configured ones).
    with app.app_context():
        user = accounts.find_user_by_email("owner@a.example")
        user.password_hash = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
        db.session.commit()
    old = stored_hash()

    # A wrong password changes nothing.
    assert login(make_client(), "owner@a.example", "wrong password 123").status_code == 401
    assert stored_hash() == old

    # The right one logs in, and the hash moves to the configured parameters.
    assert login(make_client(), "owner@a.example").status_code == 302
    parameters = extract_parameters(stored_hash())
    assert (parameters.time_cost, parameters.memory_cost) == (
        app.config["ARGON2_TIME_COST"],
        app.config["ARGON2_MEMORY_COST_KIB"],
    )
    assert login(make_client(), "owner@a.example").status_code == 302
    assert login(make_client(), "owner@a.example", "wrong password 123").status_code == 401


def test_idle_sessions_expire(app, tenant_a, client):
    app.config["SESSION_IDLE_TIMEOUT"] = __import__("datetime").timedelta(seconds=0)
    login(client, "owner@a.example")
    with client.session_transaction() as session:
        session["seen"] = session["seen"] - 5
    response = client.get(f"/o/{tenant_a.slug}/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "without activity" in client.get("/login").get_data(as_text=True)


def test_login_is_rate_limited_per_email_with_a_clear_message(app_config, tenant_a):
    from webapp import create_app

    client = create_app({**app_config, "RATELIMIT_ENABLED": True}, env="test").test_client()
    statuses = [login(client, "owner@a.example", "wrong password 123").status_code for _ in range(5)]
    assert statuses == [401] * 5
    blocked = login(client, "owner@a.example", PASSWORD)
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Another email from the same address is still allowed (the per-IP limit is higher).
    assert login(client, "admin@a.example").status_code == 302


def test_forms_without_csrf_token_are_refused(client, tenant_a):
    response = client.post("/login", data={"email": "owner@a.example", "password": PASSWORD})
    assert response.status_code == 400
    assert "Reload the page" in response.get_data(as_text=True)


def test_security_headers_on_every_page(client):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_every_page_links_to_its_source(client, app):
    html = client.get("/login").get_data(as_text=True)
    assert f'href="{app.config["SOURCE_URL"]}"' in html and ">Source<" in html
