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


@click.command("mine")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--case", "case_column", default=None, help="Case id column (CSV/Parquet).")
@click.option("--activity", "activity_column", default=None)
@click.option("--timestamp", "timestamp_column", default=None)
@click.option("--start-timestamp", "start_column", default=None)
@click.option("--resource", "resource_column", default=None)
@click.option("--timestamp-format", default=None, help="strftime pattern, ISO8601, epoch_s or epoch_ms.")
@click.option("--timezone", default=None, help="IANA zone for times without an offset (default UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the only output form).")
def mine(
    path,
    case_column,
    activity_column,
    timestamp_column,
    start_column,
    resource_column,
    timestamp_format,
    timezone,
    as_json,
) -> None:
    """Mine a log file here, without database or Redis; prints summary, dfg, variants, activities."""
    import json

    from worker.mining import ColumnMapping, MiningInputError, preview
    from worker.mining import mine as mine_file
    from worker.mining.export import api_shapes

    mapping = None
    try:
        if any((case_column, activity_column, timestamp_column)):
            if not all((case_column, activity_column, timestamp_column)):
                _fail(
                    "give --case, --activity and --timestamp together (or none, to use the proposed mapping)"
                )
            mapping = ColumnMapping(
                case_column,
                activity_column,
                timestamp_column,
                start_column,
                resource_column,
                timestamp_format,
                timezone,
            )
        else:
            head = preview(path)
            if head.format != "xes":
                mapping = head.proposal.to_mapping()
        result = mine_file(path, mapping)
    except MiningInputError as error:
        _fail(str(error))
    click.echo(json.dumps(api_shapes(result), indent=None if as_json else 2))


@click.command("generate-log")
@click.option("--cases", type=click.IntRange(min=1), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), required=True, help=".csv, .csv.gz, .xes or .xes.gz")
def generate_log(cases: int, seed: int, out: str) -> None:
    """Write a realistic synthetic IT incident log whose answers are known (for tests, demos, benchmarks)."""
    from worker.mining.synthetic import generate_incident_log, write_csv, write_xes

    log = generate_incident_log(cases, seed=seed)
    writer = write_xes if ".xes" in out else write_csv
    writer(log, out)
    click.echo(
        f"{out}: {log.truth.n_cases} cases, {log.truth.n_events} events, {log.truth.n_variants} variants"
    )


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
main.add_command(mine)
main.add_command(generate_log)
