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


def _errors(*codes: int) -> dict:
    text = {
        401: "No or invalid token",
        403: "Role too low",
        404: "Not found",
        409: "Not mined yet",
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
