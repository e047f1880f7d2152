"""All models, imported so metadata and mappers know every table."""

from webapp.models.accounts import ApiToken, Invitation, Membership, Organisation, Role, User
from webapp.models.audit import AuditEvent
from webapp.models.collaboration import Comment, Notification, ShareLink
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
from webapp.models.journeys import (
    Journey,
    JourneyChange,
    JourneyTemplate,
    JourneyVersion,
    Lane,
    Persona,
    Stage,
    Step,
    StepNote,
)
from webapp.models.overlay import (
    BusinessCalendarSetting,
    JourneyLogLink,
    MappingVersion,
    MeasurementSnapshot,
    StepMeasurement,
    SurveyScore,
    TransitionMeasurement,
)

__all__ = [
    "ActivityStat",
    "ApiToken",
    "AuditEvent",
    "BusinessCalendarSetting",
    "CaseDurationBin",
    "Comment",
    "DfgEdge",
    "EventLog",
    "Invitation",
    "Journey",
    "JourneyChange",
    "JourneyLogLink",
    "JourneyTemplate",
    "JourneyVersion",
    "Lane",
    "LogSummary",
    "MappingVersion",
    "MeasurementSnapshot",
    "Membership",
    "MiningRun",
    "Notification",
    "Organisation",
    "Persona",
    "Role",
    "SavedMapping",
    "ShareLink",
    "Stage",
    "Step",
    "StepMeasurement",
    "StepNote",
    "SurveyScore",
    "TransitionMeasurement",
    "User",
    "VariantStat",
]
