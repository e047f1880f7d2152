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


def _errors(*codes: int) -> dict:
    text = {401: "No or invalid token", 403: "Role too low", 404: "Not found", 429: "Rate limited"}
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
