"""The OpenAPI 3.1 document of /api/v1 (a test checks it names exactly the routes the app has)."""

from __future__ import annotations

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}


LOG_ID = {"name": "log_id", "in": "path", "required": True, "schema": {"type": "integer"}}

EVENT_LOG = {
    "type": "object",
    "required": ["id", "name", "status", "progress", "error", "summary"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": ["uploaded", "queued", "running", "finished", "failed"]},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "phase": {"type": ["string", "null"]},
        "paused_s": {
            "type": ["number", "null"],
            "description": "While mining runs: the seconds it has paused so far to give way to a busy site",
        },
        "error": {"type": ["string", "null"]},
        "duplicate_of": {"type": ["integer", "null"]},
        "summary": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {
                        "cases": {"type": "integer"},
                        "events": {"type": "integer"},
                        "activities": {"type": "integer"},
                        "variants": {"type": "integer"},
                        "start": {"type": "string"},
                        "end": {"type": "string"},
                        "case_duration_s": {
                            "type": "object",
                            "properties": {
                                "mean": {"type": "number"},
                                "median": {"type": "number"},
                                "p90": {"type": "number"},
                            },
                        },
                    },
                },
            ]
        },
    },
}


JOURNEY_ID = {"name": "journey_id", "in": "path", "required": True, "schema": {"type": "integer"}}

_NAME = {"type": "string", "minLength": 1, "maxLength": 200}
_TEXT = {"type": "string", "maxLength": 5000}

JOURNEY_EXPORT = {
    "type": "object",
    "description": "A journey in the exchange format: what GET answers and POST and PUT take. Steps name "
    "their lane; unknown fields are refused.",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {
        "title": _NAME,
        "kind": {"type": "string", "enum": ["customer", "employee"], "default": "customer"},
        "state": {"type": "string", "enum": ["current", "future"], "default": "current"},
        "status": {"type": "string", "enum": ["draft", "in_review", "published"], "default": "draft"},
        "persona": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": _NAME,
                        "role": {"type": "string", "maxLength": 200},
                        "goals": _TEXT,
                        "frustrations": _TEXT,
                        "quote": _TEXT,
                    },
                },
            ]
        },
        "scenario": _TEXT,
        "tags": {"type": "array", "maxItems": 20, "items": {"type": "string", "maxLength": 50}},
        "lanes": {
            "type": "array",
            "maxItems": 20,
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _NAME},
            },
        },
        "stages": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": _NAME,
                    "steps": {"type": "array", "items": {"$ref": "#/components/schemas/JourneyStep"}},
                },
            },
        },
    },
}

JOURNEY_STEP = {
    "type": "object",
    "required": ["name", "lane"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "lane": {"type": "string", "description": "The name of one of the journey's lanes"},
        "channel": {
            "type": "string",
            "enum": ["web", "email", "phone", "chat", "in_person", "app", "self_service_portal", "other"],
            "default": "other",
        },
        "emotion": {"type": "integer", "minimum": -3, "maximum": 3, "default": 0},
        "moment_of_truth": {"type": "boolean", "default": False},
        "expected_duration_s": {"type": ["integer", "null"], "minimum": 0},
        "description": _TEXT,
        "touchpoint": {"type": "string", "maxLength": 200},
        "owner_team": {"type": "string", "maxLength": 200},
        "notes": {
            "type": "array",
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["kind", "text"],
                "additionalProperties": False,
                "properties": {
                    "kind": {"type": "string", "enum": ["pain_point", "opportunity", "idea", "question"]},
                    "text": {"type": "string", "minLength": 1, "maxLength": 5000},
                },
            },
        },
    },
}

JOURNEY_SUMMARY = {
    "type": "object",
    "required": ["id", "title", "kind", "state", "status", "archived", "version", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "kind": {"type": "string", "enum": ["customer", "employee"]},
        "state": {"type": "string", "enum": ["current", "future"]},
        "status": {"type": "string", "enum": ["draft", "in_review", "published"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "persona": {"type": ["string", "null"]},
        "owner": {"type": ["string", "null"], "format": "email"},
        "archived": {"type": "boolean"},
        "version": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

_EXPORT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JourneyExport"}}},
}
_EXPORT_ANSWER = {
    "description": "The journey as export JSON; the ETag header fingerprints it",
    "headers": {"ETag": {"schema": {"type": "string"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JourneyExport"}}},
}
_EXPORT_OR_CSV_ANSWER = {
    **_EXPORT_ANSWER,
    "description": "The journey as export JSON (ETag: its fingerprint), or with Accept: text/csv one CSV row "
    "per step (cells a spreadsheet would run as formulas start with a quote)",
    "content": {
        **_EXPORT_ANSWER["content"],
        "text/csv": {"schema": {"type": "string"}},
    },
}


def _journey_paths() -> dict:
    return {
        "/journeys": {
            "get": {
                "operationId": "listJourneys",
                "summary": "The organisation's journeys, recently changed first",
                "parameters": [
                    {"name": "search", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["customer", "employee"]},
                    },
                    {
                        "name": "state",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["current", "future"]},
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["draft", "in_review", "published"]},
                    },
                    {"name": "tag", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "archived",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["false", "true", "all"], "default": "false"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "Journeys",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "journeys": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/JourneySummary"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    **_errors(401, 422),
                },
            },
            "post": {
                "operationId": "createJourney",
                "summary": "Import a journey from export JSON",
                "requestBody": _EXPORT_BODY,
                "responses": {
                    "201": {
                        "description": "Created; Location names it",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}
                            }
                        },
                    },
                    **_errors(401, 403, 422),
                },
            },
        },
        "/journeys/{journey_id}": {
            "get": {
                "operationId": "getJourney",
                "summary": "A journey as export JSON, or as CSV",
                "parameters": [JOURNEY_ID],
                "responses": {"200": _EXPORT_OR_CSV_ANSWER, **_errors(401, 404)},
            },
            "put": {
                "operationId": "replaceJourney",
                "summary": "Replace a journey's content; send If-Match with its ETag to refuse lost updates",
                "parameters": [
                    JOURNEY_ID,
                    {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"}},
                ],
                "requestBody": _EXPORT_BODY,
                "responses": {"200": _EXPORT_ANSWER, **_errors(401, 403, 404, 412, 422)},
            },
            "delete": {
                "operationId": "deleteJourney",
                "summary": "Delete a journey with everything in it",
                "parameters": [JOURNEY_ID],
                "responses": {"204": {"description": "Deleted"}, **_errors(401, 403, 404)},
            },
        },
    }


MEASUREMENTS = {
    "type": "object",
    "required": ["event_log", "cases", "conformance", "steps", "transitions", "unmapped_activities"],
    "properties": {
        "event_log": {"type": "integer"},
        "snapshot": {"type": "integer"},
        "mapping_version": {"type": "integer"},
        "period": {
            "type": "object",
            "properties": {"start": {"type": ["string", "null"]}, "end": {"type": ["string", "null"]}},
        },
        "cases": {"type": "integer"},
        "conformance": {
            "type": "object",
            "properties": {"following": {"type": "integer"}, "share": {"type": "number"}},
        },
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "step_id": {"type": "integer"},
                    "name": {"type": "string"},
                    "cases_reached": {"type": "integer"},
                    "visits": {"type": "integer"},
                    "rework_cases": {"type": "integer"},
                    "median_visit_s": {"type": ["number", "null"]},
                    "median_wait_before_s": {"type": ["number", "null"]},
                },
            },
        },
        "transitions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "from_step": {"type": "integer"},
                    "to_step": {"type": "integer"},
                    "frequency": {"type": "integer"},
                    "median_s": {"type": ["number", "null"]},
                },
            },
        },
        "unmapped_activities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "events": {"type": "integer"}},
            },
        },
    },
}


def _overlay_paths() -> dict:
    return {
        "/journeys/{journey_id}/mapping": {
            "put": {
                "operationId": "putJourneyMapping",
                "summary": "Map a log's activities to the journey's steps; links and measures the log",
                "parameters": [JOURNEY_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["event_log", "activities"],
                                "properties": {
                                    "event_log": {"type": "integer"},
                                    "activities": {
                                        "type": "object",
                                        "additionalProperties": {"type": ["string", "integer", "null"]},
                                        "description": "activity -> step name or id (ambiguous: error)",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The saved mapping (a new version when it changed)",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                    **_errors(401, 403, 404, 422),
                },
            }
        },
        "/journeys/{journey_id}/measurements": {
            "get": {
                "operationId": "getJourneyMeasurements",
                "summary": "The journey measured on a linked log, from the stored snapshot",
                "parameters": [
                    JOURNEY_ID,
                    {"name": "event_log", "in": "query", "required": True, "schema": {"type": "integer"}},
                ],
                "responses": {
                    "200": {
                        "description": "Measurements",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Measurements"}}
                        },
                    },
                    **_errors(401, 404, 409, 422),
                },
            }
        },
    }


GOAL_ID = {"name": "goal_id", "in": "path", "required": True, "schema": {"type": "integer"}}
_NUMBER_OR_NULL = {"type": ["number", "null"]}

GOAL = {
    "type": "object",
    "required": ["id", "title", "baseline", "current", "progress", "expected", "status", "measurements"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "why": {"type": "string"},
        "journey_id": {"type": "integer"},
        "step_id": {"type": ["integer", "null"]},
        "kpi": {
            "type": "object",
            "properties": {
                "metric": {"type": "string"},
                "source": {"type": "string", "enum": ["event_log", "survey", "manual"]},
                "unit": {"type": ["string", "null"]},
            },
        },
        "direction": {"type": "string", "enum": ["lower", "higher"]},
        "baseline": _NUMBER_OR_NULL,
        "target": {"type": "number"},
        "current": _NUMBER_OR_NULL,
        "progress": {**_NUMBER_OR_NULL, "description": "(current − baseline) / (target − baseline)"},
        "expected": {"type": "number", "description": "share of the time from start to due that has passed"},
        "status": {
            "type": "string",
            "enum": ["no_data", "on_track", "at_risk", "off_track", "achieved", "missed"],
        },
        "start": {"type": "string", "format": "date"},
        "due": {"type": "string", "format": "date"},
        "review_every_days": {"type": "integer"},
        "owner_email": {"type": ["string", "null"]},
        "last_measured_at": {"type": ["string", "null"], "format": "date-time"},
        "last_check_in_at": {"type": ["string", "null"], "format": "date-time"},
        "check_in_overdue": {"type": "boolean"},
        "watermelon": {
            "type": ["string", "null"],
            "description": "why a green KPI hides related figures that got worse",
        },
        "measurements": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["at", "value", "source"],
                "properties": {
                    "at": {"type": "string", "format": "date-time"},
                    "value": {"type": "number"},
                    "source": {"type": "string", "enum": ["event_log", "survey", "manual"]},
                    "event_log_id": {"type": ["integer", "null"]},
                    "note": {"type": ["string", "null"]},
                },
            },
        },
    },
}

NEW_GOAL = {
    "type": "object",
    "required": ["title", "journey_id", "kpi", "direction", "target", "start", "due", "owner_email"],
    "additionalProperties": False,
    "properties": {
        "title": _NAME,
        "why": _TEXT,
        "journey_id": {"type": "integer"},
        "step_id": {"type": ["integer", "null"], "description": "needed by step and survey KPIs"},
        "kpi": {
            "type": "object",
            "required": ["metric", "source"],
            "properties": {
                "metric": {
                    "type": "string",
                    "description": "event_log: median_case_duration_s, conformance_share, rework_share, "
                    "cases (journey); median_visit_s, median_wait_before_s, cases_reached_share, "
                    "rework_cases_share (step). survey: nps, csat, ces. manual: any name",
                },
                "source": {"type": "string", "enum": ["event_log", "survey", "manual"]},
                "unit": {"type": "string", "maxLength": 32},
            },
        },
        "direction": {"type": "string", "enum": ["lower", "higher"]},
        "baseline": {
            "type": ["number", "null"],
            "description": "default: the first measurement (taken at once for measured KPIs)",
        },
        "target": {"type": "number"},
        "start": {"type": "string", "format": "date"},
        "due": {"type": "string", "format": "date"},
        "review_every_days": {"type": "integer", "minimum": 1, "maximum": 365, "default": 14},
        "owner_email": {"type": "string", "format": "email"},
    },
}


def _goal_paths() -> dict:
    goal_response = {
        "description": "The goal",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Goal"}}},
    }
    return {
        "/goals": {
            "get": {
                "operationId": "listGoals",
                "summary": "The organisation's goals with their measurements, soonest due first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {"name": "journey_id", "in": "query", "schema": {"type": "integer"}},
                    {"name": "owner_email", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {
                        "description": "Goals",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "goals": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/Goal"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    **_errors(401, 422),
                },
            },
            "post": {
                "operationId": "createGoal",
                "summary": "Set a goal; a measured KPI gets its first measurement (and baseline) at once",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewGoal"}}},
                },
                "responses": {
                    "201": {
                        "description": "Created",
                        "content": {
                            "application/json": {
                                "schema": {"type": "object", "properties": {"id": {"type": "integer"}}}
                            }
                        },
                    },
                    **_errors(401, 403, 422),
                },
            },
        },
        "/goals/{goal_id}": {
            "get": {
                "operationId": "getGoal",
                "summary": "A goal: baseline, current, progress, expected, status and measurements",
                "parameters": [GOAL_ID],
                "responses": {"200": goal_response, **_errors(401, 404)},
            }
        },
        "/goals/{goal_id}/measurements": {
            "post": {
                "operationId": "addGoalMeasurement",
                "summary": "A measurement of a manual KPI; the goal's status is recomputed",
                "parameters": [GOAL_ID],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["at", "value"],
                                "properties": {
                                    "at": {"type": "string", "description": "ISO date or date-time (UTC)"},
                                    "value": {"type": "number"},
                                    "note": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": {**goal_response, "description": "The goal with the new measurement"},
                    "409": {
                        "description": "The KPI is measured automatically (from logs or surveys)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                    **_errors(401, 403, 404, 422),
                },
            }
        },
    }


def _errors(*codes: int) -> dict:
    text = {
        401: "No or invalid token",
        403: "Role too low",
        404: "Not found",
        409: "Not mined yet",
        412: "Changed since the ETag sent in If-Match",
        422: "Invalid input; the message says what to fix",
        429: "Rate limited",
    }
    return {
        str(c): {
            "description": text[c],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for c in codes
    }


def document(server_url: str) -> dict:
    """The OpenAPI document, with this server as its server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Journeylens API",
            "version": "1.0.0",
            "description": "Tokens are per user per organisation and act with the user's role.",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": server_url.rstrip("/") + "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": ERROR,
                "EventLog": EVENT_LOG,
                "JourneyExport": JOURNEY_EXPORT,
                "JourneyStep": JOURNEY_STEP,
                "JourneySummary": JOURNEY_SUMMARY,
                "Measurements": MEASUREMENTS,
                "Goal": GOAL,
                "NewGoal": NEW_GOAL,
                "Me": {
                    "type": "object",
                    "required": ["user", "organisation", "role"],
                    "properties": {
                        "user": {
                            "type": "object",
                            "properties": {"email": {"type": "string", "format": "email"}},
                        },
                        "organisation": {
                            "type": "object",
                            "properties": {"slug": {"type": "string"}, "name": {"type": "string"}},
                        },
                        "role": {"type": "string", "enum": ["viewer", "editor", "admin", "owner"]},
                    },
                },
            },
        },
        "paths": {
            "/me": {
                "get": {
                    "operationId": "getMe",
                    "summary": "Who the token speaks for",
                    "responses": {
                        "200": {
                            "description": "The token's user, organisation and role",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Me"}}},
                        },
                        **_errors(401),
                    },
                }
            },
            "/event-logs": {
                "get": {
                    "operationId": "listEventLogs",
                    "summary": "The organisation's event logs, newest first",
                    "responses": {
                        "200": {
                            "description": "Logs",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "event_logs": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/EventLog"},
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        **_errors(401),
                    },
                },
                "post": {
                    "operationId": "uploadEventLog",
                    "summary": "Upload a log; with a complete mapping (or XES) mining starts at once",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "required": ["file"],
                                    "properties": {
                                        "file": {"type": "string", "format": "binary"},
                                        "name": {"type": "string"},
                                        "case_column": {"type": "string"},
                                        "activity_column": {"type": "string"},
                                        "timestamp_column": {"type": "string"},
                                        "start_timestamp_column": {"type": "string"},
                                        "resource_column": {"type": "string"},
                                        "timestamp_format": {
                                            "type": "string",
                                            "description": "strftime pattern, ISO8601, epoch_s or epoch_ms",
                                        },
                                        "timezone": {
                                            "type": "string",
                                            "description": "IANA zone for times without an offset",
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "id": {"type": "integer"},
                                            "status": {"type": "string"},
                                            "message": {
                                                "type": "string",
                                                "description": "Only while background work is paused: "
                                                "the file is kept and read once the queue is back.",
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": {
                            "description": "No file",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                            },
                        },
                        "413": {
                            "description": "Too large",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                            },
                        },
                        "422": {
                            "description": "Not a readable log",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                            },
                        },
                        **_errors(401, 403),
                    },
                },
            },
            "/event-logs/{log_id}": {
                "get": {
                    "operationId": "getEventLog",
                    "summary": "Status, progress, error and summary of a log",
                    "parameters": [LOG_ID],
                    "responses": {
                        "200": {
                            "description": "The log",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/EventLog"}}
                            },
                        },
                        **_errors(401, 404),
                    },
                }
            },
            "/event-logs/{log_id}/dfg": {
                "get": {
                    "operationId": "getEventLogDfg",
                    "summary": "Directly-follows graph with frequency and waiting times (seconds)",
                    "parameters": [LOG_ID],
                    "responses": {
                        "200": {"description": "Edges, start and end activities"},
                        **_errors(401, 404, 409),
                    },
                }
            },
            "/event-logs/{log_id}/variants": {
                "get": {
                    "operationId": "getEventLogVariants",
                    "summary": "Most frequent variants first",
                    "parameters": [
                        LOG_ID,
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                        },
                    ],
                    "responses": {"200": {"description": "Variants"}, **_errors(401, 404, 409)},
                }
            },
            "/event-logs/{log_id}/activities": {
                "get": {
                    "operationId": "getEventLogActivities",
                    "summary": "Events and cases per activity",
                    "parameters": [LOG_ID],
                    "responses": {"200": {"description": "Activities"}, **_errors(401, 404, 409)},
                }
            },
            **_journey_paths(),
            **_overlay_paths(),
            **_goal_paths(),
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document"}},
                }
            },
        },
    }
