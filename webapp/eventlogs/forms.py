"""Forms of the event-log pages."""

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import StringField
from wtforms.validators import Length, Optional


class UploadForm(FlaskForm):
    file = FileField(
        "Event log file", description="CSV or TSV (also .csv.gz), XES (.xes, .xes.gz) or Parquet."
    )
    name = StringField("Name (optional)", validators=[Optional(), Length(max=200)])
