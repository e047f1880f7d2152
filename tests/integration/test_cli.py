"""The `journeylens` console script, run as a user would run it."""

from __future__ import annotations

import subprocess

from tests.servers import BIN, ROOT, stack_env
from tests.support import login


def journeylens(app_config, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "journeylens"), *args],
        env=stack_env(app_config),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


def test_create_org_token_and_member(app, app_config, client):
    slug = journeylens(
        app_config,
        "create-org",
        "--name",
        "Gamma IT",
        "--owner-email",
        "boss@gamma.example",
        "--password",
        "gamma owner passphrase",
    ).stdout.strip()
    assert slug == "gamma-it"
    token = journeylens(
        app_config, "create-token", "--org", slug, "--email", "boss@gamma.example"
    ).stdout.strip()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.get_json() == {
        "user": {"email": "boss@gamma.example"},
        "organisation": {"slug": "gamma-it", "name": "Gamma IT"},
        "role": "owner",
    }
    out = journeylens(
        app_config,
        "add-member",
        "--org",
        slug,
        "--email",
        "analyst@gamma.example",
        "--role",
        "viewer",
        "--password",
        "analyst passphrase 1",
    ).stdout
    assert "analyst@gamma.example is viewer of gamma-it" in out
    assert login(client, "analyst@gamma.example", "analyst passphrase 1").status_code == 302
    assert client.get("/o/gamma-it/").status_code == 200


def test_cli_errors_are_clear(app, app_config):
    result = journeylens(app_config, "create-token", "--org", "nope", "--email", "x@y.example", check=False)
    assert result.returncode != 0 and "no organisation with slug 'nope'" in result.stderr
    result = journeylens(
        app_config,
        "create-org",
        "--name",
        "Weak",
        "--owner-email",
        "w@weak.example",
        "--password",
        "short",
        check=False,
    )
    assert result.returncode != 0 and "at least 12 characters" in result.stderr


def test_seed_demo_is_idempotent(app, app_config, client):
    first = journeylens(app_config, "seed-demo").stdout
    second = journeylens(app_config, "seed-demo").stdout
    assert "created" in first and "already there" in second
    assert login(client, "demo@journeylens.example", "journeylens-demo").status_code == 302
    page = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert "Demo Service Desk" in page
    members = client.get("/o/demo-service-desk/members").get_data(as_text=True)
    for email in ("demo@journeylens.example", "editor@journeylens.example", "viewer@journeylens.example"):
        assert f"<td>{email}" in members
