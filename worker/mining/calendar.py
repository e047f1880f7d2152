"""Business time: how much of an interval falls inside working hours, vectorised and DST-correct.

A wait from Friday 16:00 to Monday 10:00 is 66 hours on the clock but 2 hours of the service desk's
time; journey owners usually promise the latter. :class:`BusinessCalendar` answers "how many working
seconds lie between these two instants" for a million intervals at once.

Definition: an instant is *working time* when, on the wall clock of ``timezone``, its local date is a
working day (``working_days``, Monday = 0) that is not a holiday, and its local time is in
``[day_start, day_end)``. The business seconds of an interval ``[start, end)`` are the length of its
working part (0 when ``end <= start``).

How: each local day ``d`` of the range the data spans gets its working window as two exact UTC
instants, ``window_start[d]`` and ``window_end[d]`` (computed with :mod:`zoneinfo`, so a DST change
moves the window in UTC and a window that straddles the change is an hour shorter or longer, as on
the wall clock). A non-working day gets an empty window. With ``worked_before[d]`` = total window
length of the days before ``d``, the working time from the start of the range to an instant ``t`` is
``worked_before[d] + clip(t - window_start[d], 0, window length[d])`` where ``d`` is the last day whose
window starts at or before ``t`` (one ``searchsorted``). An interval's business time is the
difference of that function at its two ends: O(days) Python work once, O(n log days) numpy per call.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

NS = 1_000_000_000
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _parse_time(value: Any, what: str) -> time:
    """A ``time`` from a time or "HH:MM[:SS]" text (the JSON form)."""
    if isinstance(value, time):
        return value
    if isinstance(value, str):
        try:
            return time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"{what} must be a time of day such as '09:00', not {value!r}.")


def _parse_date(value: Any) -> date:
    """A ``date`` from a date or "YYYY-MM-DD" text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"A holiday must be a date such as '2024-12-25', not {value!r}.")


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in one time zone. ``day_end`` of 00:00 means midnight at the end of the day."""

    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()
    _zone: ZoneInfo = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"Unknown time zone {self.timezone!r}; use an IANA name such as 'Europe/Amsterdam'."
            ) from None
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "working_days", frozenset(int(d) for d in self.working_days))
        object.__setattr__(self, "holidays", frozenset(_parse_date(d) for d in self.holidays))
        object.__setattr__(self, "day_start", _parse_time(self.day_start, "day_start"))
        object.__setattr__(self, "day_end", _parse_time(self.day_end, "day_end"))
        if any(not 0 <= d <= 6 for d in self.working_days):
            raise ValueError("Working days are numbered 0 (Monday) to 6 (Sunday).")
        if self.day_start.tzinfo is not None or self.day_end.tzinfo is not None:
            raise ValueError("day_start and day_end are wall-clock times without a time zone.")
        if self.day_end != time(0) and self.day_end <= self.day_start:
            raise ValueError(
                f"The working day must end after it starts ({self.day_start:%H:%M} - {self.day_end:%H:%M})."
            )

    # ----------------------------------------------------------------------------------------
    # JSON form

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: times as "HH:MM[:SS]", holidays as ISO dates, days sorted."""
        return {
            "timezone": self.timezone,
            "working_days": sorted(self.working_days),
            "day_start": _time_text(self.day_start),
            "day_end": _time_text(self.day_end),
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BusinessCalendar:
        """Inverse of :meth:`to_dict`; missing keys take the defaults (Mon-Fri 09:00-17:00 UTC)."""
        unknown = set(data) - {"timezone", "working_days", "day_start", "day_end", "holidays"}
        if unknown:
            raise ValueError(f"Unknown calendar field(s): {', '.join(sorted(unknown))}.")
        kwargs: dict[str, Any] = {}
        if "timezone" in data:
            kwargs["timezone"] = str(data["timezone"])
        if "working_days" in data:
            days: Iterable[Any] = data["working_days"]
            kwargs["working_days"] = frozenset(int(d) for d in days)
        if "day_start" in data:
            kwargs["day_start"] = _parse_time(data["day_start"], "day_start")
        if "day_end" in data:
            kwargs["day_end"] = _parse_time(data["day_end"], "day_end")
        if "holidays" in data:
            kwargs["holidays"] = frozenset(_parse_date(d) for d in data["holidays"])
        return cls(**kwargs)

    def describe(self) -> str:
        """Human summary, e.g. "Mon-Fri 09:00-17:00 Europe/Amsterdam, 3 holidays"."""
        days = ", ".join(_DAY_NAMES[d] for d in sorted(self.working_days)) or "no days"
        if sorted(self.working_days) == [0, 1, 2, 3, 4]:
            days = "Mon-Fri"
        text = f"{days} {self.day_start:%H:%M}-{self.day_end:%H:%M} {self.timezone}"
        if self.holidays:
            text += f", {len(self.holidays)} holiday{'s' if len(self.holidays) != 1 else ''}"
        return text

    # ----------------------------------------------------------------------------------------
    # Business time

    def _windows(self, first_ns: int, last_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(window start, window length, worked before) per local day covering [first, last], in ns.

        One day of margin on each side keeps every instant of the range after the first window
        start, whatever the UTC offset.
        """
        zone = self._zone
        one_day = timedelta(days=1)
        first_day = datetime.fromtimestamp(first_ns // NS, tz=UTC).astimezone(zone).date() - one_day
        last_day = datetime.fromtimestamp(-(-last_ns // NS), tz=UTC).astimezone(zone).date() + one_day
        n_days = (last_day - first_day).days + 1
        starts = np.empty(n_days, dtype=np.int64)
        lengths = np.zeros(n_days, dtype=np.int64)
        midnight_end = self.day_end == time(0)
        for i in range(n_days):
            day = first_day + timedelta(days=i)
            opens = datetime.combine(day, self.day_start, tzinfo=zone)
            starts[i] = _epoch_ns(opens)
            if day.weekday() in self.working_days and day not in self.holidays:
                closes = (
                    datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                    if midnight_end
                    else datetime.combine(day, self.day_end, tzinfo=zone)
                )
                lengths[i] = max(0, _epoch_ns(closes) - starts[i])
        worked_before = np.zeros(n_days, dtype=np.int64)
        np.cumsum(lengths[:-1], out=worked_before[1:])
        return starts, lengths, worked_before

    def business_seconds(self, start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
        """Working seconds between each pair of UTC epoch-ns instants (float; 0 when end <= start)."""
        start_ns = np.asarray(start_ns, dtype=np.int64)
        end_ns = np.asarray(end_ns, dtype=np.int64)
        if start_ns.shape != end_ns.shape:
            raise ValueError("start_ns and end_ns must have the same shape.")
        if start_ns.size == 0:
            return np.zeros(start_ns.shape, dtype=np.float64)
        first = int(min(start_ns.min(), end_ns.min()))
        last = int(max(start_ns.max(), end_ns.max()))
        starts, lengths, worked_before = self._windows(first, last)

        def worked_until(t: np.ndarray) -> np.ndarray:
            """Working ns from the first window start up to each instant."""
            day = np.searchsorted(starts, t, side="right") - 1  # >= 0 thanks to the margin day
            into = np.clip(t - starts[day], 0, lengths[day])
            return worked_before[day] + into

        worked = worked_until(end_ns) - worked_until(start_ns)
        return np.maximum(worked, 0).astype(np.float64) / NS

    def business_seconds_between(self, start: datetime, end: datetime) -> float:
        """Scalar convenience for two aware datetimes."""
        a = np.array([_epoch_ns(start)], dtype=np.int64)
        b = np.array([_epoch_ns(end)], dtype=np.int64)
        return float(self.business_seconds(a, b)[0])


def _time_text(moment: time) -> str:
    """ "HH:MM", or "HH:MM:SS" when the time has seconds."""
    return moment.isoformat(timespec="seconds" if moment.second or moment.microsecond else "minutes")


def _epoch_ns(moment: datetime) -> int:
    """Exact epoch nanoseconds of an aware datetime (no float rounding)."""
    if moment.tzinfo is None:
        raise ValueError("Datetimes must carry a time zone.")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS + delta.microseconds * 1000
