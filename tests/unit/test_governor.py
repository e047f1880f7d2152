"""The governor that pauses a mining horse while the machine is busy (worker/governor.py), driven with
made-up CPU counters and a recording in place of signals. tests/integration/test_eventlogs.py runs it
in a real worker."""

from __future__ import annotations

import signal
import threading

import pytest

from worker.governor import CLOCK_TICKS, Governor, Throttle

WINDOW_S = 0.05


def _decisions(throttle: Throttle, windows: list[tuple[float, float]], start: float = 0.0) -> list[bool]:
    """May-run answers for (others' cores, horse's cores) window after window."""
    return [
        throttle.decide(start + (i + 1) * WINDOW_S, others, horse)
        for i, (others, horse) in enumerate(windows)
    ]


def test_a_working_horse_pauses_once_the_others_are_busy_two_windows_running():
    throttle = Throttle()
    assert _decisions(throttle, [(0.0, 1.0), (1.2, 1.0), (1.2, 1.0), (1.2, 0.0)]) == [
        True,
        True,
        False,
        False,
    ]


def test_one_busy_window_is_taken_for_the_counters_noise():
    throttle = Throttle()
    assert _decisions(throttle, [(0.4, 1.0), (0.0, 1.0), (0.4, 1.0), (0.0, 1.0)]) == [True] * 4


def test_a_horse_waiting_on_its_own_statement_is_not_paused():
    """The database works on the horse's statement while the horse waits: the 'others' are busy with
    the horse's own work, and pausing it would only slow mining down."""
    throttle = Throttle()
    assert _decisions(throttle, [(1.0, 0.0)] * 10) == [True] * 10


def test_a_paused_horse_runs_again_after_two_quiet_windows():
    throttle = Throttle()
    busy, quiet = (1.2, 1.0), (0.0, 0.0)
    assert _decisions(throttle, [busy, busy, quiet, busy, quiet, quiet, quiet]) == [
        True,
        False,
        False,  # one quiet window: the gap between two requests
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("floor_share", [0.02, 0.05, 0.2])
def test_under_a_machine_that_never_rests_the_horse_gets_its_floor_share_and_is_never_starved(floor_share):
    throttle = Throttle(floor_share=floor_share)
    answers = _decisions(throttle, [(1.5, 1.0)] * 4000)  # 200 s of a busy machine
    running = answers[2:]  # once paused
    assert abs(sum(running) / len(running) - floor_share) < floor_share * 0.25
    longest_pause = max(len(run) for run in "".join("r" if a else "p" for a in running).split("r") if run)
    assert longest_pause * WINDOW_S <= throttle.longest_pause_s + WINDOW_S


class _Machine:
    """Made-up CPU counters: each window the others and the horse use what the test says."""

    def __init__(self) -> None:
        self.now = 0.0
        self.busy = self.horse = 0
        self.horse_alive = True
        self.signals: list[tuple[int, int]] = []

    def window(self, others_cores: float, horse_cores: float) -> None:
        self.now += WINDOW_S
        others, horse = (round(cores * WINDOW_S * CLOCK_TICKS) for cores in (others_cores, horse_cores))
        self.busy += others + horse
        self.horse += horse

    def governor(self, horse_pid: list[int], **options) -> Governor:
        return Governor(
            lambda: horse_pid[0],
            Throttle(),
            window_s=WINDOW_S,
            busy_ticks=lambda: self.busy,
            horse_ticks=lambda pid, parent: self.horse if self.horse_alive else None,
            self_ticks=lambda: 0,
            send=lambda pid, signum: self.signals.append((pid, signum)),
            clock=lambda: self.now,
            **options,
        )


def test_the_governor_stops_the_horses_group_once_and_continues_it_when_the_machine_is_quiet():
    machine, horse = _Machine(), [4242]
    governor = machine.governor(horse)
    for others, horse_cores in [(0, 2), (0, 2), (1.2, 2), (1.2, 2), (1.2, 0), (1.2, 0), (0, 0), (0, 0)]:
        governor.step()
        machine.window(others, horse_cores)
    governor.step()
    assert machine.signals == [(4242, signal.SIGSTOP), (4242, signal.SIGCONT)]


def test_a_horse_that_ends_or_the_worker_that_stops_leaves_nothing_paused():
    machine, horse = _Machine(), [4242]
    governor = machine.governor(horse)
    for _ in range(4):
        governor.step()
        machine.window(1.2, 2)
    governor.step()
    assert machine.signals == [(4242, signal.SIGSTOP)]
    horse[0] = 0  # RQ reaped it (a cold shutdown killed it): the group is continued, never left stopped
    governor.step()
    assert machine.signals[-1] == (4242, signal.SIGCONT)

    machine.signals.clear()
    horse[0] = 5151
    for _ in range(4):
        governor.step()
        machine.window(1.2, 2)
    governor.step()
    assert machine.signals == [(5151, signal.SIGSTOP)]
    stop = threading.Event()
    stop.set()
    governor.run(stop)  # the worker is leaving
    assert machine.signals[-1] == (5151, signal.SIGCONT)


def test_the_governor_tells_how_long_the_horse_has_given_way_at_most_once_a_second():
    machine, horse = _Machine(), [4242]
    told: list[tuple[float, float, bool]] = []
    governor = machine.governor(horse, publish=lambda *figures: told.append(figures))
    for _ in range(10):  # 0.5 s of a quiet machine: nothing to tell
        governor.step()
        machine.window(0, 2)
    assert told == []
    for _ in range(60):  # 3 s of a busy one
        governor.step()
        machine.window(1.5, 2 if governor._paused is False else 0)
    governor.step()
    assert 3 <= len(told) <= 4  # the first pause at once, then once a second
    paused, elapsed, paused_now = told[-1]
    assert paused_now
    assert 1.8 <= paused <= 2.6 and 2.5 <= elapsed <= 3.6
    assert [figures[0] for figures in told] == sorted(figures[0] for figures in told)
    told.clear()
    horse[0] = 5151  # the next job starts from nothing
    for _ in range(6):
        governor.step()
        machine.window(1.5, 2)
    assert told and told[0][0] <= 2 * WINDOW_S and told[0][1] <= 6 * WINDOW_S


def test_a_governor_that_cannot_publish_goes_on_pausing():
    machine, horse = _Machine(), [4242]

    def redis_away(*figures):
        raise ConnectionError("Redis is restarting")

    governor = machine.governor(horse, publish=redis_away)
    for _ in range(30):
        governor.step()
        machine.window(1.5, 2)
    assert machine.signals[0] == (4242, signal.SIGSTOP)
    assert any(signum == signal.SIGCONT for _, signum in machine.signals)  # the floor's slices go on


def test_a_horse_that_is_no_longer_the_workers_child_gets_no_signal():
    machine, horse = _Machine(), [4242]
    machine.horse_alive = False  # /proc says the pid is gone or belongs to someone else now
    governor = machine.governor(horse)
    for _ in range(6):
        governor.step()
        machine.window(1.5, 2)
    assert machine.signals == []


def test_jobs_off_the_mining_queue_are_not_governed():
    from worker.__main__ import JourneylensWorker
    from worker.governor import start

    class App:
        config = {"WORKER_YIELD_CPU": True}

    worker = JourneylensWorker.__new__(JourneylensWorker)
    worker._horse_pid = 4242
    stop = threading.Event()
    stop.set()  # the thread ends at once; only the horse it would govern matters here
    governor = start(worker, App(), stop)
    assert governor is not None
    worker.current_queue_name = "default"  # an export drives Chromium under wall-clock timeouts
    assert governor.horse() == 0
    worker.current_queue_name = "mining"
    assert governor.horse() == 4242
    App.config = {"WORKER_YIELD_CPU": False}
    assert start(worker, App(), stop) is None


def test_the_horses_ticks_are_read_only_while_it_is_this_processs_child():
    import os
    import subprocess
    import sys

    from worker.governor import child_ticks

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert isinstance(child_ticks(child.pid, os.getpid()), int)
        assert child_ticks(child.pid, os.getpid() + 1) is None  # someone else's process by now
    finally:
        child.kill()
        child.wait()
    assert child_ticks(child.pid, os.getpid()) is None  # gone
