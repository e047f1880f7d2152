"""Mining gives way to the rest of the machine: the work horse of a mining job is paused while other
processes (the web, above all) are using the CPU, and runs when they are quiet.

Why pausing, when the worker already runs nicer and under SCHED_IDLE (worker/__main__.py): those keep
a mining thread off a CPU that a web thread wants, but not off the caches. A page spends its time in
short bursts between database round trips; under SCHED_IDLE a mining thread runs in every such gap,
streams a few hundred MB of columns through the shared cache, and the page's next burst starts cold.
On two vCPUs, processes started like the worker that only scanned memory made the web's p95 1.8-2.2x
slower while taking 0.2 cores; ones that only looped did nothing measurable (bench/RESULTS.md, "Mining
gives way"). So the horse is stopped (SIGSTOP to its process group) while anything else is
busy, and continued once the machine has been quiet for a moment - the way BOINC suspends its
computations while the computer is in use. A floor share keeps mining moving under a web that never
rests: it is slowed, never starved.

Only jobs of the mining queue are governed: an export drives Chromium under wall-clock timeouts that a
paused horse would trip, and the light jobs are over before it would matter.

Mining under a busy site takes many times longer, so the governor tells how long the horse has given way
(at most once a second, in Redis under the job's id); the log's progress widget says so, and why.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

log = logging.getLogger("worker.governor")

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_EPSILON_S = 1e-6  # a window of 0.05 s measured as 0.04999... still counts as one


@dataclass
class Throttle:
    """When the horse may run, decided window by window from how busy the other processes were.

    busy_above: the CPU (in cores) the others may use in a window and still count as quiet. The
    counters tick 100 times a second and the machine's and the horse's are read a moment apart, so
    one tick either way is noise: 0.3 cores over a 50 ms window is two ticks;
    working_above: a running horse is paused only when it used more than this itself (below, it was
    waiting, most often for the database working on its own statement);
    floor_share: the share of wall-clock time the horse gets however busy the others are, taken as
    `slice_s` runs after `slice_s * (1 / floor_share - 1)` paused;
    busy_windows: how many busy windows in a row pause a running horse (a lone busy window is as
    often the counters' noise);
    quiet_windows: how many quiet windows in a row let a paused horse run again (a lone quiet window
    is often just the gap between two requests).
    """

    busy_above: float = 0.3
    working_above: float = 0.1
    floor_share: float = 0.05
    slice_s: float = 0.05
    busy_windows: int = 2
    quiet_windows: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.floor_share <= 1:
            raise ValueError("floor_share must be in (0, 1]")
        self.reset()

    @property
    def longest_pause_s(self) -> float:
        return self.slice_s * (1 / self.floor_share - 1)

    def reset(self) -> None:
        self.state = "run"  # "run", "paused", or "slice" (a floor run while the others are busy)
        self._quiet, self._busy = self.quiet_windows, 0
        self._since = 0.0

    def decide(self, now: float, others_cores: float, horse_cores: float = 1.0) -> bool:
        """Whether the horse may run until the next window, given the CPU (in cores) the others and the
        horse used in the last one."""
        busy = others_cores > self.busy_above
        working = horse_cores > self.working_above
        self._quiet = 0 if busy else self._quiet + 1
        self._busy = self._busy + 1 if busy and working else 0
        quiet = self._quiet >= self.quiet_windows
        if self.state == "run" and self._busy >= self.busy_windows:
            self.state, self._since = "paused", now
        elif self.state == "paused":
            if quiet:
                self.state = "run"
            elif now - self._since >= self.longest_pause_s - _EPSILON_S:
                self.state, self._since = "slice", now
        elif self.state == "slice" and now - self._since >= self.slice_s - _EPSILON_S:
            self.state, self._since = ("run", now) if quiet else ("paused", now)
        return self.state != "paused"


def machine_busy_ticks(stat_path: str = "/proc/stat") -> int:
    """Clock ticks every CPU has spent working since boot (user, nice, system, irq, softirq).

    Steal is left out: it is another machine's work, and pausing would not give it back."""
    with open(stat_path, "rb") as stat:
        fields = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(value) for value in fields[1:8])
    return user + nice + system + irq + softirq


def child_ticks(pid: int, parent: int) -> int | None:
    """Ticks `pid` (all its threads) has used, or None when it is gone or no longer `parent`'s child
    (a pid is reused only after its process is reaped; this keeps a signal off a stranger)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            after_name = stat.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    if int(after_name[1]) != parent:
        return None
    return int(after_name[11]) + int(after_name[12])  # utime + stime


def own_ticks() -> int:
    times = os.times()
    return round((times.user + times.system) * CLOCK_TICKS)


class Governor:
    """Watches the horse that `horse()` names (0: none, or not one to govern) and pauses or continues
    its process group as the `throttle` decides, once per `window_s`."""

    def __init__(
        self,
        horse: Callable[[], int],
        throttle: Throttle,
        *,
        window_s: float = 0.05,
        busy_ticks: Callable[[], int] = machine_busy_ticks,
        horse_ticks: Callable[[int, int], int | None] = child_ticks,
        self_ticks: Callable[[], int] = own_ticks,
        send: Callable[[int, int], None] = os.killpg,
        clock: Callable[[], float] = time.monotonic,
        publish: Callable[[float, float, bool], None] | None = None,
        publish_every_s: float = 1.0,
    ) -> None:
        self.horse = horse
        self.throttle = throttle
        self.window_s = window_s
        self._busy_ticks, self._horse_ticks, self._self_ticks = busy_ticks, horse_ticks, self_ticks
        self._send, self._clock = send, clock
        self._publish, self.publish_every_s = publish, publish_every_s
        self._published_at: float | None = None
        self._publish_failed = False
        self._pid = 0
        self._paused = False
        self._last: tuple[float, int, int, int] | None = None
        self.paused_s = 0.0  # how long the current horse has spent paused (logged when it ends)
        self._paused_at = self._started_at = 0.0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.window_s):
                try:
                    self.step()
                except Exception:  # never let the governor take the worker down; leave the horse running
                    log.exception("governor step failed")
                    self._continue()
        finally:
            self._continue()

    def step(self) -> None:
        pid = self.horse()
        parent = os.getpid()
        if pid != self._pid:
            self._end_horse()
            self._pid = pid
            self._started_at = self._clock()
        if not pid:
            return
        horse = self._horse_ticks(pid, parent)
        if horse is None:  # finished between two windows
            self._end_horse()
            return
        now, busy, own = self._clock(), self._busy_ticks(), self._self_ticks()
        last, self._last = self._last, (now, busy, horse, own)
        if last is None or now <= last[0]:
            return
        per_core = CLOCK_TICKS * (now - last[0])
        others_ticks = (busy - last[1]) - (horse - last[2]) - (own - last[3])
        if self.throttle.decide(now, max(others_ticks, 0) / per_core, (horse - last[2]) / per_core):
            self._continue()
        elif not self._paused:
            self._signal(signal.SIGSTOP)
            self._paused, self._paused_at = True, now
        self._tell(now)

    def paused_so_far(self, now: float) -> float:
        """Seconds the current horse has spent paused, the pause under way included."""
        return self.paused_s + (now - self._paused_at if self._paused else 0.0)

    def _tell(self, now: float) -> None:
        """Publish how long the horse has given way, once it has, at most every publish_every_s."""
        if self._publish is None or not self.paused_so_far(now):
            return
        if self._published_at is not None and now - self._published_at < self.publish_every_s:
            return
        self._published_at = now
        try:
            self._publish(self.paused_so_far(now), now - self._started_at, self._paused)
        except Exception:  # Redis away: the widget says less, mining goes on
            if not self._publish_failed:
                log.warning("could not publish how long mining gave way", exc_info=True)
            self._publish_failed = True

    def _end_horse(self) -> None:
        self._continue()
        if self._pid and self.paused_s:
            log.info(
                "mining horse %s paused %.1f s of %.1f s while the machine was busy",
                self._pid,
                self.paused_s,
                self._clock() - self._started_at,
            )
        self._pid, self._last, self.paused_s, self._published_at = 0, None, 0.0, None
        self.throttle.reset()

    def _continue(self) -> None:
        if self._paused:
            self._signal(signal.SIGCONT)
            self._paused = False
            self.paused_s += self._clock() - self._paused_at

    def _signal(self, signum: int) -> None:
        with suppress(ProcessLookupError):  # the group is gone: nothing left to pause or continue
            self._send(self._pid, signum)


def start(
    worker, app, stop: threading.Event, governed_queues: tuple[str, ...] = ("mining",)
) -> Governor | None:
    """Start governing `worker`'s horses on `governed_queues` in a daemon thread, when the app's config
    asks for it (WORKER_YIELD_CPU) and the machine has /proc; returns the governor, or None."""
    if not app.config.get("WORKER_YIELD_CPU") or not os.path.exists("/proc/stat"):
        return None
    from webapp.queue import GAVE_WAY_TTL_S, gave_way_key

    throttle = Throttle(floor_share=float(app.config.get("WORKER_YIELD_FLOOR", 0.05)))

    def governed_horse() -> int:
        queue = getattr(worker, "current_queue_name", None)
        return worker.horse_pid if queue in governed_queues else 0

    def publish(paused_s: float, elapsed_s: float, paused_now: bool) -> None:
        job_id = getattr(worker, "current_job_id", None)
        if job_id:
            key = gave_way_key(job_id)
            figures = {
                "paused_s": round(paused_s, 1),
                "elapsed_s": round(elapsed_s, 1),
                "paused": int(paused_now),
            }
            worker.connection.pipeline().hset(key, mapping=figures).expire(key, GAVE_WAY_TTL_S).execute()

    governor = Governor(governed_horse, throttle, publish=publish)
    threading.Thread(target=governor.run, args=(stop,), daemon=True, name="governor").start()
    return governor
