"""Forms of the auth blueprint (field names are part of the contract: email, password, organisation)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class SignupForm(FlaskForm):
    email = EmailField("Work email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()], description="12 to 128 characters.")
    organisation = StringField("Organisation name", validators=[DataRequired(), Length(max=120)])


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired()], description="12 to 128 characters.")


class JoinNewUserForm(FlaskForm):
    password = PasswordField(
        "Choose a password", validators=[DataRequired()], description="12 to 128 characters."
    )


class ConfirmForm(FlaskForm):
    """A form with only the CSRF token (buttons that change something)."""
