"""Log lines untrusted input can cause, bounded: the first few per client and kind each minute, then one summary line with a count."""

from collections.abc import Callable

import attrs
from twisted.logger import Logger

# The key the clients past L{LogThrottle.maxClients} share in a period.
OTHERS = "(other clients)"


@attrs.define(eq=False)
class LogThrottle:
    """
    Decides whether an event a client caused (a failed handler, a store
    that did not answer its request) is logged: the first C{burst} of each
    kind per client in a C{period}; the rest are counted, and when a later
    event comes after the period ends each count is logged as one warning
    naming the kind, the client and how many were left out.  At most
    C{maxClients} clients are told apart in a period; the others share one
    count, so a client spoofing many addresses cannot grow the table.
    """

    log = Logger()

    # The clock: a callable returning seconds.
    seconds: Callable[[], float]
    period: float = 60.0
    burst: int = 1
    maxClients: int = 10000
    # When this period ends (None: no event yet).
    _ends: float | None = attrs.field(init=False, default=None)
    # (kind, client) -> events seen this period
    _seen: dict = attrs.field(init=False, factory=dict)

    def allow(self, kind, client):
        """
        @return: whether to log this event of C{kind} caused by C{client};
            when not, it is counted for the summary.
        """
        now = self.seconds()
        if self._ends is None or now >= self._ends:
            self.flush()
            self._ends = now + self.period
        key = (kind, client)
        seen = self._seen.get(key)
        if seen is None and len(self._seen) >= self.maxClients:
            key = (kind, OTHERS)
            seen = self._seen.get(key)
        seen = (seen or 0) + 1
        self._seen[key] = seen
        return seen <= self.burst

    def flush(self):
        """Log one summary line per client and kind with events left out, and start afresh."""
        for (kind, client), seen in sorted(self._seen.items()):
            if seen > self.burst:
                self.log.warn(
                    "{count} more {kind} events from {client} not logged in {period:g}s",
                    count=seen - self.burst, kind=kind, client=client, period=self.period,
                )
        self._seen = {}


__all__ = ["LogThrottle", "OTHERS"]
