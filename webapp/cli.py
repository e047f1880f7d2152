"""The `journeylens` command group (a Flask CLI: `journeylens run`, `journeylens db upgrade` work too)."""

from __future__ import annotations

import os

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

from webapp import tenancy
from webapp.models import Role
from webapp.services import Actor, ServiceError


def _fail(message: str) -> None:
    raise click.ClickException(message)


def _org(slug: str):
    from webapp.services.accounts import organisation_by_slug

    organisation = organisation_by_slug(slug)
    if organisation is None:
        _fail(f"no organisation with slug {slug!r}")
    tenancy.activate(organisation.id)
    return organisation


@click.command("create-org")
@click.option("--name", required=True)
@click.option("--owner-email", required=True)
@click.option("--password", required=True)
@with_appcontext
def create_org(name: str, owner_email: str, password: str) -> None:
    """Create an organisation and its owner (a new or existing user); prints the slug."""
    from webapp.services import accounts

    try:
        user = accounts.find_user_by_email(owner_email)
        if user is None:
            user = accounts.create_user(owner_email, password)
        elif not accounts.verify_password(user.password_hash, password):
            _fail("that user exists and the password does not match")
        organisation = accounts.create_organisation(name, user, Actor(user.id, "cli"))
    except ServiceError as error:
        _fail(error.message)
    click.echo(organisation.slug)


@click.command("create-token")
@click.option("--org", "slug", required=True)
@click.option("--email", required=True)
@click.option("--name", default="CLI token")
@with_appcontext
def create_token(slug: str, email: str, name: str) -> None:
    """Create an API token for a member; prints it (once)."""
    from webapp.services import accounts, tokens

    _org(slug)
    user = accounts.find_user_by_email(email)
    if user is None:
        _fail(f"no user {email}")
    try:
        issued = tokens.issue(user, name, Actor(None, "cli"))
    except ServiceError as error:
        _fail(error.message)
    click.echo(issued.value)


@click.command("add-member")
@click.option("--org", "slug", required=True)
@click.option("--email", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password", default=None, help="Creates the user with it when they have no account yet.")
@with_appcontext
def add_member(slug: str, email: str, role: str, password: str | None) -> None:
    """Add a user to an organisation with a role."""
    from webapp.services import accounts

    organisation = _org(slug)
    try:
        user = accounts.find_user_by_email(email)
        if user is None:
            if not password:
                _fail(f"{email} has no account; give --password to create one")
            user = accounts.create_user(email, password)
        accounts.add_member(user, role, Actor(None, "cli"))
    except ServiceError as error:
        _fail(error.message)
    click.echo(f"{email} is {role} of {organisation.slug}")


@click.command("seed-demo")
@with_appcontext
def seed_demo() -> None:
    """Create the demo organisation and users if they are missing (safe to repeat)."""
    from webapp.services.demo import DEMO_OWNER
    from webapp.services.demo import seed_demo as seed

    slug, created = seed()
    click.echo(f"demo organisation {slug} {'created' if created else 'already there'}; login {DEMO_OWNER[0]}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker(burst: bool) -> None:
    """Start one RQ worker on the mining and default queues."""
    from flask import current_app

    from worker.__main__ import run_worker

    run_worker(current_app._get_current_object(), burst=burst)


@click.command("up")
@click.option(
    "--port", type=int, default=lambda: int(os.environ.get("PORT", "5000")), show_default="$PORT or 5000"
)
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"))
def up(port: int, host: str) -> None:
    """Migrate, seed, and run web + worker (+ embedded Redis without REDIS_URL) until Ctrl-C."""
    from webapp.devserver import run

    raise SystemExit(run(port, host))


def register_commands(app: Flask) -> None:
    """Attach the commands to the app's CLI."""
    for command in (create_org, create_token, add_member, seed_demo, worker):
        app.cli.add_command(command)


def _create_app(*_args):
    from webapp import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app)
def main() -> None:
    """Journeylens: journeys, event logs and goals. Management commands."""


main.add_command(up)
