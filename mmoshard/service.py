"""Ordered service trees: children start one after another (awaiting each Deferred) and stop in reverse."""

from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, TimeoutError, maybeDeferred
from twisted.logger import Logger


class AsyncMultiService(MultiService):
    """
    A L{MultiService} whose children start in the order they were added,
    each one only after the previous child's C{startService} (which may
    return a Deferred) has finished, and stop in the reverse order, each
    awaited in turn.

    This is buildbot's C{AsyncMultiService} made sequential: a session
    listener must not open before the SQL pool it serves is ready, and the
    pool must not close before the roles have saved what they hold.

    A child that fails to start fails C{startService}; the children after it
    are not started.  A child that fails to stop is logged and the others
    still stop.  C{stopTimeoutOf(child)} may bound a child's stop.
    """

    log = Logger()

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self._startChildren())

    async def _startChildren(self):
        for child in list(self):
            if not self.running:
                # Stopped while starting: the rest never starts.
                return
            await maybeDeferred(child.startService)

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self._stopChildren())

    async def _stopChildren(self):
        for child in reversed(list(self)):
            if not child.running:
                continue
            d = maybeDeferred(child.stopService)
            timeout = self.stopTimeoutOf(child)
            if timeout is not None:
                d.addTimeout(timeout, self.stopClock())
            try:
                await d
            except TimeoutError:
                self.log.warn(
                    "service {name} did not stop within {timeout}s; going on without it",
                    name=child.name,
                    timeout=timeout,
                )
            except Exception:
                self.log.failure("error stopping service {name}", name=child.name)

    def stopTimeoutOf(self, child):
        """@return: seconds C{child} may take to stop, or None for no bound."""
        return None

    def stopClock(self):
        """@return: the clock bounding stops (only asked when a bound is set)."""
        raise NotImplementedError("a subclass bounding stops names its clock")


class AsyncService(Service):
    """
    A service whose start and stop are coroutines: subclasses define
    C{async def start()} and C{async def stop()}; C{startService} and
    C{stopService} return their Deferreds.
    """

    def startService(self):
        Service.startService(self)
        return Deferred.fromCoroutine(self.start())

    def stopService(self):
        Service.stopService(self)
        return Deferred.fromCoroutine(self.stop())

    async def start(self):
        pass

    async def stop(self):
        pass


__all__ = ["AsyncMultiService", "AsyncService"]
