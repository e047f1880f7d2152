"""Domain operations: plain arguments in, one transaction each; never flask.request."""

from __future__ import annotations

from dataclasses import dataclass


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
