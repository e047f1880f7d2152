"""BusinessCalendar: hand-checked intervals, DST in Europe/Amsterdam, and a slow minute-stepping reference."""

from __future__ import annotations

import random
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from worker.mining.calendar import BusinessCalendar

AMS = ZoneInfo("Europe/Amsterdam")
HOUR = 3600.0


def ns(moment: datetime) -> int:
    """Epoch ns of an aware datetime (exact)."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def business(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    return float(cal.business_seconds(np.array([ns(start)]), np.array([ns(end)]))[0])


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


# 2024-01-01 is a Monday.
def test_within_one_day_and_outside_hours() -> None:
    cal = BusinessCalendar()
    assert business(cal, utc(2024, 1, 1, 10), utc(2024, 1, 1, 12)) == 2 * HOUR
    assert business(cal, utc(2024, 1, 1, 7), utc(2024, 1, 1, 8, 59)) == 0.0
    assert business(cal, utc(2024, 1, 1, 8), utc(2024, 1, 1, 9, 30)) == 0.5 * HOUR
    assert business(cal, utc(2024, 1, 1, 16, 30), utc(2024, 1, 1, 23)) == 0.5 * HOUR


def test_end_not_after_start_is_zero() -> None:
    cal = BusinessCalendar()
    assert business(cal, utc(2024, 1, 1, 12), utc(2024, 1, 1, 12)) == 0.0
    assert business(cal, utc(2024, 1, 1, 12), utc(2024, 1, 1, 10)) == 0.0


def test_overnight() -> None:
    # Monday 16:00 -> Tuesday 10:00: one hour each side of the night.
    assert business(BusinessCalendar(), utc(2024, 1, 1, 16), utc(2024, 1, 2, 10)) == 2 * HOUR


def test_weekend() -> None:
    cal = BusinessCalendar()
    # Friday 16:00 -> Monday 10:00 (66 hours on the clock).
    assert business(cal, utc(2024, 1, 5, 16), utc(2024, 1, 8, 10)) == 2 * HOUR
    # Entirely inside the weekend.
    assert business(cal, utc(2024, 1, 6, 9), utc(2024, 1, 7, 17)) == 0.0
    # A full working week.
    assert business(cal, utc(2024, 1, 1), utc(2024, 1, 8)) == 40 * HOUR


def test_holiday() -> None:
    plain = BusinessCalendar()
    christmas = BusinessCalendar(holidays=frozenset({date(2024, 12, 25)}))
    start, end = utc(2024, 12, 24, 16), utc(2024, 12, 26, 10)  # Tuesday 16:00 -> Thursday 10:00
    assert business(plain, start, end) == 10 * HOUR
    assert business(christmas, start, end) == 2 * HOUR


def test_custom_working_days_and_hours() -> None:
    cal = BusinessCalendar(working_days=frozenset({5}), day_start=time(10), day_end=time(14))  # Saturdays
    assert business(cal, utc(2024, 1, 1), utc(2024, 1, 15)) == 8 * HOUR


def test_round_the_clock_calendar_is_wall_clock() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Amsterdam", working_days=frozenset(range(7)), day_start=time(0), day_end=time(0)
    )
    start, end = ams(2024, 3, 30, 12), ams(2024, 4, 2, 12)  # across the spring DST change
    # (end - start) of two datetimes in one zone would be wall time (72 h); elapsed time is 71 h.
    assert business(cal, start, end) == (ns(end) - ns(start)) / 1e9 == 71 * HOUR


def test_dst_moves_the_window_in_utc() -> None:
    cal = BusinessCalendar(timezone="Europe/Amsterdam")
    # Winter: 09:00-17:00 local = 08:00-16:00 UTC; summer (after 2024-03-31): 07:00-15:00 UTC.
    assert business(cal, utc(2024, 3, 29, 7), utc(2024, 3, 29, 8)) == 0.0
    assert business(cal, utc(2024, 3, 29, 8), utc(2024, 3, 29, 16)) == 8 * HOUR
    assert business(cal, utc(2024, 4, 1, 7), utc(2024, 4, 1, 8)) == 1 * HOUR
    assert business(cal, utc(2024, 4, 1, 15), utc(2024, 4, 1, 16)) == 0.0
    # Friday 16:00 (+01:00) -> Monday 10:00 (+02:00): 65 wall hours, 2 working hours.
    assert business(cal, ams(2024, 3, 29, 16), ams(2024, 4, 1, 10)) == 2 * HOUR
    # Autumn: Friday 2024-10-25 16:00 (+02:00) -> Monday 10:00 (+01:00).
    assert business(cal, ams(2024, 10, 25, 16), ams(2024, 10, 28, 10)) == 2 * HOUR


def test_window_straddling_the_change_is_shorter_or_longer() -> None:
    # 01:00-05:00 every day: the night the clocks go forward has 3 working hours, back 5.
    cal = BusinessCalendar(
        timezone="Europe/Amsterdam", working_days=frozenset(range(7)), day_start=time(1), day_end=time(5)
    )
    assert business(cal, ams(2024, 3, 31, 0), ams(2024, 3, 31, 12)) == 3 * HOUR
    assert business(cal, ams(2024, 10, 27, 0), ams(2024, 10, 27, 12)) == 5 * HOUR
    assert business(cal, ams(2024, 10, 26, 0), ams(2024, 10, 26, 12)) == 4 * HOUR


def test_vectorised_shapes_and_empty() -> None:
    cal = BusinessCalendar()
    assert cal.business_seconds(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).shape == (0,)
    with pytest.raises(ValueError):
        cal.business_seconds(np.zeros(2, dtype=np.int64), np.zeros(3, dtype=np.int64))
    assert cal.business_seconds_between(utc(2024, 1, 1, 10), utc(2024, 1, 1, 11)) == HOUR


def test_dict_round_trip_and_validation() -> None:
    cal = BusinessCalendar(
        timezone="Europe/Amsterdam",
        working_days=frozenset({0, 1, 2, 3}),
        day_start=time(8, 30),
        day_end=time(16, 45, 30),
        holidays=frozenset({date(2024, 12, 25), date(2024, 12, 26)}),
    )
    data = cal.to_dict()
    assert data == {
        "timezone": "Europe/Amsterdam",
        "working_days": [0, 1, 2, 3],
        "day_start": "08:30",
        "day_end": "16:45:30",
        "holidays": ["2024-12-25", "2024-12-26"],
    }
    assert BusinessCalendar.from_dict(data) == cal
    assert BusinessCalendar.from_dict({}) == BusinessCalendar()
    assert "Mon-Fri 09:00-17:00 UTC" in BusinessCalendar().describe()
    with pytest.raises(ValueError, match="time zone"):
        BusinessCalendar(timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="end after it starts"):
        BusinessCalendar(day_start=time(17), day_end=time(9))
    with pytest.raises(ValueError, match="0 \\(Monday\\)"):
        BusinessCalendar(working_days=frozenset({7}))
    with pytest.raises(ValueError, match="Unknown calendar field"):
        BusinessCalendar.from_dict({"tz": "UTC"})


# --- slow references ----------------------------------------------------------------------------


def minute_reference(cal: BusinessCalendar, start: datetime, end: datetime) -> float:
    """Count the UTC minutes [t, t+1min) whose local wall time is working time (minute-aligned input)."""
    zone = ZoneInfo(cal.timezone)
    total = 0
    t = start
    step = timedelta(minutes=1)
    while t < end:
        local = t.astimezone(zone)
        in_hours = cal.day_start <= local.time() and (cal.day_end == time(0) or local.time() < cal.day_end)
        if local.weekday() in cal.working_days and local.date() not in cal.holidays and in_hours:
            total += 60
        t += step
    return float(total)


@pytest.mark.parametrize(
    "cal",
    [
        BusinessCalendar(
            timezone="Europe/Amsterdam", holidays=frozenset({date(2024, 4, 1), date(2024, 10, 28)})
        ),
        BusinessCalendar(
            timezone="America/New_York",
            working_days=frozenset({0, 2, 4, 5}),
            day_start=time(7, 15),
            day_end=time(19, 45),
        ),
        BusinessCalendar(
            timezone="Europe/Amsterdam",
            working_days=frozenset(range(7)),
            day_start=time(1, 30),
            day_end=time(4),
        ),
    ],
    ids=["amsterdam-holidays", "new-york-odd-days", "amsterdam-night-window"],
)
def test_against_minute_stepping_reference(cal: BusinessCalendar) -> None:
    rng = random.Random(7)
    # Starts near both 2024 DST changes (EU: Mar 31 / Oct 27; US: Mar 10 / Nov 3) and elsewhere.
    anchors = [utc(2024, 3, 8), utc(2024, 3, 29), utc(2024, 10, 25), utc(2024, 11, 1), utc(2024, 6, 14)]
    starts, ends = [], []
    for _ in range(60):
        start = rng.choice(anchors) + timedelta(minutes=rng.randrange(0, 4 * 24 * 60))
        end = start + timedelta(minutes=rng.randrange(-30, 4 * 24 * 60))
        starts.append(start)
        ends.append(end)
    got = cal.business_seconds(np.array([ns(s) for s in starts]), np.array([ns(e) for e in ends]))
    want = [minute_reference(cal, s, e) for s, e in zip(starts, ends, strict=True)]
    assert got.tolist() == want


def test_sub_minute_precision_and_large_batch_speed() -> None:
    cal = BusinessCalendar(timezone="Europe/Amsterdam")
    start = ams(2024, 1, 1, 9, 0, 0) + timedelta(microseconds=1)
    assert business(cal, start, ams(2024, 1, 1, 9, 0, 1)) == pytest.approx(0.999999, abs=1e-9)
    rng = np.random.default_rng(1)
    base = ns(utc(2023, 1, 1))
    a = base + rng.integers(0, 365 * 86_400, 1_000_000, dtype=np.int64) * 1_000_000_000
    b = a + rng.integers(0, 30 * 86_400, 1_000_000, dtype=np.int64) * 1_000_000_000
    t0 = clock.perf_counter()
    out = cal.business_seconds(a, b)
    elapsed = clock.perf_counter() - t0
    assert out.shape == (1_000_000,) and (out >= 0).all()
    assert (out <= (b - a) / 1e9).all()
    assert elapsed < 5.0, f"1M intervals took {elapsed:.2f} s"
