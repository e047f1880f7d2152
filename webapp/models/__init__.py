"""All models, imported so metadata and mappers know every table."""

from webapp.models.accounts import ApiToken, Invitation, Membership, Organisation, Role, User
from webapp.models.audit import AuditEvent
from webapp.models.eventlogs import (
    ActivityStat,
    CaseDurationBin,
    DfgEdge,
    EventLog,
    LogSummary,
    MiningRun,
    SavedMapping,
    VariantStat,
)

__all__ = [
    "ActivityStat",
    "ApiToken",
    "AuditEvent",
    "CaseDurationBin",
    "DfgEdge",
    "EventLog",
    "Invitation",
    "LogSummary",
    "Membership",
    "MiningRun",
    "Organisation",
    "Role",
    "SavedMapping",
    "User",
    "VariantStat",
]
