"""Forms of the goal pages. The services validate the meaning (a step of the journey, a KPI that fits,
the target on the right side of the baseline); these only parse."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    FloatField,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from webapp.models.goals import INITIATIVE_STATES, JOURNEY_KPIS, STEP_KPIS, SURVEY_KPIS
from webapp.services.goals import KPI_LABELS

KPI_CHOICES = [
    *(
        SelectChoice(f"event_log:{m}", KPI_LABELS[m], optgroup="Whole journey (from the linked logs)")
        for m in JOURNEY_KPIS
    ),
    *(
        SelectChoice(f"event_log:{m}", KPI_LABELS[m], optgroup="One step (from the linked logs)")
        for m in STEP_KPIS
    ),
    *(SelectChoice(f"survey:{m}", KPI_LABELS[m], optgroup="Survey score of one step") for m in SURVEY_KPIS),
    SelectChoice("manual:", "A figure measured by hand (name and unit below)", optgroup="Other"),
]
DIRECTION_CHOICES = [SelectChoice("lower", "Lower is better"), SelectChoice("higher", "Higher is better")]
STATE_CHOICES = [SelectChoice(s, s.replace("_", " ").capitalize()) for s in INITIATIVE_STATES]
CONFIDENCE_CHOICES = [
    SelectChoice("5", "5 · very confident"),
    SelectChoice("4", "4 · confident"),
    SelectChoice("3", "3 · unsure"),
    SelectChoice("2", "2 · worried"),
    SelectChoice("1", "1 · it will not happen"),
]


class GoalForm(FlaskForm):
    """Create or edit a goal; on edit the journey, step and KPI are fixed."""

    title = StringField("Title", validators=[InputRequired(), Length(max=200)])
    why = TextAreaField(
        "Why it matters", validators=[Optional(), Length(max=5000)], description="For the people reading it."
    )
    owner_id = SelectField("Owner", coerce=str, description="Editors and above: the owner posts check-ins.")
    journey_id = SelectField("Journey", coerce=str)
    step_id = SelectField(
        "Step", coerce=str, description="Step and survey KPIs need a step of the chosen journey."
    )
    kpi = SelectField("KPI", choices=KPI_CHOICES, coerce=str)
    kpi_metric = StringField(
        "Name of the manual KPI",
        validators=[Optional(), Length(max=64)],
        description="Only for a figure measured by hand, e.g. “First-call resolution”.",
    )
    kpi_unit = StringField("Unit", validators=[Optional(), Length(max=32)], description="e.g. %, tickets, €")
    direction = SelectField("Which way is better", choices=DIRECTION_CHOICES)
    baseline = FloatField(
        "Baseline",
        validators=[Optional()],
        description="Leave empty to take the latest measurement (durations in seconds, shares 0–1).",
    )
    target = FloatField("Target", validators=[InputRequired()])
    start_on = DateField("Start", validators=[InputRequired()])
    due_on = DateField("Due", validators=[InputRequired()])
    review_every_days = IntegerField(
        "Check in every (days)", default=14, validators=[InputRequired(), NumberRange(1, 365)]
    )
    # On edit: the goal's version the form was drawn with, so a save never overwrites a change it
    # has not seen (see services.goals.update_goal).
    expected_version = HiddenField()

    def version_drawn(self) -> int | None:
        value = (self.expected_version.data or "").strip()
        return int(value) if value.isdigit() else None

    def service_fields(self) -> dict:
        """The fields as the goal service takes them."""
        fields = {
            "title": self.title.data,
            "why": self.why.data,
            "owner_id": self.owner_id.data,
            "kpi_unit": self.kpi_unit.data,
            "direction": self.direction.data,
            "baseline": self.baseline.data,
            "target": self.target.data,
            "start_on": self.start_on.data,
            "due_on": self.due_on.data,
            "review_every_days": self.review_every_days.data,
        }
        if getattr(self, "kpi", None) is not None:  # a new goal (on edit the journey, step and KPI stay)
            source, _, metric = (self.kpi.data or "").partition(":")
            fields.update(
                journey_id=self.journey_id.data,
                step_id=self.step_id.data,
                kpi_source=source,
                kpi_metric=metric if source != "manual" else (self.kpi_metric.data or ""),
            )
        return fields


class MeasurementForm(FlaskForm):
    """A measurement by hand of a manual KPI."""

    at = DateTimeLocalField("When (UTC)", format="%Y-%m-%dT%H:%M", validators=[InputRequired()])
    value = FloatField("Value", validators=[InputRequired()])
    note = StringField("Note", validators=[Optional(), Length(max=5000)])


class CheckInForm(FlaskForm):
    """The owner's status note and confidence."""

    note = TextAreaField("Status note", validators=[InputRequired(), Length(max=5000)])
    confidence = SelectField("Confidence", choices=CONFIDENCE_CHOICES, default="3")


class InitiativeForm(FlaskForm):
    """An action under a goal."""

    title = StringField("Initiative", validators=[InputRequired(), Length(max=200)])
    owner_id = SelectField("Owner", coerce=str)
    start_on = DateField(
        "Start", validators=[Optional()], description="Splits the data into before and after."
    )
    due_on = DateField("Due", validators=[Optional()])
    state = SelectField("State", choices=STATE_CHOICES, default="planned")


class TolerancesForm(FlaskForm):
    """The organisation's status tolerances."""

    on_track = FloatField(
        "On track within",
        validators=[InputRequired(), NumberRange(0, 1)],
        description="A goal is on track while its progress is at most this far behind the expected (0.10).",
    )
    at_risk = FloatField(
        "At risk within",
        validators=[InputRequired(), NumberRange(0, 1)],
        description="Further behind than this it is off track (0.30).",
    )
