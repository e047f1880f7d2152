"""All models, imported so metadata and mappers know every table."""

from webapp.models.accounts import ApiToken, Invitation, Membership, Organisation, Role, User
from webapp.models.audit import AuditEvent

__all__ = ["ApiToken", "AuditEvent", "Invitation", "Membership", "Organisation", "Role", "User"]
