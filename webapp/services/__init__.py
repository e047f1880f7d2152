"""Domain operations: plain arguments in, one transaction each; never flask.request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


class ServiceError(Exception):
    """A use case refused, with a message a person can act on (and the form field it concerns)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(ServiceError):
    """The object does not exist in the current organisation (or at all: the two look the same)."""


class Forbidden(ServiceError):
    """The actor's role does not allow this."""


@dataclass(frozen=True)
class Actor:
    """Who performs a use case, and from where (for the audit log)."""

    user_id: int | None
    ip_address: str | None = None


class Conflict(ServiceError):
    """Someone else changed or deleted the object since the client loaded it; nothing was saved.

    Carries both sides, so a person can compare what is stored with what they tried and choose:
    `stored` is the object as it is now (None when it is gone), `attempted` what the refused call
    wanted to write (None for a delete); `changed_by`/`changed_at` name the change that came between.
    """

    def __init__(
        self,
        message: str,
        *,
        entity: str,
        entity_id: int,
        action: str,
        expected_version: int | str | None,
        stored_version: int | str | None,
        stored: dict[str, Any] | None,
        attempted: dict[str, Any] | None,
        changed_by: str | None = None,
        changed_at: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.entity = entity
        self.entity_id = entity_id
        self.action = action
        self.expected_version = expected_version
        self.stored_version = stored_version
        self.stored = stored
        self.attempted = attempted
        self.changed_by = changed_by
        self.changed_at = changed_at

    def to_dict(self) -> dict[str, Any]:
        """The conflict as JSON, for an API answer or an editor that shows both versions."""
        return {
            "message": self.message,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "action": self.action,
            "expected_version": self.expected_version,
            "stored_version": self.stored_version,
            "stored": self.stored,
            "attempted": self.attempted,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at.isoformat() if self.changed_at else None,
        }
