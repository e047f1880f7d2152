"""Forms of the organisation pages."""

from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

ROLE_CHOICES = [SelectChoice(value, value.capitalize()) for value in ("viewer", "editor", "admin", "owner")]


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    role = SelectField("Role", choices=ROLE_CHOICES, default="editor")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES)


class TokenForm(FlaskForm):
    name = StringField(
        "Token name", validators=[Length(max=120)], description="What will use it, e.g. 'ServiceNow export'."
    )


class RenameForm(FlaskForm):
    name = StringField("Organisation name", validators=[DataRequired(), Length(max=120)])


class DeleteForm(FlaskForm):
    confirm = StringField("Type the organisation's slug to confirm", validators=[DataRequired()])


class NewOrganisationForm(FlaskForm):
    organisation = StringField("Organisation name", validators=[DataRequired(), Length(max=120)])


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False

    action = SelectField("Action", choices=[], validators=[Optional()])
    actor = StringField("Actor email", validators=[Optional()])
    since = DateField("From", validators=[Optional()])
    until = DateField("Until", validators=[Optional()])
