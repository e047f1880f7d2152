"""Built-in journey templates: realistic starting points, written in the export JSON format.

Each is validated by the same rules as an import (tests/unit/test_journey_templates.py), so a template
can never hold what a user could not have typed. Durations are in seconds.
"""

from __future__ import annotations

from typing import Any

BLUEPRINT_LANES = [
    {"name": "Actions"},
    {"name": "Frontstage"},
    {"name": "Backstage"},
    {"name": "Support processes"},
]

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def _step(
    name: str,
    lane: str,
    channel: str,
    emotion: int,
    duration_s: int | None,
    *,
    moment_of_truth: bool = False,
    description: str = "",
    touchpoint: str = "",
    owner_team: str = "",
    notes: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    return {
        "name": name,
        "lane": lane,
        "channel": channel,
        "emotion": emotion,
        "moment_of_truth": moment_of_truth,
        "expected_duration_s": duration_s,
        "description": description,
        "touchpoint": touchpoint,
        "owner_team": owner_team,
        "notes": [{"kind": kind, "text": text} for kind, text in notes],
    }


IT_INCIDENT = {
    "title": "IT incident (employee)",
    "kind": "employee",
    "state": "current",
    "status": "draft",
    "persona": {
        "name": "Sam, field sales representative",
        "role": "Employee who depends on a laptop and VPN to sell",
        "goals": "Get back to work quickly, without having to explain the problem three times.",
        "frustrations": "Waiting on hold; being asked for details already given; not knowing what happens.",
        "quote": "I don't care whose queue it is in, I just need it to work before my next customer call.",
    },
    "scenario": "Sam cannot connect to the VPN from a hotel on the morning of a customer visit.",
    "tags": ["incident", "service desk", "ITIL"],
    "lanes": BLUEPRINT_LANES,
    "stages": [
        {
            "name": "Notice the problem",
            "steps": [
                _step("Hits the problem", "Actions", "other", -2, None),
                _step(
                    "Searches the knowledge base",
                    "Actions",
                    "self_service_portal",
                    -1,
                    10 * MINUTE,
                    touchpoint="Knowledge base",
                    notes=(("pain_point", "Articles are outdated or written for IT staff."),),
                ),
            ],
        },
        {
            "name": "Report",
            "steps": [
                _step(
                    "Raises a ticket on the portal",
                    "Actions",
                    "self_service_portal",
                    -1,
                    5 * MINUTE,
                    touchpoint="Service portal form",
                ),
                _step(
                    "Calls the service desk",
                    "Actions",
                    "phone",
                    -2,
                    15 * MINUTE,
                    notes=(("pain_point", "Long wait on hold at 8:30, when everyone calls."),),
                ),
                _step(
                    "Agent logs and categorises the incident",
                    "Frontstage",
                    "phone",
                    0,
                    5 * MINUTE,
                    moment_of_truth=True,
                    owner_team="Service desk (1st line)",
                ),
                _step(
                    "Automatic acknowledgement with the ticket number",
                    "Support processes",
                    "email",
                    0,
                    MINUTE,
                    touchpoint="ITSM tool",
                ),
            ],
        },
        {
            "name": "Diagnose",
            "steps": [
                _step(
                    "Agent diagnoses remotely",
                    "Frontstage",
                    "chat",
                    0,
                    30 * MINUTE,
                    owner_team="Service desk (1st line)",
                ),
                _step(
                    "Escalated to second line",
                    "Backstage",
                    "other",
                    -1,
                    4 * HOUR,
                    owner_team="Network team (2nd line)",
                    notes=(("opportunity", "Route VPN incidents straight to the network team by category."),),
                ),
                _step(
                    "Asked again for details",
                    "Actions",
                    "email",
                    -2,
                    HOUR,
                    notes=(
                        ("question", "Could the portal form ask for location and error message up front?"),
                    ),
                ),
            ],
        },
        {
            "name": "Resolve",
            "steps": [
                _step("Fix applied", "Backstage", "other", 1, HOUR, owner_team="Network team (2nd line)"),
                _step(
                    "Employee told it is fixed",
                    "Frontstage",
                    "email",
                    2,
                    5 * MINUTE,
                    moment_of_truth=True,
                    touchpoint="Resolution mail",
                ),
            ],
        },
        {
            "name": "Confirm and close",
            "steps": [
                _step("Checks that it works", "Actions", "app", 2, 10 * MINUTE),
                _step(
                    "Ticket closed and satisfaction survey sent",
                    "Support processes",
                    "email",
                    0,
                    MINUTE,
                    notes=(("idea", "Ask one question, not ten."),),
                ),
            ],
        },
    ],
}

EMPLOYEE_ONBOARDING = {
    "title": "Employee onboarding",
    "kind": "employee",
    "state": "current",
    "status": "draft",
    "persona": {
        "name": "Noor, new team member",
        "role": "New hire in their first month",
        "goals": "Be productive and feel welcome from day one.",
        "frustrations": "A laptop that is not ready; accounts that trickle in over weeks.",
        "quote": "I wanted to start on Monday, not on Thursday when my access finally worked.",
    },
    "scenario": "Noor signs a contract and starts four weeks later in a hybrid team.",
    "tags": ["onboarding", "HR", "IT"],
    "lanes": BLUEPRINT_LANES,
    "stages": [
        {
            "name": "Before day one",
            "steps": [
                _step("Signs the contract", "Actions", "email", 2, DAY),
                _step(
                    "HR registers the hire",
                    "Backstage",
                    "other",
                    0,
                    2 * DAY,
                    owner_team="HR operations",
                    touchpoint="HR system",
                ),
                _step(
                    "IT orders laptop and accounts",
                    "Support processes",
                    "self_service_portal",
                    0,
                    5 * DAY,
                    owner_team="IT fulfilment",
                    notes=(("pain_point", "Requests start late because HR and IT are not linked."),),
                ),
                _step(
                    "Welcome mail with the first-day plan",
                    "Frontstage",
                    "email",
                    1,
                    10 * MINUTE,
                    owner_team="Hiring manager",
                ),
            ],
        },
        {
            "name": "First day",
            "steps": [
                _step(
                    "Collects laptop and badge",
                    "Actions",
                    "in_person",
                    1,
                    30 * MINUTE,
                    moment_of_truth=True,
                    touchpoint="IT desk",
                ),
                _step(
                    "Logs in for the first time",
                    "Actions",
                    "app",
                    -2,
                    20 * MINUTE,
                    notes=(("pain_point", "The temporary password has expired; a reset needs a call."),),
                ),
                _step("Meets the buddy", "Frontstage", "in_person", 2, HOUR, owner_team="Team"),
            ],
        },
        {
            "name": "First week",
            "steps": [
                _step(
                    "Requests access to team tools",
                    "Actions",
                    "self_service_portal",
                    -1,
                    3 * DAY,
                    notes=(("opportunity", "Bundle access by role, approved once by the manager."),),
                ),
                _step("Access granted", "Backstage", "other", 0, DAY, owner_team="Identity and access"),
                _step(
                    "Completes mandatory trainings",
                    "Actions",
                    "web",
                    -1,
                    4 * HOUR,
                    touchpoint="Learning platform",
                ),
            ],
        },
        {
            "name": "First month",
            "steps": [
                _step(
                    "30-day check-in with the manager",
                    "Frontstage",
                    "in_person",
                    1,
                    HOUR,
                    moment_of_truth=True,
                    owner_team="Hiring manager",
                    notes=(("idea", "Ask what was missing on day one and feed it back to IT and HR."),),
                ),
                _step("Onboarding survey", "Support processes", "email", 0, 10 * MINUTE),
            ],
        },
    ],
}

CUSTOMER_SUPPORT_TICKET = {
    "title": "Customer support ticket",
    "kind": "customer",
    "state": "current",
    "status": "draft",
    "persona": {
        "name": "Chris, small-business customer",
        "role": "Customer with an invoice question",
        "goals": "A correct invoice, explained once, without chasing.",
        "frustrations": "Bots that cannot help; repeating the story to every agent.",
        "quote": "Just tell me when it will be sorted, and then sort it.",
    },
    "scenario": "Chris is billed twice for one month and contacts support.",
    "tags": ["support", "billing"],
    "lanes": BLUEPRINT_LANES,
    "stages": [
        {
            "name": "Need help",
            "steps": [
                _step("Notices the double charge", "Actions", "email", -3, None, touchpoint="Invoice mail"),
                _step(
                    "Looks for help on the website",
                    "Actions",
                    "web",
                    -1,
                    5 * MINUTE,
                    touchpoint="Help centre",
                    notes=(("pain_point", "The contact form is hidden behind three FAQ pages."),),
                ),
            ],
        },
        {
            "name": "Contact",
            "steps": [
                _step("Chats with the bot", "Actions", "chat", -2, 5 * MINUTE),
                _step(
                    "Handed over to an agent",
                    "Frontstage",
                    "chat",
                    0,
                    10 * MINUTE,
                    moment_of_truth=True,
                    owner_team="Customer support",
                    notes=(("opportunity", "Pass the bot conversation to the agent so nobody repeats it."),),
                ),
                _step("Ticket created", "Support processes", "other", 0, MINUTE, touchpoint="Helpdesk tool"),
            ],
        },
        {
            "name": "Wait",
            "steps": [
                _step(
                    "Billing team investigates",
                    "Backstage",
                    "other",
                    0,
                    2 * DAY,
                    owner_team="Billing",
                ),
                _step(
                    "Chases for an update",
                    "Actions",
                    "email",
                    -2,
                    10 * MINUTE,
                    notes=(("question", "Can we send a status update before the customer asks?"),),
                ),
            ],
        },
        {
            "name": "Resolution",
            "steps": [
                _step("Credit note issued", "Backstage", "other", 0, HOUR, owner_team="Billing"),
                _step(
                    "Agent explains the correction",
                    "Frontstage",
                    "email",
                    2,
                    15 * MINUTE,
                    moment_of_truth=True,
                    owner_team="Customer support",
                ),
            ],
        },
        {
            "name": "Follow-up",
            "steps": [
                _step("Rates the support", "Actions", "email", 1, 2 * MINUTE),
                _step(
                    "Root cause fed back to billing",
                    "Support processes",
                    "other",
                    0,
                    DAY,
                    notes=(("idea", "Flag duplicate charges automatically before invoices go out."),),
                ),
            ],
        },
    ],
}

HARDWARE_REQUEST = {
    "title": "Hardware request",
    "kind": "employee",
    "state": "current",
    "status": "draft",
    "persona": {
        "name": "Alex, designer",
        "role": "Employee who needs a second monitor",
        "goals": "Get the right device soon, without paperwork.",
        "frustrations": "Not knowing whether the request is approved, ordered or lost.",
        "quote": "I asked three weeks ago. Is anyone even looking at it?",
    },
    "scenario": "Alex requests a second monitor for the home office.",
    "tags": ["request", "hardware", "fulfilment"],
    "lanes": BLUEPRINT_LANES,
    "stages": [
        {
            "name": "Request",
            "steps": [
                _step(
                    "Picks a device in the catalogue",
                    "Actions",
                    "self_service_portal",
                    0,
                    10 * MINUTE,
                    touchpoint="Service catalogue",
                    notes=(("pain_point", "The catalogue shows models that are no longer sold."),),
                ),
                _step("Request confirmation", "Support processes", "email", 0, MINUTE),
            ],
        },
        {
            "name": "Approve",
            "steps": [
                _step(
                    "Manager approves",
                    "Backstage",
                    "email",
                    -2,
                    2 * DAY,
                    owner_team="Line manager",
                    notes=(("opportunity", "Pre-approve standard items under a price limit."),),
                ),
                _step("Approval reminder", "Support processes", "email", 0, MINUTE),
            ],
        },
        {
            "name": "Fulfil",
            "steps": [
                _step(
                    "Procurement orders the device",
                    "Backstage",
                    "other",
                    0,
                    3 * DAY,
                    owner_team="Procurement",
                ),
                _step(
                    "Device registered in the asset database",
                    "Support processes",
                    "other",
                    0,
                    30 * MINUTE,
                    owner_team="IT asset management",
                ),
                _step(
                    "Delivery notification",
                    "Frontstage",
                    "email",
                    1,
                    5 * MINUTE,
                    notes=(("question", "Can the employee choose delivery at home or the office?"),),
                ),
            ],
        },
        {
            "name": "Receive",
            "steps": [
                _step(
                    "Collects the device at the IT desk",
                    "Actions",
                    "in_person",
                    2,
                    20 * MINUTE,
                    moment_of_truth=True,
                    touchpoint="IT desk",
                ),
                _step("Sets it up and confirms receipt", "Actions", "self_service_portal", 1, 30 * MINUTE),
            ],
        },
    ],
}

# key -> (name, one-line description, export JSON); the key is what create_from_template takes.
BUILTIN: dict[str, tuple[str, str, dict[str, Any]]] = {
    "it-incident": (
        "IT incident (employee)",
        "An employee reports a broken service and waits for the fix: report, diagnose, resolve, close.",
        IT_INCIDENT,
    ),
    "employee-onboarding": (
        "Employee onboarding",
        "From signed contract to the 30-day check-in, across HR, IT and the team.",
        EMPLOYEE_ONBOARDING,
    ),
    "customer-support-ticket": (
        "Customer support ticket",
        "A customer asks for help, waits, gets an answer and rates it.",
        CUSTOMER_SUPPORT_TICKET,
    ),
    "hardware-request": (
        "Hardware request",
        "An employee orders a device from the catalogue: approval, procurement, delivery.",
        HARDWARE_REQUEST,
    ),
}
