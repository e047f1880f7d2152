"""The demo organisation a local run starts with (idempotent)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from webapp import tenancy
from webapp.extensions import db
from webapp.models import Role
from webapp.services import Actor, accounts, eventlogs, journeys

DEMO_ORG_NAME = "Demo Service Desk"
DEMO_OWNER = ("demo@journeylens.example", "journeylens-demo")
DEMO_LOG_FILE = "servicenow-incidents-sample.csv"
DEMO_LOG_CASES = 2000
DEMO_LOG_SEED = 7
DEMO_LOG_MAPPING = {
    "case": "Number",
    "activity": "Status",
    "timestamp": "sys_updated_on",
    "resource": "Assigned to",
}
DEMO_MEMBERS = (
    ("editor@journeylens.example", "journeylens-demo", Role.EDITOR),
    ("viewer@journeylens.example", "journeylens-demo", Role.VIEWER),
)


def seed_demo() -> tuple[str, bool]:
    """Make sure the demo organisation and its members exist; returns (slug, created now)."""
    owner = accounts.find_user_by_email(DEMO_OWNER[0])
    created = False
    if owner is None:
        owner = accounts.create_user(*DEMO_OWNER, display_name="Demo Owner")
        org = accounts.create_organisation(DEMO_ORG_NAME, owner, Actor(owner.id))
        created = True
    else:
        tenancy.activate(None, owner.id)
        orgs = [
            m.organisation for m in accounts.memberships_of(owner) if m.organisation.name == DEMO_ORG_NAME
        ]
        org = orgs[0] if orgs else accounts.create_organisation(DEMO_ORG_NAME, owner, Actor(owner.id))
    tenancy.activate(org.id, owner.id)
    for email, password, role in DEMO_MEMBERS:
        user = accounts.find_user_by_email(email) or accounts.create_user(email, password)
        if accounts.membership_in(org.id, user.id) is None:
            accounts.add_member(user, role, Actor(owner.id))
    db.session.commit()
    if not eventlogs.all_logs():
        _seed_mined_log(Actor(owner.id))
    if not journeys.list_journeys():
        _seed_measured_journey(Actor(owner.id))
    return org.slug, created


# The sample log's statuses on the steps of the "IT incident" template; Reopen stays off the map, so the
# demo shows a shadow activity, and "Awaiting user info" after work started shows cases going back.
DEMO_ACTIVITY_STEPS = {
    "Logged": "Raises a ticket on the portal",
    "Classify": "Agent logs and categorises the incident",
    "Assign": "Agent diagnoses remotely",
    "Reassign": "Agent diagnoses remotely",
    "Awaiting user info": "Asked again for details",
    "Escalate": "Escalated to second line",
    "Work in progress": "Fix applied",
    "Resolve": "Employee told it is fixed",
    "Close": "Ticket closed and satisfaction survey sent",
}


def _seed_measured_journey(actor: Actor) -> None:
    """The IT incident journey, linked to the sample log, mapped and measured in this process."""
    from webapp.services import overlay
    from worker.jobs.overlay import measure_snapshot

    journey = journeys.create_from_template("it-incident", actor, title="IT incident (employee)")
    log = eventlogs.all_logs()[0]
    link = overlay.link_log(journey.id, log.id, actor)
    overlay.save_mapping(journey.id, link.id, DEMO_ACTIVITY_STEPS, actor, enqueue=False)
    measure_snapshot(overlay.latest_snapshot(link).id, organisation_id=log.organisation_id)
    _seed_goals(journey.id, actor)


def _seed_goals(journey_id: int, actor: Actor) -> None:
    """Three goals an IT service desk would set: two measured from the log, one reported by hand."""
    from datetime import timedelta

    from webapp.models import Role
    from webapp.models.types import utcnow
    from webapp.services import goals

    today = utcnow().date()
    window = {
        "start_on": today - timedelta(days=30),
        "due_on": today + timedelta(days=90),
        "owner_id": actor.user_id,
    }
    diagnose = next(s for s in journeys.board(journey_id).steps if s.name == "Agent diagnoses remotely")
    goals.create_goal(
        {
            **window,
            "title": "Resolve incidents faster",
            "why": "Employees lose working time while they wait for a fix.",
            "journey_id": journey_id,
            "kpi_source": "event_log",
            "kpi_metric": "median_case_duration_s",
            "direction": "lower",
            "target": 4 * 86400,
        },
        actor,
    )
    goals.create_goal(
        {
            **window,
            "title": "Pick up new incidents sooner",
            "journey_id": journey_id,
            "step_id": diagnose.id,
            "kpi_source": "event_log",
            "kpi_metric": "median_wait_before_s",
            "direction": "lower",
            "target": 15 * 60,
        },
        actor,
    )
    satisfaction = goals.create_goal(
        {
            **window,
            "title": "Happier employees after an incident",
            "journey_id": journey_id,
            "kpi_source": "manual",
            "kpi_metric": "csat",
            "kpi_unit": "/5",
            "direction": "higher",
            "baseline": 3.4,
            "target": 4.2,
        },
        actor,
    )
    goals.record_manual(
        satisfaction.id, (today - timedelta(days=28)).isoformat(), 3.4, "Quarterly survey", actor
    )
    goals.record_manual(satisfaction.id, (today - timedelta(days=1)).isoformat(), 3.7, "Pulse survey", actor)
    goals.check_in(satisfaction.id, "New knowledge base articles are live.", 4, actor, Role.OWNER)


def _seed_mined_log(actor: Actor) -> None:
    """A synthetic IT incident log, uploaded and mined in this process (no worker needed to seed)."""
    from worker.mining import mine, preview
    from worker.mining.synthetic import generate_incident_log, write_csv

    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(
            generate_incident_log(DEMO_LOG_CASES, seed=DEMO_LOG_SEED), Path(folder) / DEMO_LOG_FILE
        )
        with open(path, "rb") as handle:
            log = eventlogs.upload(path.name, handle, actor, "Service desk incidents (sample)", inspect=False)
        eventlogs.record_preview(log.id, preview(path).to_dict())
        log.mapping = eventlogs.validate_mapping(log, DEMO_LOG_MAPPING)
        run = eventlogs.start_run(log, enqueue=False)
        eventlogs.begin_run(run.id)
        eventlogs.store_results(run.id, mine(path, _mapping()).to_dict())


def _mapping():
    from worker.mining import ColumnMapping

    return ColumnMapping(
        case=DEMO_LOG_MAPPING["case"],
        activity=DEMO_LOG_MAPPING["activity"],
        timestamp=DEMO_LOG_MAPPING["timestamp"],
        resource=DEMO_LOG_MAPPING["resource"],
    )
