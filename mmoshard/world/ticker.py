"""A fixed-rate tick loop on an injectable clock that never drifts and never bursts after a slow tick."""

from twisted.logger import Logger


class FixedRateLoop:
    """
    Calls C{func(index, dt)} at C{origin + index * interval} for index 1, 2, ...

    Deadlines are computed from the origin, never by adding intervals, so the
    loop does not drift.  When a tick runs late or long, the missed deadlines
    are skipped (counted in C{skipped}) and the next call gets a C{dt} covering
    them: the loop never fires several ticks back to back to catch up.

    @param timer: C{() -> seconds} measuring a tick's duration (default the
        clock), reported to C{observe(duration, overrun)}.
    """

    log = Logger()

    def __init__(self, clock, interval, func, timer=None, observe=None):
        self.clock = clock
        self.interval = float(interval)
        self.func = func
        self.timer = timer or clock.seconds
        self.observe = observe
        self.origin = None
        self.index = 0  # the last index run
        self.skipped = 0
        self.overruns = 0
        self.ticks = 0
        self._call = None

    @property
    def running(self):
        return self._call is not None

    def start(self):
        self.origin = self.clock.seconds()
        self.index = 0
        self._schedule(1)

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _schedule(self, index):
        delay = self.origin + index * self.interval - self.clock.seconds()
        self._call = self.clock.callLater(max(0.0, delay), self._fire, index)

    def _fire(self, index):
        interval = self.interval
        now = self.clock.seconds()
        # A late wake-up (the reactor was busy) runs the newest due index.
        late = int((now - self.origin) / interval + 1e-9)
        if late > index:
            self.skipped += late - index
            index = late
        dt = (index - self.index) * interval
        self.index = index
        t0 = self.timer()
        try:
            self.func(index, dt)
        except Exception:
            self.log.failure("tick {index} failed", index=index)
        duration = self.timer() - t0
        self.ticks += 1
        overrun = duration > interval
        if overrun:
            self.overruns += 1
        if self.observe is not None:
            self.observe(duration, overrun)
        if self._call is None:
            return  # stopped from inside the tick
        # The next deadline after now: a long tick skips what it overran.
        after = int((self.clock.seconds() - self.origin) / interval + 1e-9) + 1
        nxt = max(index + 1, after)
        self.skipped += nxt - index - 1
        self._schedule(nxt)
